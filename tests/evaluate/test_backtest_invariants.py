"""Invariants of the backtest on random markets with suspensions and limit days."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphalab.evaluate import MarketData, TopkDropoutStrategy, backtest


def market_and_scores(seed: int) -> tuple[MarketData, pd.Series]:
    rng = np.random.default_rng(seed)
    n_days, n_inst = 25, 15
    dates = pd.bdate_range("2024-02-01", periods=n_days)
    names = [f"X{i:02d}" for i in range(n_inst)]
    returns = rng.normal(0, 0.03, (n_days, n_inst))
    limit = rng.random(returns.shape) < 0.08
    returns[limit] = np.sign(rng.normal(size=limit.sum())) * 0.1
    close = 5 * np.exp(np.cumsum(np.log1p(returns), axis=0))
    change = np.vstack([np.full((1, n_inst), np.nan), close[1:] / close[:-1] - 1])
    close[rng.random(close.shape) < 0.08] = np.nan
    market = MarketData(
        close=pd.DataFrame(close, index=dates, columns=names),
        change=pd.DataFrame(change, index=dates, columns=names),
        factor=pd.DataFrame(rng.uniform(0.5, 2, (n_days, n_inst)), index=dates, columns=names),
    )
    index = pd.MultiIndex.from_product([dates, names], names=["datetime", "instrument"])
    return market, pd.Series(rng.normal(size=len(index)), index=index)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    topk=st.integers(1, 6),
    n_drop=st.integers(0, 4),
    hold_thresh=st.integers(0, 3),
    only_tradable=st.booleans(),
    forbid=st.booleans(),
    unit=st.sampled_from([None, 100]),
)
def test_backtest_invariants(
    seed: int,
    topk: int,
    n_drop: int,
    hold_thresh: int,
    only_tradable: bool,
    forbid: bool,
    unit: int | None,
) -> None:
    market, scores = market_and_scores(seed)
    strategy = TopkDropoutStrategy(
        signal=scores,
        topk=topk,
        n_drop=n_drop,
        hold_thresh=hold_thresh,
        only_tradable=only_tradable,
        forbid_all_trade_at_limit=forbid,
    )
    result = backtest(
        strategy,
        market,
        account=50_000.0,
        exchange_kwargs={"min_cost": 5.0, "trade_unit": unit, "limit_threshold": 0.095},
    )
    report, orders = result.report, result.orders
    assert (report["cash"] >= -1e-6).all()
    np.testing.assert_allclose(report["account"], report["cash"] + report["value"], rtol=1e-12)
    dealt = orders[orders["deal_amount"] > 0]
    assert (dealt["cost"] >= 5.0 - 1e-12).all()
    assert (orders.loc[orders["deal_amount"] == 0, "cost"] == 0).all()
    for (date, instrument), row in dealt.iterrows():
        assert np.isfinite(market.close.loc[date, instrument])  # never trade a suspended one
        change = market.change.loc[date, instrument]  # type: ignore[union-attr]
        if row["direction"] == 1:
            assert not change >= 0.095
            assert not (forbid and change <= -0.095)
        else:
            assert not change <= -0.095
            assert not (forbid and change >= 0.095)
        if unit is not None and row["direction"] == 1:
            raw = row["deal_amount"] * market.factor.loc[date, instrument]  # type: ignore[union-attr]
            assert raw == pytest.approx(round(raw / unit) * unit, abs=1e-6)
    # Never more new names than the strategy asked for: buys on a day <= topk.
    buys = dealt[dealt["direction"] == 1].groupby(level=0).size()
    assert (buys <= topk).all()
    # A name bought today is not sold before hold_thresh days.
    sells = dealt[dealt["direction"] == -1]
    if len(sells) and hold_thresh > 1:
        days = report.index
        for date, instrument in sells.index:
            k = days.get_loc(date)
            previous = result.positions.loc[days[k - 1]]
            assert previous.loc[instrument, "count_day"] >= hold_thresh
