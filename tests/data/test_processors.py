from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy import stats

from alphalab.data.processor import (
    CSRankNorm,
    CSZScoreNorm,
    DropnaFeature,
    DropnaLabel,
    Fillna,
    FilterCol,
    MinMaxNorm,
    ProcessInf,
    RobustZScoreNorm,
    TanhProcess,
    ZScoreNorm,
)
from alphalab.exceptions import ConfigError, DataError


def make_frame(seed: int, n_days: int = 20, n_inst: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    days = [dt.datetime(2020, 1, 1) + dt.timedelta(days=i) for i in range(n_days)]
    rows = [(d, f"I{j}") for d in days for j in range(n_inst)]
    n = len(rows)
    f1 = rng.normal(5, 2, n)
    f2 = rng.standard_t(3, n) * 10
    label = rng.normal(0, 0.02, n)
    f1[rng.random(n) < 0.1] = np.nan
    label[rng.random(n) < 0.1] = np.nan
    frame = pl.DataFrame(
        {
            "datetime": [r[0] for r in rows],
            "instrument": [r[1] for r in rows],
            "feature/F1": f1,
            "feature/F2": f2,
            "label/LABEL0": label,
        }
    )
    return frame.with_columns(pl.col(c).fill_nan(None) for c in frame.columns[2:])


def pdf(frame: pl.DataFrame) -> pd.DataFrame:
    return frame.to_pandas().set_index(["datetime", "instrument"])


FIT_END = dt.datetime(2020, 1, 10)


def test_dropna_label_and_feature(seed: int) -> None:
    frame = make_frame(seed)
    out = DropnaLabel().transform(frame)
    assert out["label/LABEL0"].null_count() == 0
    assert out.height == frame.height - frame["label/LABEL0"].null_count()
    assert not DropnaLabel().is_for_infer()
    out = DropnaFeature().transform(frame)
    assert out["feature/F1"].null_count() == 0
    assert out.height == frame.height - frame["feature/F1"].null_count()


def test_fillna_and_processinf(seed: int) -> None:
    frame = make_frame(seed).with_columns(
        pl.when(pl.col("instrument") == "I0")
        .then(float("inf"))
        .otherwise(pl.col("feature/F2"))
        .alias("feature/F2")
    )
    filled = Fillna(fields_group="feature", fill_value=-1.0).transform(frame)
    assert filled["feature/F1"].null_count() == 0
    assert (filled["feature/F1"] == -1.0).sum() == frame["feature/F1"].null_count()
    assert filled["label/LABEL0"].null_count() == frame["label/LABEL0"].null_count()

    fixed = pdf(ProcessInf().transform(frame))
    expected = pdf(frame)["feature/F2"].replace(np.inf, np.nan).groupby(level="datetime").mean()
    got = fixed.xs("I0", level="instrument")["feature/F2"]
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy())


def test_cs_zscore_matches_pandas(seed: int) -> None:
    frame = make_frame(seed)
    out = pdf(CSZScoreNorm(fields_group="label").transform(frame))
    ref = (
        pdf(frame)["label/LABEL0"]
        .groupby(level="datetime")
        .transform(lambda x: (x - x.mean()) / x.std())
    )
    np.testing.assert_allclose(out["label/LABEL0"], ref, equal_nan=True)
    assert out["feature/F1"].equals(pdf(frame)["feature/F1"])

    robust = pdf(CSZScoreNorm(fields_group="feature", method="robust").transform(frame))

    def robust_ref(x: pd.Series) -> pd.Series:
        med = x.median()
        return (x - med) / ((x - med).abs().median() * 1.4826)

    ref = pdf(frame)["feature/F2"].groupby(level="datetime").transform(robust_ref)
    np.testing.assert_allclose(robust["feature/F2"], ref, equal_nan=True)
    with pytest.raises(ConfigError, match="method must be 'zscore' or 'robust'; got 'minmax'"):
        CSZScoreNorm(method="minmax").transform(frame)


def test_cs_rank_norm_matches_pandas(seed: int) -> None:
    frame = make_frame(seed)
    out = pdf(CSRankNorm(fields_group="feature").transform(frame))
    ref = (pdf(frame)["feature/F1"].groupby(level="datetime").rank(pct=True) - 0.5) * 3.46
    np.testing.assert_allclose(out["feature/F1"], ref, equal_nan=True)


def test_zscore_learns_only_from_the_fit_window(seed: int) -> None:
    frame = make_frame(seed)
    proc = ZScoreNorm().fit(frame.filter(pl.col("datetime") <= FIT_END))
    # Changing data after the fit window must not change what was learned.
    shifted = frame.with_columns(
        pl.when(pl.col("datetime") > FIT_END)
        .then(pl.col("feature/F1") * 1000)
        .otherwise(pl.col("feature/F1"))
        .alias("feature/F1")
    )
    proc2 = ZScoreNorm().fit(shifted.filter(pl.col("datetime") <= FIT_END))
    assert proc.mean_ == proc2.mean_ and proc.std_ == proc2.std_
    fit_vals = pdf(frame)["feature/F1"].loc[: pd.Timestamp(FIT_END)]
    out = pdf(proc.transform(frame))["feature/F1"]
    expected = (pdf(frame)["feature/F1"] - np.nanmean(fit_vals)) / np.nanstd(fit_vals)
    np.testing.assert_allclose(out, expected, equal_nan=True)


def test_zscore_leaves_constant_columns(seed: int) -> None:
    frame = make_frame(seed).with_columns(pl.lit(3.0).alias("feature/F2"))
    out = ZScoreNorm(fields_group="feature").fit(frame).transform(frame)
    assert out["feature/F2"].to_list() == frame["feature/F2"].to_list()


def test_robust_zscore_and_minmax(seed: int) -> None:
    frame = make_frame(seed)
    fit_rows = frame.filter(pl.col("datetime") <= FIT_END)
    out = pdf(RobustZScoreNorm(fields_group="feature").fit(fit_rows).transform(frame))
    vals = pdf(fit_rows)["feature/F2"].to_numpy()
    med = np.nanmedian(vals)
    mad = np.nanmedian(np.abs(vals - med)) * 1.4826 + 1e-12
    expected = np.clip((pdf(frame)["feature/F2"] - med) / mad, -3, 3)
    np.testing.assert_allclose(out["feature/F2"], expected, equal_nan=True)
    assert out["label/LABEL0"].equals(pdf(frame)["label/LABEL0"])

    mm = pdf(MinMaxNorm(fields_group="feature").fit(fit_rows).transform(frame))
    low, high = np.nanmin(vals), np.nanmax(vals)
    np.testing.assert_allclose(
        mm["feature/F2"], (pdf(frame)["feature/F2"] - low) / (high - low), equal_nan=True
    )


def test_fit_window_narrowed_by_processor_kwargs(seed: int) -> None:
    frame = make_frame(seed)
    proc = ZScoreNorm(fit_start_time="2020-01-03", fit_end_time="2020-01-05").fit(frame)
    vals = pdf(frame)["feature/F1"].loc["2020-01-03":"2020-01-05"]
    assert proc.mean_["feature/F1"] == pytest.approx(np.nanmean(vals))
    with pytest.raises(DataError, match="ZScoreNorm has no rows to fit on"):
        ZScoreNorm(fit_start_time="2030-01-01").fit(frame)
    with pytest.raises(DataError, match="must be fitted before"):
        ZScoreNorm().transform(frame)


def test_filter_col_and_tanh(seed: int) -> None:
    frame = make_frame(seed)
    out = FilterCol(col_list=["F2"]).transform(frame)
    assert out.columns == ["datetime", "instrument", "feature/F2", "label/LABEL0"]
    with pytest.raises(ConfigError, match=r"FilterCol: column\(s\) \['F9'\] are not in group"):
        FilterCol(col_list=["F9"]).transform(frame)
    tanh = TanhProcess().transform(frame)
    np.testing.assert_allclose(
        tanh["feature/F2"].to_numpy(), np.tanh(frame["feature/F2"].to_numpy() - 1)
    )
    assert tanh["label/LABEL0"].equals(frame["label/LABEL0"])


def test_rank_norm_is_uniformish(seed: int) -> None:
    frame = make_frame(seed, n_days=5, n_inst=200)
    out = CSRankNorm(fields_group="feature").transform(frame)["feature/F2"].drop_nulls()
    assert abs(out.mean()) < 0.05
    assert stats.kstest((out.to_numpy() / 3.46) + 0.5, "uniform").pvalue > 0.01
