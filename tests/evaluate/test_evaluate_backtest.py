"""Backtest inputs, outputs and ranges: market data construction, the last day of the data,
result layouts, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from alphalab.evaluate import (
    INDICATOR_COLUMNS,
    REPORT_COLUMNS,
    ExchangeConfig,
    MarketData,
    TopkDropoutStrategy,
    backtest,
)
from alphalab.exceptions import ConfigError, DataError, NotFoundError


def random_market(seed: int, n_inst: int = 20, n_days: int = 30) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2023-03-01", periods=n_days)
    names = [f"S{i:03d}" for i in range(n_inst)]
    close = 10 * np.exp(np.cumsum(rng.normal(0, 0.03, (n_days, n_inst)), axis=0))
    close[rng.random(close.shape) < 0.05] = np.nan
    index = pd.MultiIndex.from_product([dates, names], names=["datetime", "instrument"])
    frame = pd.DataFrame(
        {"$close": close.ravel(), "$factor": 1.0, "$volume": 1e6}, index=index
    ).reset_index()
    scores = pd.Series(rng.normal(size=len(index)), index=index, name="score")
    return frame, scores


def test_from_frame_pandas_and_polars_agree(seed: int) -> None:
    frame, _ = random_market(seed)
    from_pandas = MarketData.from_frame(frame)
    from_polars = MarketData.from_frame(pl.from_pandas(frame))
    from_index = MarketData.from_frame(frame.set_index(["datetime", "instrument"]))
    pd.testing.assert_frame_equal(from_pandas.close, from_polars.close)
    pd.testing.assert_frame_equal(from_pandas.close, from_index.close)
    assert from_pandas.close.shape == (30, 20)
    assert from_pandas.factor is not None and from_pandas.open is None
    assert from_pandas.close.loc["2023-03-01", "S000"] == frame["$close"].iloc[0]


def test_from_frame_benchmark_instrument_and_errors(seed: int) -> None:
    frame, _ = random_market(seed)
    market = MarketData.from_frame(frame, benchmark="S001")
    close = market.close["S001"]
    assert market.benchmark is not None
    expected = (close / close.shift(1) - 1).fillna(0.0)
    np.testing.assert_allclose(market.benchmark.to_numpy(), expected.to_numpy())
    with pytest.raises(NotFoundError, match=r"benchmark instrument\(s\) \['SH000300'\] are not"):
        MarketData.from_frame(frame, benchmark="SH000300")
    pair = market.benchmark_returns(["S001", "S002"])
    changes = market.close[["S001", "S002"]].pct_change(fill_method=None)
    np.testing.assert_allclose(pair.to_numpy(), changes.mean(axis=1).fillna(0.0).to_numpy())
    with pytest.raises(DataError, match=r"lacks the column\(s\) \['close'\]"):
        MarketData.from_frame(frame.drop(columns="$close"))
    with pytest.raises(DataError, match="repeats the pair"):
        MarketData.from_frame(pd.concat([frame, frame.iloc[:1]]))


def test_backtest_to_the_last_day_of_the_data(seed: int) -> None:
    frame, scores = random_market(seed)
    market = MarketData.from_frame(frame)
    strategy = TopkDropoutStrategy(signal=scores, topk=5, n_drop=2)
    last = market.dates[-1]
    # Scores run to the last day: the default end would be the day after, which the data does
    # not have, so the backtest ends on the last day.
    result = backtest(strategy, market)
    assert result.report.index[-1] == last
    assert result.report.index[0] == market.dates[0]
    explicit = backtest(strategy, market, start_time=market.dates[10], end_time=last)
    assert explicit.report.index[-1] == last and len(explicit.report) == 20
    assert explicit.report["account"].notna().all()


def test_default_end_is_the_day_after_the_last_score(seed: int) -> None:
    frame, scores = random_market(seed)
    market = MarketData.from_frame(frame)
    cut = scores[scores.index.get_level_values(0) <= market.dates[14]]
    result = backtest(TopkDropoutStrategy(signal=cut, topk=5, n_drop=2), market)
    assert result.report.index[-1] == market.dates[15]


def test_result_layouts_and_accounting_identities(seed: int) -> None:
    frame, scores = random_market(seed)
    market = MarketData.from_frame(frame, benchmark="S000")
    result = backtest(
        TopkDropoutStrategy(signal=scores.to_frame(), topk=5, n_drop=2),
        market,
        account=1e6,
        exchange_kwargs={"limit_threshold": 0.095, "deal_price": "$close", "freq": "day"},
    )
    report = result.report
    assert list(report.columns) == list(REPORT_COLUMNS)
    assert list(result.indicators.columns) == list(INDICATOR_COLUMNS)
    np.testing.assert_allclose(report["account"], report["cash"] + report["value"])
    np.testing.assert_allclose(
        report["total_cost"], report["cost"].mul(report["account"].shift(1).fillna(1e6)).cumsum()
    )
    # Weights of one day sum to the invested share of the account.
    day = report.index[5]
    weights = result.positions.loc[day, "weight"].sum()
    assert weights == pytest.approx(report.loc[day, "value"] / report.loc[day, "account"])
    assert (result.positions.groupby(level=0).size() <= 5 + 2).all()

    positions = result.position_dict()
    assert set(positions) == set(report.index)
    snapshot = positions[day]
    assert snapshot["cash"] == pytest.approx(report.loc[day, "cash"])
    some = next(k for k in snapshot if k not in ("cash", "now_account_value"))
    assert set(snapshot[some]) == {"amount", "price", "weight", "count_day"}

    analysis = result.port_analysis()
    assert list(analysis.index.get_level_values(0).unique()) == [
        "excess_return_without_cost",
        "excess_return_with_cost",
    ]
    metrics = result.metrics()
    assert "1day.excess_return_with_cost.information_ratio" in metrics
    assert {"1day.ffr", "1day.pa", "1day.pos"} <= set(metrics)
    assert metrics["1day.excess_return_without_cost.mean"] == pytest.approx(
        (report["return"] - report["bench"]).mean()
    )


def test_signal_instruments_without_prices_are_untradable(seed: int) -> None:
    frame, scores = random_market(seed, n_inst=6, n_days=5)
    market = MarketData.from_frame(frame)
    dates = market.dates
    ghost = pd.Series(
        100.0,
        index=pd.MultiIndex.from_product([dates, ["GHOST"]], names=["datetime", "instrument"]),
    )
    signal = pd.concat([scores, ghost]).sort_index()
    result = backtest(TopkDropoutStrategy(signal=signal, topk=2, n_drop=1), market)
    assert "GHOST" not in result.positions.index.get_level_values(1)
    # The best score takes a slot it cannot fill: one of the two slots stays in cash.
    assert result.positions.loc[dates[1]].shape[0] == 1


def test_signal_with_instrument_first_index(seed: int) -> None:
    frame, scores = random_market(seed)
    market = MarketData.from_frame(frame)
    swapped = scores.swaplevel().sort_index()
    swapped.index = swapped.index.set_names(["instrument", "date"])
    a = backtest(TopkDropoutStrategy(signal=scores, topk=5, n_drop=2), market)
    b = backtest(TopkDropoutStrategy(signal=swapped, topk=5, n_drop=2), market)
    pd.testing.assert_frame_equal(a.report, b.report)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"topk": 0, "n_drop": 1},
            "'topk' parameter of TopkDropoutStrategy must be an int >= 1; got 0",
        ),
        ({"topk": 5, "n_drop": -1}, "'n_drop' parameter .* must be an int >= 0; got -1"),
        ({"topk": 5, "n_drop": 1, "method_sell": "random"}, "supports only 'bottom'"),
        ({"topk": 5, "n_drop": 1, "risk_degree": 1.5}, r"'risk_degree' .* in \(0, 1\]"),
        ({"topk": 5, "n_drop": 1, "only_tradable": "yes"}, "'only_tradable' .* must be a bool"),
    ],
)
def test_invalid_strategy_parameters(seed: int, kwargs: dict, message: str) -> None:
    frame, scores = random_market(seed)
    strategy = TopkDropoutStrategy(signal=scores, **kwargs)  # construction never fails
    with pytest.raises(ConfigError, match=message):
        backtest(strategy, MarketData.from_frame(frame))


def test_invalid_exchange_and_ranges(seed: int) -> None:
    frame, scores = random_market(seed)
    market = MarketData.from_frame(frame)
    strategy = TopkDropoutStrategy(signal=scores, topk=5, n_drop=2)
    with pytest.raises(ConfigError, match=r"Unknown exchange option\(s\) \['volume_threshold'\]"):
        backtest(strategy, market, exchange_kwargs={"volume_threshold": 1})
    with pytest.raises(ConfigError, match="'deal_price' of the exchange must be one of"):
        ExchangeConfig(deal_price="high")
    with pytest.raises(ConfigError, match="'min_cost' of the exchange must be a number >= 0"):
        ExchangeConfig.from_kwargs({"min_cost": -1})
    with pytest.raises(DataError, match="deal_price='vwap' needs the 'vwap' field"):
        backtest(strategy, market, exchange_kwargs={"deal_price": "vwap"})
    with pytest.raises(DataError, match="holds no day of the market data"):
        backtest(strategy, market, start_time="2030-01-01")
    with pytest.raises(DataError, match="signal of TopkDropoutStrategy must have a 2-level index"):
        backtest(TopkDropoutStrategy(signal=scores.droplevel(1), topk=5, n_drop=1), market)
    with pytest.raises(ConfigError, match="'account' must be a positive number"):
        backtest(strategy, market, account=0)


def test_trade_unit_without_factor_is_ignored_with_a_warning(
    seed: int, caplog: pytest.LogCaptureFixture
) -> None:
    frame, scores = random_market(seed)
    market = MarketData.from_frame(frame.drop(columns="$factor"))
    strategy = TopkDropoutStrategy(signal=scores, topk=5, n_drop=2)
    with caplog.at_level("WARNING", logger="alphalab"):
        with_unit = backtest(strategy, market, exchange_kwargs={"trade_unit": 100})
    assert "trade_unit=100 is ignored" in caplog.text
    without = backtest(strategy, market)
    pd.testing.assert_frame_equal(with_unit.report, without.report)


def test_tradable_mask_suspends(seed: int) -> None:
    frame, scores = random_market(seed, n_inst=5, n_days=4)
    frame["tradable"] = frame["instrument"] != "S000"
    market = MarketData.from_frame(frame)
    boosted = scores.copy()
    boosted.loc[(slice(None), "S000")] = 99.0
    result = backtest(TopkDropoutStrategy(signal=boosted, topk=2, n_drop=1), market)
    assert "S000" not in result.positions.index.get_level_values(1)
