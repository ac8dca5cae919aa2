from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from alphalab.data import (
    Alpha158,
    Alpha360,
    DataHandlerLP,
    DatasetH,
    QlibDataLoader,
    TSDatasetH,
    ZScoreNorm,
)
from alphalab.data.expr import alpha158, alpha360
from alphalab.exceptions import ConfigError, DataError, ExpressionError, NotFoundError


def loader(features, label=("Ref($close, -2)/Ref($close, -1) - 1",)):
    return QlibDataLoader(
        config={
            "feature": (list(features), [f"F{i}" for i in range(len(features))]),
            "label": (list(label), ["LABEL0"]),
        }
    )


def test_alpha158_columns_in_order_and_default_processors(alpha158_dataset) -> None:
    handler = alpha158_dataset.handler
    frame = handler.fetch(col_set="__all", data_key=DataHandlerLP.DK_L)
    assert list(frame["feature"].columns) == alpha158()[1]
    assert list(frame["label"].columns) == ["LABEL0"]
    assert frame.index.names == ["datetime", "instrument"]
    learn_label = frame["label"]["LABEL0"]
    assert learn_label.notna().all(), "DropnaLabel runs on learning data"
    by_day = learn_label.groupby(level="datetime")
    np.testing.assert_allclose(by_day.mean().abs().max(), 0, atol=1e-6)  # float32
    np.testing.assert_allclose(by_day.std().dropna().to_numpy(), 1, atol=1e-5)
    infer = handler.fetch(col_set="label", data_key=DataHandlerLP.DK_I)
    assert list(infer.columns) == ["LABEL0"], "a single group gives single-level columns"
    assert infer["LABEL0"].isna().any(), "inference data keeps rows without a label"


def test_rows_follow_universe_membership(model_market_store) -> None:
    handler = DataHandlerLP(
        instruments="csi300",
        start_time="2018-01-01",
        end_time="2020-12-31",
        data_loader=loader(["$close"]),
        store=model_market_store,
        cache=False,
    )
    frame = handler.fetch_polars(data_key=DataHandlerLP.DK_R)
    spans = model_market_store.membership("csi300")
    joined = frame.join(spans, on="instrument")
    inside = (
        joined.filter(
            (pl.col("datetime") >= pl.col("start")) & (pl.col("datetime") <= pl.col("end"))
        )
        .select("datetime", "instrument")
        .unique()
    )
    assert inside.height == frame.height, "every row lies inside a membership span"
    assert set(frame["instrument"].unique()) <= set(spans["instrument"])


def test_values_at_start_use_history_before_start(model_market_store) -> None:
    exprs = ["Mean($close, 20)/$close", "Std($close, 10)", "Ref($close, 5)"]
    early = DataHandlerLP(
        instruments=["SH600000", "SH600001"],
        start_time="2018-01-01",
        end_time="2018-06-30",
        data_loader=loader(exprs),
        store=model_market_store,
        cache=False,
    ).fetch(data_key=DataHandlerLP.DK_R)
    late = DataHandlerLP(
        instruments=["SH600000", "SH600001"],
        start_time="2018-03-01",
        end_time="2018-06-30",
        data_loader=loader(exprs),
        store=model_market_store,
        cache=False,
    ).fetch(data_key=DataHandlerLP.DK_R)
    pd.testing.assert_frame_equal(early.loc["2018-03-01":], late)


def test_fitted_processors_learn_only_from_the_fit_window(model_market_store) -> None:
    handler = DataHandlerLP(
        instruments="csi300",
        start_time="2017-01-01",
        end_time="2020-12-31",
        data_loader=loader(["$close/Ref($close, 1) - 1", "Log($volume)"]),
        infer_processors=[{"class": "ZScoreNorm", "kwargs": {"fields_group": "feature"}}],
        fit_start_time="2017-01-01",
        fit_end_time="2018-12-31",
        store=model_market_store,
        cache=False,
    )
    raw = handler.fetch(col_set="feature", data_key=DataHandlerLP.DK_R)
    proc = handler.processors["infer"][0]
    assert isinstance(proc, ZScoreNorm)
    fit_rows = raw.loc[:"2018-12-31", "F1"]
    assert proc.mean_["feature/F1"] == pytest.approx(np.nanmean(fit_rows))
    assert proc.mean_["feature/F1"] != pytest.approx(np.nanmean(raw["F1"]))
    infer = handler.fetch(col_set="feature")
    assert abs(infer.loc[:"2018-12-31", "F1"].astype("float64").mean()) < 1e-6


class _WholeFrameZScore(ZScoreNorm):
    """The same statistics, declared not date-local: the handler must process every row."""

    date_local = False


@pytest.mark.parametrize("selector", [slice("2019-03-01", "2019-06-30"), "2019-05-06"])
def test_learn_view_made_per_date_range_equals_processing_every_row(
    model_market_store, selector
) -> None:
    learn = [
        "DropnaLabel",
        {"class": "ZScoreNorm", "kwargs": {"fields_group": "feature"}},
        {"class": "CSZScoreNorm", "kwargs": {"fields_group": "label"}},
    ]
    common = {
        "instruments": "csi300",
        "start_time": "2018-01-01",
        "end_time": "2019-12-31",
        "fit_start_time": "2018-01-01",
        "fit_end_time": "2018-12-31",
        "data_loader": loader(["$close/Ref($close, 1) - 1", "Log($volume)"]),
        "store": model_market_store,
        "cache": False,
    }
    lazy = DataHandlerLP(**common, learn_processors=learn)
    whole_frame = [learn[0], _WholeFrameZScore(fields_group="feature"), learn[2]]
    eager = DataHandlerLP(**common, learn_processors=whole_frame)
    lazy.setup_data()
    eager.setup_data()
    assert DataHandlerLP.DK_L not in lazy._views and DataHandlerLP.DK_L in eager._views
    assert lazy.processors["learn"][1].mean_ == pytest.approx(eager.processors["learn"][1].mean_)
    codes = sorted(lazy.fetch(data_key=DataHandlerLP.DK_I).index.unique("instrument"))[:3]
    for level, sel in (("datetime", selector), ("instrument", codes)):
        got = lazy.fetch(sel, level=level, data_key=DataHandlerLP.DK_L)
        want = eager.fetch(sel, level=level, data_key=DataHandlerLP.DK_L)
        assert len(got) > 0
        pd.testing.assert_frame_equal(got, want)


def test_independent_process_type_and_bad_chains(model_market_store) -> None:
    common = {
        "instruments": "csi300",
        "start_time": "2019-01-01",
        "end_time": "2019-12-31",
        "data_loader": loader(["$close"]),
        "store": model_market_store,
        "cache": False,
    }
    handler = DataHandlerLP(
        **common,
        infer_processors=["Fillna"],
        learn_processors=["DropnaLabel"],
        process_type="independent",
    )
    learn = handler.fetch(data_key=DataHandlerLP.DK_L)
    assert learn["label"]["LABEL0"].notna().all()
    with pytest.raises(ConfigError, match="DropnaLabel cannot run on inference data"):
        DataHandlerLP(**common, infer_processors=["DropnaLabel"]).setup_data()
    with pytest.raises(
        ConfigError,
        match=r"infer_processors\[0\]: Module 'alphalab.data.processor' has no class 'Nope'",
    ):
        DataHandlerLP(**common, infer_processors=["Nope"]).setup_data()
    with pytest.raises(ConfigError, match="process_type must be 'append' or 'independent'"):
        DataHandlerLP(**common, process_type="both").setup_data()


def test_clear_errors_for_bad_expression_field_and_empty_universe(model_market_store) -> None:
    common = {
        "start_time": "2019-01-01",
        "end_time": "2019-12-31",
        "store": model_market_store,
        "cache": False,
    }
    with pytest.raises(ExpressionError, match=r"Mean\(\$close"):
        DataHandlerLP(
            instruments="csi300", data_loader=loader(["Mean($close"]), **common
        ).setup_data()
    with pytest.raises(ExpressionError, match="unknown field"):
        DataHandlerLP(instruments="csi300", data_loader=loader(["$colse"]), **common).setup_data()
    with pytest.raises(NotFoundError, match="csi800"):
        DataHandlerLP(instruments="csi800", data_loader=loader(["$close"]), **common).setup_data()
    with pytest.raises(DataError, match="has no instrument between 2030-01-01 and 2030-12-31"):
        DataHandlerLP(
            instruments="csi300",
            data_loader=loader(["$close"]),
            start_time="2030-01-01",
            end_time="2030-12-31",
            store=model_market_store,
            cache=False,
        ).setup_data()


def test_feature_cache_skips_computation(
    model_market_store, isolated_settings, monkeypatch
) -> None:
    def build() -> Alpha158:
        return Alpha158(
            instruments="csi300",
            start_time="2019-01-01",
            end_time="2019-12-31",
            store=model_market_store,
        )

    first = build()
    first.setup_data()
    cached = list((isolated_settings / "alphalab-runs" / "cache" / "features").glob("*.arrow"))
    assert len(cached) == 1

    def fail(*args, **kwargs):
        raise AssertionError("features were computed again")

    monkeypatch.setattr(QlibDataLoader, "load", fail)
    monkeypatch.setattr(QlibDataLoader, "load_to_file", fail)
    second = build()
    second.setup_data()
    pd.testing.assert_frame_equal(first.fetch(), second.fetch())
    assert first.data_fingerprint == second.data_fingerprint


def test_alpha360_layout_and_defaults(model_market_store) -> None:
    handler = Alpha360(
        instruments="csi300",
        start_time="2019-01-01",
        end_time="2019-06-30",
        fit_start_time="2019-01-01",
        fit_end_time="2019-03-31",
        store=model_market_store,
        cache=False,
    )
    frame = handler.fetch(col_set="feature")
    assert list(frame.columns) == alpha360()[1]
    assert not frame.isna().any().any(), "Alpha360's infer processors end with Fillna"
    assert [type(p).__name__ for p in handler.processors["infer"]] == [
        "ProcessInf",
        "ZScoreNorm",
        "Fillna",
    ]


def test_dataset_segments_and_errors(alpha158_dataset) -> None:
    train, test = alpha158_dataset.prepare(["train", "test"], col_set=["feature", "label"])
    assert train.index.get_level_values("datetime").max() <= pd.Timestamp("2018-12-31")
    assert test.index.get_level_values("datetime").min() >= pd.Timestamp("2020-01-01")
    assert list(train.columns.levels[0]) == ["feature", "label"]
    with pytest.raises(
        NotFoundError, match="The dataset has no segment 'holdout'; it has: train, valid, test"
    ):
        alpha158_dataset.prepare("holdout")
    empty = DatasetH(
        handler=alpha158_dataset.handler, segments={"test": ["2030-01-01", "2030-12-31"]}
    )
    with pytest.raises(
        DataError, match=r"Segment 'test' \[2030-01-01, 2030-12-31\] has no rows.*covers 2017-"
    ):
        empty.prepare("test")
    with pytest.raises(ConfigError, match="Segment 'bad' must be \\[start, end\\]"):
        DatasetH(handler=alpha158_dataset.handler, segments={"bad": "2020"}).segment_bounds("bad")


@pytest.mark.parametrize("data_key", ["infer", "learn"])
def test_segment_chunks_are_the_segment_in_runs_of_whole_dates(alpha158_dataset, data_key) -> None:
    whole = alpha158_dataset.prepare_polars("train", data_key=data_key)
    pieces = list(alpha158_dataset.prepare_chunks("train", data_key=data_key, rows=5_000))
    assert len(pieces) > 3
    if data_key == "infer":  # whole dates, at least the rows asked (learning drops some)
        assert all(p.height >= 5_000 for p in pieces[:-1])
    last_days = [p["datetime"].max() for p in pieces[:-1]]
    first_days = [p["datetime"].min() for p in pieces[1:]]
    assert all(a < b for a, b in zip(last_days, first_days, strict=True))  # no date split
    assert_frame_equal(pl.concat(pieces), whole)
    empty = DatasetH(
        handler=alpha158_dataset.handler, segments={"test": ["2030-01-01", "2030-12-31"]}
    )
    with pytest.raises(DataError, match=r"Segment 'test' \[2030-01-01, 2030-12-31\] has no rows"):
        list(empty.prepare_chunks("test", data_key=data_key))


def test_ts_dataset_windows_reach_before_the_segment(model_market_store) -> None:
    handler = DataHandlerLP(
        instruments="csi300",
        start_time="2019-06-01",
        end_time="2020-03-31",
        data_loader=loader(["$close", "$volume"]),
        store=model_market_store,
        cache=False,
    )
    dataset = TSDatasetH(
        handler=handler, segments={"test": ["2020-01-01", "2020-03-31"]}, step_len=5
    )
    sampler = dataset.prepare("test", col_set=["feature", "label"])
    flat = handler.fetch(col_set=["feature", "label"])
    index = sampler.get_index()
    assert len(sampler) == len(flat.loc["2020-01-01":])
    assert index.get_level_values("datetime").min() >= pd.Timestamp("2020-01-01")
    dates = flat.index.get_level_values("datetime").unique().sort_values()
    when, code = index[0]
    window = sampler[0]
    assert window.shape == (5, 3)
    pos = dates.get_loc(when)
    for k, day in enumerate(dates[pos - 4 : pos + 1]):
        expected = flat.loc[(day, code)].to_numpy(dtype=np.float32)
        np.testing.assert_allclose(window[k], expected, rtol=1e-6)
    assert dates[pos - 4] < pd.Timestamp("2020-01-01"), "the window starts before the segment"


def test_pickled_handler_has_no_data_and_reuses_fitted_processors(model_market_store) -> None:
    import pickle

    handler = DataHandlerLP(
        instruments="csi300",
        start_time="2019-01-01",
        end_time="2019-12-31",
        data_loader=loader(["$close"]),
        infer_processors=[{"class": "ZScoreNorm", "kwargs": {"fields_group": "feature"}}],
        fit_end_time="2019-06-30",
        store=model_market_store,
        cache=False,
    )
    before = handler.fetch(col_set="feature")
    blob = pickle.dumps(handler)
    assert len(blob) < 20_000, "data is not pickled"
    restored = pickle.loads(blob)
    learned = restored.processors["infer"][0].mean_
    restored.store = model_market_store
    restored.fit_end_time = "2019-03-31"  # a refit would learn other statistics
    restored.setup_data(refit=False)
    assert restored.processors["infer"][0].mean_ == learned
    pd.testing.assert_frame_equal(restored.fetch(col_set="feature"), before)
