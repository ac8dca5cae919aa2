"""The TopkDropout backtest against small examples computed by hand (see the comments)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alphalab.evaluate import MarketData, TopkDropoutStrategy, backtest

DAYS = pd.bdate_range("2024-01-01", periods=6)  # d0 .. d5
NAMES = ["A", "B", "C", "D", "E"]
NAN = np.nan


def wide(rows: list[list[float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, index=DAYS[: len(rows)], columns=NAMES, dtype="float64")


def signal(rows: dict[int, list[float]]) -> pd.Series:
    """Scores by day number -> one score per name in NAMES."""
    index = pd.MultiIndex.from_product(
        [[DAYS[d] for d in rows], NAMES], names=["datetime", "instrument"]
    )
    return pd.Series(np.concatenate([rows[d] for d in rows]), index=index, name="score")


# Close prices (the deal price) and daily changes. B is limit-down on d2, C is suspended on d3,
# D is limit-up on d5.
CLOSE = wide(
    [
        [10.0, 20.0, 10.0, 30.0, 40.0],  # d0
        [10.0, 20.0, 10.0, 30.0, 40.0],  # d1
        [10.5, 18.0, 10.0, 30.0, 40.0],  # d2
        [10.5, 18.0, NAN, 30.0, 40.0],  # d3
        [10.5, 18.0, 12.0, 30.0, 40.0],  # d4
        [10.5, 20.0, 12.0, 30.0, 40.0],  # d5
    ]
)
CHANGE = wide(
    [
        [NAN, NAN, NAN, NAN, NAN],
        [0.0, 0.0, 0.0, 0.0, 0.0],
        [0.05, -0.10, 0.0, 0.0, 0.0],
        [0.0, 0.0, NAN, 0.0, 0.0],
        [0.0, 0.0, 0.03, 0.0, 0.0],
        [0.0, 0.02, 0.0, 0.10, 0.0],
    ]
)
SCORES = signal(
    {
        0: [5, 4, 3, 2, 1],
        1: [4, 1, 5, 3, 0],
        2: [5, 4, 3, 2, 1],
        3: [4, 2, 1, 5, 3],
        4: [3, 2, 1, 5, 4],
    }
)
EXCHANGE = {"open_cost": 0.001, "close_cost": 0.002, "min_cost": 5.0, "limit_threshold": 0.095}


def run(**strategy_kwargs: object) -> pd.DataFrame:
    kwargs = {"topk": 2, "n_drop": 1, **strategy_kwargs}
    strategy = TopkDropoutStrategy(signal=SCORES, **kwargs)  # type: ignore[arg-type]
    market = MarketData(close=CLOSE, change=CHANGE)
    return backtest(strategy, market, account=100_000.0, exchange_kwargs=EXCHANGE)


def holdings(result: object, day: int) -> dict[str, float]:
    positions = result.positions  # type: ignore[attr-defined]
    date = DAYS[day]
    if date not in positions.index.get_level_values(0):
        return {}
    return positions.loc[date]["amount"].to_dict()


def test_day_by_day_holdings_cash_and_account() -> None:
    result = run()
    report = result.report
    assert list(report.index) == list(DAYS)  # the backtest runs to the last day of the data

    # d0: no score dated the day before -> no trade.
    assert holdings(result, 0) == {}
    assert report.loc[DAYS[0], "account"] == pytest.approx(100_000.0)

    # d1 (scores of d0: A > B > C ...): buy A and B with 0.95 x 100000 / 2 = 47500 each.
    # A: 4750 @ 10, B: 2375 @ 20, cost 47.5 each; cash = 100000 - 95000 - 95 = 4905.
    assert holdings(result, 1) == pytest.approx({"A": 4750.0, "B": 2375.0})
    assert report.loc[DAYS[1], "cash"] == pytest.approx(4905.0)
    assert report.loc[DAYS[1], "cost"] == pytest.approx(95.0 / 100_000)
    assert report.loc[DAYS[1], "turnover"] == pytest.approx(0.95)
    assert report.loc[DAYS[1], "return"] == pytest.approx(0.0)

    # d2 (scores of d1: C > A > D > B): pool = C, A, B -> sell B, buy C. B is limit-down: the
    # sell fails, C is bought anyway with 0.95 x 4905 = 4659.75 -> 465.975 @ 10; its cost
    # 4.66 is below min_cost, so 5 is paid. Cash = 4905 - 4659.75 - 5 = 240.25.
    assert holdings(result, 2) == pytest.approx({"A": 4750.0, "B": 2375.0, "C": 465.975})
    assert report.loc[DAYS[2], "cash"] == pytest.approx(240.25)
    account_d2 = 240.25 + 4750 * 10.5 + 2375 * 18 + 465.975 * 10  # = 97525
    assert report.loc[DAYS[2], "account"] == pytest.approx(account_d2)
    assert report.loc[DAYS[2], "return"] == pytest.approx((97_525 - 99_905 + 5) / 99_905)

    # d3 (scores of d2: A > B > C): three held, no candidate; C is the worst -> sell C, but C is
    # suspended: nothing trades, C keeps its last price 10 in the valuation.
    assert holdings(result, 3) == pytest.approx({"A": 4750.0, "B": 2375.0, "C": 465.975})
    assert report.loc[DAYS[3], "account"] == pytest.approx(97_525.0)
    assert result.positions.loc[(DAYS[3], "C"), "price"] == pytest.approx(10.0)

    # d4 (scores of d3: A > B > C among held): sell C @ 12 = 5591.7, cost 11.1834 (rate above
    # the minimum). No buy: len(sell) + topk - len(held) = 1 + 2 - 3 = 0.
    assert holdings(result, 4) == pytest.approx({"A": 4750.0, "B": 2375.0})
    cash_d4 = 240.25 + 5591.7 - 11.1834
    assert report.loc[DAYS[4], "cash"] == pytest.approx(cash_d4)

    # d5 (scores of d4: D > E > A > B): candidate D; pool D, A, B -> sell B @ 20 (cost 95), buy D,
    # but D is limit-up: not bought, the cash stays.
    assert holdings(result, 5) == pytest.approx({"A": 4750.0})
    cash_d5 = cash_d4 + 47_500 - 95
    assert report.loc[DAYS[5], "cash"] == pytest.approx(cash_d5)
    assert report.loc[DAYS[5], "account"] == pytest.approx(cash_d5 + 4750 * 10.5)
    assert report.loc[DAYS[5], "total_cost"] == pytest.approx(95 + 5 + 11.1834 + 95)
    assert report.loc[DAYS[5], "total_turnover"] == pytest.approx(
        95_000 + 4659.75 + 5591.7 + 47_500
    )


def test_orders_and_indicators_of_the_hand_example() -> None:
    result = run()
    orders = result.orders
    # Blocked orders (limit, suspension) are never sent, as in Qlib's TopkDropout.
    sent = [(d.strftime("%m-%d"), i, int(o)) for (d, i), o in orders["direction"].items()]
    assert sent == [
        ("01-02", "A", 1),
        ("01-02", "B", 1),
        ("01-03", "C", 1),
        ("01-05", "C", -1),
        ("01-08", "B", -1),
    ]
    assert orders["cost"].tolist() == pytest.approx([47.5, 47.5, 5.0, 11.1834, 95.0])
    ind = result.indicators
    assert ind.loc[DAYS[1], "ffr"] == pytest.approx(1.0)
    assert ind.loc[DAYS[1], "count"] == 2
    assert ind.loc[DAYS[1], "pa"] == pytest.approx(0.0)  # deals at the close: no advantage
    assert ind.loc[DAYS[1], "pos"] == pytest.approx(0.0)
    assert np.isnan(ind.loc[DAYS[0], "ffr"])
    assert ind.loc[DAYS[0], "count"] == 0


def test_forbid_all_trade_at_limit_false_allows_selling_at_limit_up() -> None:
    close = wide([[10, 10, 10, 10, 10], [10, 10, 10, 10, 10], [11, 10, 10, 10, 10]])
    change = wide([[NAN] * 5, [0] * 5, [0.1, 0, 0, 0, 0]])
    scores = signal({0: [5, 1, 1, 1, 1], 1: [1, 5, 1, 1, 1]})
    market = MarketData(close=close, change=change)
    sold = {}
    for forbid in (True, False):
        strategy = TopkDropoutStrategy(
            signal=scores, topk=1, n_drop=1, forbid_all_trade_at_limit=forbid
        )
        result = backtest(strategy, market, exchange_kwargs=EXCHANGE, account=10_000.0)
        sold[forbid] = "A" not in holdings(result, 2)
    assert sold == {True: False, False: True}


def test_hold_thresh_delays_the_sell_but_not_the_buy() -> None:
    close = wide([[10.0] * 5] * 6)
    change = wide([[0.0] * 5] * 6)
    scores = signal({0: [5, 1, 0, 0, 0], 1: [1, 5, 0, 0, 0], 2: [1, 5, 0, 0, 0]})
    strategy = TopkDropoutStrategy(signal=scores, topk=1, n_drop=1, hold_thresh=2)
    result = backtest(
        strategy, MarketData(close=close, change=change), exchange_kwargs=EXCHANGE, account=1e4
    )
    # d1 buys A (9500 -> 950 shares). d2 wants to swap A for B: A has been held 1 day < 2, so
    # it stays, while B is still bought with 0.95 of the remaining cash. d3 sells A.
    assert holdings(result, 1) == pytest.approx({"A": 950.0})
    cash_d1 = 10_000 - 9_500 - 9.5
    assert holdings(result, 2) == pytest.approx({"A": 950.0, "B": cash_d1 * 0.95 / 10})
    assert set(holdings(result, 3)) == {"B"}
    assert result.positions.loc[(DAYS[2], "A"), "count_day"] == 2


def test_trade_unit_rounds_down_in_raw_shares() -> None:
    close = wide([[3.0] * 5] * 3)
    factor = wide([[2.0] * 5] * 3)
    scores = signal({0: [5, 1, 0, 0, 0]})
    strategy = TopkDropoutStrategy(signal=scores, topk=1, n_drop=1)
    market = MarketData(close=close, factor=factor)
    result = backtest(
        strategy,
        market,
        account=10_000.0,
        exchange_kwargs={"trade_unit": 100, "min_cost": 5.0, "open_cost": 0.0005},
    )
    # 9500 / 3 = 3166.67 adjusted = 6333.3 raw shares -> 6300 raw = 3150 adjusted, value 9450;
    # cost max(4.725, 5) = 5.
    assert holdings(result, 1) == pytest.approx({"A": 3150.0})
    assert result.report.loc[DAYS[1], "cash"] == pytest.approx(10_000 - 9_450 - 5)
    order = result.orders.iloc[0]
    assert order["amount"] == pytest.approx(3150.0)


def test_buy_clipped_by_cash_when_cost_does_not_fit() -> None:
    close = wide([[10.0] * 5] * 3)
    scores = signal({0: [5, 1, 0, 0, 0]})
    strategy = TopkDropoutStrategy(signal=scores, topk=1, n_drop=1, risk_degree=1.0)
    result = backtest(
        strategy,
        MarketData(close=close),
        account=100_000.0,
        exchange_kwargs={"open_cost": 0.001, "min_cost": 5.0},
    )
    # The whole cash is asked for; value + cost would exceed it, so the amount becomes
    # cash / (1 + open_cost) / price.
    expected = 100_000 / 1.001 / 10
    assert holdings(result, 1) == pytest.approx({"A": expected})
    assert result.report.loc[DAYS[1], "cash"] == pytest.approx(0.0, abs=1e-6)
    assert result.indicators.loc[DAYS[1], "ffr"] == pytest.approx(1 / 1.001)


def test_only_tradable_skips_untradable_candidates() -> None:
    close = wide([[10.0] * 5] * 3)
    change = wide([[0.0] * 5, [0.1, 0, 0, 0, 0], [0] * 5])
    scores = signal({0: [5, 4, 0, 0, 0]})
    market = MarketData(close=close, change=change)
    bought = {}
    for only in (False, True):
        strategy = TopkDropoutStrategy(signal=scores, topk=1, n_drop=1, only_tradable=only)
        result = backtest(strategy, market, exchange_kwargs=EXCHANGE, account=1e4)
        bought[only] = sorted(holdings(result, 1))
    # A is limit-up on d1: chosen then blocked, or skipped in favour of B.
    assert bought == {False: [], True: ["B"]}


def test_deal_price_open_falls_back_to_close_and_gives_price_advantage() -> None:
    close = wide([[10.0] * 5] * 3)
    opens = wide([[10.0] * 5, [8.0, NAN, 10, 10, 10], [10.0] * 5])
    scores = signal({0: [5, 4, 0, 0, 0]})
    strategy = TopkDropoutStrategy(signal=scores, topk=2, n_drop=1)
    result = backtest(
        strategy,
        MarketData(close=close, open=opens),
        account=1e5,
        exchange_kwargs={**EXCHANGE, "deal_price": "open"},
    )
    orders = result.orders.loc[DAYS[1]]
    assert orders.loc["A", "price"] == 8.0
    assert orders.loc["B", "price"] == 10.0  # open missing -> close
    # pa of a buy = 1 - price / close: A 0.2, B 0 -> mean 0.1; pos = share of pa > 0.
    assert result.indicators.loc[DAYS[1], "pa"] == pytest.approx(0.1)
    assert result.indicators.loc[DAYS[1], "pos"] == pytest.approx(0.5)


def test_min_cost_on_small_buys_and_sells() -> None:
    close = wide([[10.0] * 5] * 3)
    scores = signal({0: [5, 1, 0, 0, 0], 1: [1, 5, 0, 0, 0]})
    strategy = TopkDropoutStrategy(signal=scores, topk=1, n_drop=1)
    result = backtest(strategy, MarketData(close=close), account=1_000.0, exchange_kwargs=EXCHANGE)
    # d1: buy A for 950 (cost max(0.95, 5) = 5), cash 45. d2: sell A for 950 (cost max(1.9, 5)
    # = 5), cash 990; buy B for 0.95 x 990 = 940.5 (cost 5), cash 44.5.
    assert result.orders["cost"].tolist() == pytest.approx([5.0, 5.0, 5.0])
    assert result.report.loc[DAYS[1], "cash"] == pytest.approx(45.0)
    assert result.report.loc[DAYS[2], "cash"] == pytest.approx(44.5)
    assert holdings(result, 2) == pytest.approx({"B": 94.05})
    assert result.report.loc[DAYS[2], "cost"] == pytest.approx(10.0 / 995.0)


def test_n_drop_zero_keeps_the_book() -> None:
    close = wide([[10.0] * 5] * 4)
    scores = signal({0: [5, 4, 0, 0, 0], 1: [0, 0, 5, 4, 3], 2: [0, 0, 5, 4, 3]})
    strategy = TopkDropoutStrategy(signal=scores, topk=2, n_drop=0)
    result = backtest(strategy, MarketData(close=close), account=1e5, exchange_kwargs=EXCHANGE)
    # Qlib's list[-0:] would sell the whole book every day; alphalab never sells with n_drop=0.
    assert set(holdings(result, 3)) == {"A", "B"}
    assert len(result.orders) == 2
