"""IC / Rank IC against scipy, long-short by hand, risk_analysis by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from alphalab.evaluate import (
    calc_ic,
    calc_long_short_return,
    indicator_analysis,
    risk_analysis,
    signal_analysis,
    signal_metrics,
)
from alphalab.exceptions import ConfigError, DataError


def random_pred_label(
    seed: int, n_days: int = 12, n_inst: int = 40
) -> tuple[pd.Series, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    index = pd.MultiIndex.from_product(
        [pd.bdate_range("2022-01-03", periods=n_days), [f"I{i}" for i in range(n_inst)]],
        names=["datetime", "instrument"],
    )
    pred = pd.Series(rng.normal(size=len(index)), index=index, name="score")
    label = 0.3 * pred + rng.normal(size=len(index))
    label = label.round(1)  # ties, so that Spearman's average ranks matter
    label[rng.random(len(index)) < 0.1] = np.nan
    pred[rng.random(len(index)) < 0.05] = np.nan
    return pred, label.to_frame("LABEL0")


def test_ic_and_rank_ic_match_scipy(seed: int) -> None:
    pred, label = random_pred_label(seed)
    ic, ric = calc_ic(pred.to_frame("score"), label)
    assert len(ic) == 12 and ic.index.name == "datetime"
    for date in ic.index:
        p = pred.loc[date]
        lab = label["LABEL0"].loc[date]
        ok = p.notna() & lab.notna()
        assert ic[date] == pytest.approx(stats.pearsonr(p[ok], lab[ok])[0], abs=1e-12)
        assert ric[date] == pytest.approx(stats.spearmanr(p[ok], lab[ok])[0], abs=1e-12)


def test_ic_undefined_dates_are_nan_and_dropna() -> None:
    index = pd.MultiIndex.from_tuples(
        [
            ("2022-01-03", "A"),
            ("2022-01-03", "B"),
            ("2022-01-04", "A"),
            ("2022-01-04", "B"),
            ("2022-01-04", "C"),
        ],
        names=["datetime", "instrument"],
    ).set_levels(pd.to_datetime(["2022-01-03", "2022-01-04"]), level=0)
    pred = pd.Series([1.0, 1.0, 1.0, 2.0, 3.0], index=index)
    label = pd.Series([0.1, 0.2, 0.3, 0.1, 0.2], index=index)
    ic, ric = calc_ic(pred, label)
    assert math.isnan(ic.iloc[0])  # constant prediction on the first date
    assert ic.iloc[1] == pytest.approx(np.corrcoef([1, 2, 3], [0.3, 0.1, 0.2])[0, 1])
    assert ric.iloc[1] == pytest.approx(-0.5)
    ic_d, _ = calc_ic(pred, label, dropna=True)
    assert len(ic_d) == 1


def test_long_short_by_hand() -> None:
    date = pd.Timestamp("2022-01-03")
    names = [f"I{i}" for i in range(10)]
    index = pd.MultiIndex.from_product([[date], names], names=["datetime", "instrument"])
    pred = pd.Series(np.arange(10, dtype=float), index=index)
    label = pd.Series([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 2.0], index=index)
    long_short, long_avg = calc_long_short_return(pred, label)
    # int(10 x 0.2) = 2: top two labels 0.8, 2.0 (mean 1.4), bottom two 0.0, 0.1 (mean 0.05).
    assert long_short[date] == pytest.approx((1.4 - 0.05) / 2)
    assert long_avg[date] == pytest.approx(label.mean())


def test_signal_metrics_definitions(seed: int) -> None:
    pred, label = random_pred_label(seed)
    result = signal_analysis(pred, label, ana_long_short=True, ann_scaler=252)
    ic, ls = result.ic, result.long_short_r
    assert ls is not None and result.long_avg_r is not None
    m = result.metrics
    assert list(m) == [
        "IC",
        "ICIR",
        "Rank IC",
        "Rank ICIR",
        "Long-Short Ann Return",
        "Long-Short Ann Sharpe",
        "Long-Avg Ann Return",
        "Long-Avg Ann Sharpe",
    ]
    assert m["IC"] == pytest.approx(ic.mean())
    assert m["ICIR"] == pytest.approx(ic.mean() / ic.std(ddof=1))
    assert m["Long-Short Ann Return"] == pytest.approx(ls.mean() * 252)
    assert m["Long-Short Ann Sharpe"] == pytest.approx(ls.mean() / ls.std() * math.sqrt(252))
    assert set(signal_metrics(result.ic, result.ric)) == {"IC", "ICIR", "Rank IC", "Rank ICIR"}


def test_risk_analysis_sum_mode_by_hand() -> None:
    r = pd.Series([0.01, -0.02, 0.03, 0.00])
    risk = risk_analysis(r)["risk"]
    assert list(risk.index) == [
        "mean",
        "std",
        "annualized_return",
        "information_ratio",
        "max_drawdown",
    ]
    std = math.sqrt((0.005**2 + 0.025**2 + 0.025**2 + 0.005**2) / 3)
    assert risk["mean"] == pytest.approx(0.005)
    assert risk["std"] == pytest.approx(std)
    assert risk["annualized_return"] == pytest.approx(0.005 * 238)
    assert risk["information_ratio"] == pytest.approx(0.005 / std * math.sqrt(238))
    # cumsum 0.01, -0.01, 0.02, 0.02; running max 0.01, 0.01, 0.02, 0.02.
    assert risk["max_drawdown"] == pytest.approx(-0.02)
    assert risk_analysis(r, freq="week")["risk"]["annualized_return"] == pytest.approx(0.005 * 50)
    assert risk_analysis(r, N=12, freq="day")["risk"]["annualized_return"] == pytest.approx(0.06)


def test_risk_analysis_product_mode_by_hand() -> None:
    r = pd.Series([0.01, -0.02, 0.03, 0.00])
    risk = risk_analysis(r, freq="day", mode="product")["risk"]
    final = 1.01 * 0.98 * 1.03
    assert risk["mean"] == pytest.approx(final**0.25 - 1)
    assert risk["annualized_return"] == pytest.approx(final ** (238 / 4) - 1)
    assert risk["max_drawdown"] == pytest.approx(0.98 - 1)
    assert risk["std"] == pytest.approx(np.std(np.log([1.01, 0.98, 1.03, 1.0]), ddof=1))


def test_risk_analysis_errors() -> None:
    with pytest.raises(ConfigError, match="Unknown analysis frequency 'fortnight'"):
        risk_analysis(pd.Series([0.1, 0.2]), freq="fortnight")
    with pytest.raises(ConfigError, match="mode must be 'sum' or 'product'"):
        risk_analysis(pd.Series([0.1, 0.2]), mode="log")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="empty return series"):
        risk_analysis(pd.Series([], dtype=float))
    with pytest.raises(ConfigError, match="needs N"):
        risk_analysis(pd.Series([0.1]), freq=None)


def test_indicator_analysis_weights_by_order_count() -> None:
    ind = pd.DataFrame(
        {
            "ffr": [1.0, 0.5, np.nan],
            "pa": [0.0, 0.2, np.nan],
            "pos": [0.0, 1.0, np.nan],
            "deal_amount": [10.0, 30.0, 0.0],
            "value": [100.0, 100.0, 0.0],
            "count": [1, 3, 0],
        }
    )
    out = indicator_analysis(ind)["value"]
    assert out["ffr"] == pytest.approx((1.0 * 1 + 0.5 * 3) / 4)
    assert out["pa"] == pytest.approx(0.15)
    assert out["pos"] == pytest.approx(0.75)
    assert indicator_analysis(ind, "amount_weighted")["value"]["ffr"] == pytest.approx(0.625)
    with pytest.raises(ConfigError, match="method must be one of"):
        indicator_analysis(ind, "median")
