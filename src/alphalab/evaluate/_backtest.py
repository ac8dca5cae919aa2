"""The daily TopkDropout backtest over (dates x instruments) arrays.

The portfolio of day t depends on the portfolio of day t-1, so the days run in a loop; within a
day every step works on numpy arrays indexed by instrument (positions, prices, masks) and only
the few orders of the day are visited one by one, as plain numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from alphalab.evaluate._market import ExchangeConfig, MarketData
from alphalab.evaluate._risk import indicator_analysis, risk_analysis
from alphalab.evaluate.strategy import TopkDropoutStrategy
from alphalab.exceptions import ConfigError, DataError
from alphalab.logging import get_logger

logger = get_logger(__name__)

REPORT_COLUMNS = (
    "account",
    "return",
    "total_turnover",
    "turnover",
    "total_cost",
    "cost",
    "value",
    "cash",
    "bench",
)
INDICATOR_COLUMNS = ("ffr", "pa", "pos", "deal_amount", "value", "count")
ORDER_COLUMNS = ("direction", "amount", "deal_amount", "price", "value", "cost")
_BUY, _SELL = 1, -1
_DUST = 1e-5  # an order dealing no more value than this deals nothing and costs nothing


@dataclass(frozen=True, repr=False)
class BacktestResult:
    """What a backtest produced, with Qlib's names and shapes.

    Attributes:
        report: Daily report by datetime with the columns ``account, return, total_turnover,
            turnover, total_cost, cost, value, cash, bench`` (``report_normal_1day.pkl``).
        positions: End-of-day holdings, indexed by (datetime, instrument), with the columns
            ``amount`` (adjusted shares), ``price`` (last known close), ``weight`` (value /
            account) and ``count_day`` (days held). :meth:`position_dict` gives Qlib's layout.
        indicators: Daily trade indicators by datetime: ``ffr, pa, pos, deal_amount, value,
            count`` (``indicators_normal_1day.pkl``).
        orders: Every order the strategy sent, indexed by (datetime, instrument), with the
            columns ``direction`` (1 buy, -1 sell), ``amount`` (asked), ``deal_amount``,
            ``price``, ``value`` and ``cost``.
    """

    report: pd.DataFrame
    positions: pd.DataFrame
    indicators: pd.DataFrame
    orders: pd.DataFrame

    def __repr__(self) -> str:
        report = self.report
        if report.empty:
            return "BacktestResult(no day)"
        return (
            f"BacktestResult({len(report)} days {report.index[0].date()}.."
            f"{report.index[-1].date()}, {len(self.orders)} orders, "
            f"final account {report['account'].iloc[-1]:.2f})"
        )

    def position_dict(self) -> dict[pd.Timestamp, dict[str, Any]]:
        """Positions by date in Qlib's layout (``positions_normal_1day.pkl``).

        Each date maps to ``{"cash": ..., "now_account_value": ..., instrument: {"amount",
        "price", "weight", "count_day"}, ...}``.
        """
        out: dict[pd.Timestamp, dict[str, Any]] = {}
        for date, row in self.report[["cash", "account"]].iterrows():
            out[pd.Timestamp(date)] = {"cash": row["cash"], "now_account_value": row["account"]}
        columns = ["amount", "price", "weight", "count_day"]
        for (date, instrument), values in zip(
            self.positions.index, self.positions[columns].itertuples(index=False), strict=True
        ):
            out[pd.Timestamp(date)][instrument] = dict(zip(columns, values, strict=True))
        return out

    def port_analysis(self, freq: str = "day", mode: str = "sum") -> pd.DataFrame:
        """Risk analysis of the excess return without and with cost (``port_analysis_1day.pkl``).

        Returns:
            A DataFrame with column ``risk`` and index (analysis, metric), analysis being
            ``excess_return_without_cost`` (return − bench) and ``excess_return_with_cost``
            (return − bench − cost).
        """
        report = self.report
        without_cost = report["return"] - report["bench"]
        with_cost = without_cost - report["cost"]
        parts = {
            "excess_return_without_cost": risk_analysis(without_cost, freq=freq, mode=mode),  # type: ignore[arg-type]
            "excess_return_with_cost": risk_analysis(with_cost, freq=freq, mode=mode),  # type: ignore[arg-type]
        }
        return pd.concat(parts, names=["analysis", "metric"])

    def indicator_analysis(self, method: str = "mean") -> pd.DataFrame:
        """Summary of ``ffr, pa, pos`` over the backtest (``indicator_analysis_1day.pkl``)."""
        return indicator_analysis(self.indicators, method=method)

    def metrics(self, freq: str = "day", prefix: str = "1day") -> dict[str, float]:
        """The PortAnaRecord metrics: ``1day.excess_return_without_cost.mean`` ... ``1day.pos``."""
        flat: dict[str, float] = {}
        for (analysis, metric), value in self.port_analysis(freq=freq)["risk"].items():
            flat[f"{prefix}.{analysis}.{metric}"] = float(value)
        for name, value in self.indicator_analysis()["value"].items():
            flat[f"{prefix}.{name}"] = float(value)
        return flat


def _resolve_range(
    calendar: pd.DatetimeIndex,
    signal_dates: pd.DatetimeIndex,
    start_time: Any,
    end_time: Any,
) -> tuple[int, int]:
    """Return the first and last calendar positions of the backtest (inclusive)."""
    start = pd.Timestamp(signal_dates.min() if start_time is None else start_time)
    first = int(calendar.searchsorted(start, side="left"))
    if end_time is None:
        # Use every score: the last one trades on the next day of the data, when there is one.
        last = min(int(calendar.searchsorted(signal_dates.max(), side="right")), len(calendar) - 1)
    else:
        last = int(calendar.searchsorted(pd.Timestamp(end_time), side="right")) - 1
    if first > last or first >= len(calendar):
        raise DataError(
            f"The backtest range {start.date()} .. "
            f"{pd.Timestamp(end_time).date() if end_time is not None else 'end'} holds no day of "
            f"the market data ({calendar[0].date()} .. {calendar[-1].date()})"
        )
    return first, last


def _score_matrix(
    scores: pd.Series, calendar: pd.DatetimeIndex, instruments: pd.Index
) -> np.ndarray:
    """Scores as a (calendar days x instruments) array.

    A score dated between two trading days counts for the earlier one; the latest row wins.
    """
    index = cast(pd.MultiIndex, scores.index)  # TopkDropoutStrategy.scores() made it
    day_of_level = calendar.searchsorted(index.levels[0], side="right") - 1
    inst_of_level = instruments.get_indexer(index.levels[1])
    day = day_of_level[index.codes[0]]
    inst = inst_of_level[index.codes[1]]
    values = scores.to_numpy()
    keep = (day >= 0) & (inst >= 0)
    day, inst, values = day[keep], inst[keep], values[keep]
    order = np.lexsort((np.arange(len(day)), inst, day))  # later rows overwrite earlier ones
    matrix = np.full((len(calendar), len(instruments)), np.nan)
    matrix[day[order], inst[order]] = values[order]
    return matrix


def backtest(
    strategy: TopkDropoutStrategy,
    market: MarketData,
    *,
    start_time: Any = None,
    end_time: Any = None,
    account: float = 1e8,
    benchmark: str | Sequence[str] | pd.Series | None = None,
    exchange_kwargs: Mapping[str, Any] | ExchangeConfig | None = None,
) -> BacktestResult:
    """Run a daily TopkDropout backtest with Qlib's exchange semantics.

    Day t trades on the scores of the trading day before t, at the deal price of day t: sells
    first, then buys with ``risk_degree`` of the cash split equally over the instruments to buy.
    Suspended instruments (no close, or ``tradable`` False) and instruments at their price limit
    are not traded; costs are ``max(value x rate, min_cost)``; amounts are rounded down to whole
    ``trade_unit`` lots when configured. The calendar is the market data's dates, so a backtest
    may run to the last day of the data.

    Args:
        strategy: The strategy and its signal.
        market: Prices and the other daily fields.
        start_time: First day (default: the first date of the signal).
        end_time: Last day (default: the trading day after the last date of the signal, or the
            last day of the data).
        account: Initial cash.
        benchmark: Instrument code, list of codes (mean change) or daily return Series;
            default the market's benchmark (zeros when it has none).
        exchange_kwargs: Qlib-style exchange options or an :class:`ExchangeConfig`.

    Returns:
        The report, positions, indicators and orders.

    Raises:
        ConfigError: A strategy or exchange parameter is invalid.
        DataError: The signal or the range does not fit the market data.
    """
    strategy.validate()
    exchange = ExchangeConfig.from_kwargs(exchange_kwargs)
    if not isinstance(account, int | float) or isinstance(account, bool) or account <= 0:
        raise ConfigError(f"The backtest 'account' must be a positive number; got {account!r}")
    scores = strategy.scores()
    if scores.empty:
        raise DataError("The signal of the strategy is empty; there is nothing to backtest")
    calendar = market.dates
    if len(calendar) == 0:
        raise DataError("The market data has no trading day")
    score_index = cast(pd.MultiIndex, scores.index)
    used = np.unique(score_index.codes[1])
    signal_instruments = score_index.levels[1][used]
    instruments = market.instruments.append(signal_instruments.difference(market.instruments))
    n_extra = len(instruments) - len(market.instruments)
    signal_dates = pd.DatetimeIndex(score_index.levels[0][np.unique(score_index.codes[0])])
    first, last = _resolve_range(calendar, signal_dates, start_time, end_time)

    def wide(frame: pd.DataFrame | None) -> np.ndarray | None:
        if frame is None:
            return None
        values = frame.to_numpy(dtype="float64")
        if n_extra:
            values = np.hstack([values, np.full((len(calendar), n_extra), np.nan)])
        return values

    close = market.close.to_numpy(dtype="float64")
    if n_extra:  # instruments with scores but no prices are suspended every day
        close = np.hstack([close, np.full((len(calendar), n_extra), np.nan)])
    suspended = ~np.isfinite(close)
    if market.tradable is not None:
        tradable = market.tradable.to_numpy(dtype=bool)
        suspended[:, : tradable.shape[1]] |= ~tradable
    deal = wide(getattr(market, exchange.deal_price)) if exchange.deal_price != "close" else close
    if deal is None:
        raise DataError(
            f"deal_price={exchange.deal_price!r} needs the {exchange.deal_price!r} field in the "
            "market data"
        )
    if deal is not close:
        deal = np.where(np.isfinite(deal) & (deal > 1e-8), deal, close)
    change = wide(market.change)
    if change is None:
        with np.errstate(invalid="ignore", divide="ignore"):
            change = np.vstack([np.full((1, close.shape[1]), np.nan), close[1:] / close[:-1] - 1])
    if exchange.limit_threshold is None:
        limit_buy = suspended.copy()
        limit_sell = suspended.copy()
    else:
        with np.errstate(invalid="ignore"):
            limit_buy = suspended | (change >= exchange.limit_threshold)
            limit_sell = suspended | (change <= -exchange.limit_threshold)
    factor = wide(market.factor)
    unit = exchange.trade_unit
    if unit is not None:
        days = slice(first, last + 1)
        if factor is None or (np.isnan(factor[days]) & ~suspended[days]).any():
            logger.warning(
                "trade_unit=%s is ignored: the market data lacks a factor for some traded day; "
                "amounts are not rounded to lots",
                unit,
            )
            unit = None
    score = _score_matrix(scores, calendar, instruments)
    bench = market.benchmark_returns(benchmark).to_numpy()

    state = _run(
        strategy,
        exchange,
        unit,
        float(account),
        first,
        last,
        score,
        close,
        deal,
        suspended,
        limit_buy,
        limit_sell,
        factor,
    )
    return _assemble(state, calendar[first : last + 1], instruments, bench[first : last + 1])


@dataclass
class _State:
    report: np.ndarray  # days x len(REPORT_COLUMNS) - 1 (bench added later)
    pos_day: list[np.ndarray]
    pos_inst: list[np.ndarray]
    pos_amount: list[np.ndarray]
    pos_price: list[np.ndarray]
    pos_count: list[np.ndarray]
    indicators: np.ndarray
    orders: list[tuple[int, int, int, float, float, float, float, float]]


def _round_lot(amount: float, factor: float, unit: float | None) -> float:
    """Round an adjusted amount down to whole lots of ``unit`` raw shares.

    The 0.1 added before flooring absorbs floating-point error, as in Qlib.
    """
    if unit is None:
        return amount
    return float((amount * factor + 0.1) // unit * unit / factor)


def _run(
    strategy: TopkDropoutStrategy,
    exchange: ExchangeConfig,
    unit: float | None,
    account: float,
    first: int,
    last: int,
    score: np.ndarray,
    close: np.ndarray,
    deal: np.ndarray,
    suspended: np.ndarray,
    limit_buy: np.ndarray,
    limit_sell: np.ndarray,
    factor: np.ndarray | None,
) -> _State:
    n_inst = close.shape[1]
    topk, n_drop, hold_thresh = strategy.topk, strategy.n_drop, strategy.hold_thresh
    only_tradable = strategy.only_tradable
    forbid_all = strategy.forbid_all_trade_at_limit
    risk_degree = float(strategy.risk_degree)
    open_cost, close_cost, min_cost = exchange.open_cost, exchange.close_cost, exchange.min_cost

    amount = np.zeros(n_inst)
    held = np.zeros(n_inst, dtype=bool)
    price = np.zeros(n_inst)  # last known close of each holding (deal price on the buy day)
    count = np.zeros(n_inst, dtype=np.int64)
    cash = account
    prev_account = account
    total_cost = total_turnover = 0.0
    n_days = last - first + 1
    report = np.empty((n_days, len(REPORT_COLUMNS) - 1))
    indicators = np.full((n_days, len(INDICATOR_COLUMNS)), np.nan)
    state = _State(report, [], [], [], [], [], indicators, [])
    no_score = np.inf

    for row, day in enumerate(range(first, last + 1)):
        day_cost = day_value = 0.0
        asked: list[float] = []
        dealt: list[float] = []
        advantage: list[float] = []
        traded_amount = 0.0
        s = score[day - 1] if day > 0 else None
        if s is not None and np.isfinite(s).any():
            key = np.where(np.isfinite(s), -s, no_score)  # ascending key = best score first
            lb, ls, px, cl = limit_buy[day], limit_sell[day], deal[day], close[day]
            tradable_any = ~(lb | ls)
            held_idx = np.flatnonzero(held)
            held_sorted = held_idx[np.argsort(key[held_idx], kind="stable")]
            candidate = ~held & np.isfinite(s)
            if only_tradable:
                candidate &= tradable_any
            cand_idx = np.flatnonzero(candidate)
            n_cand = max(0, n_drop + topk - len(held_idx))
            cand_sorted = cand_idx[np.argsort(key[cand_idx], kind="stable")][:n_cand]
            pool = np.concatenate([held_sorted, cand_sorted])
            pool = pool[np.argsort(key[pool], kind="stable")]
            if only_tradable:
                pool = pool[tradable_any[pool]]
            worst = pool[len(pool) - n_drop :] if n_drop > 0 else pool[:0]
            sell_idx = held_sorted[np.isin(held_sorted, worst)]
            n_buy = max(0, len(sell_idx) + topk - len(held_idx))
            buy_idx = cand_sorted[:n_buy]

            sell_blocked = (lb | ls) if forbid_all else ls
            for i in sell_idx:
                if sell_blocked[i] or count[i] < hold_thresh:
                    continue
                want = float(amount[i])
                p = float(px[i])
                value = want * p
                cost = max(value * close_cost, min_cost)
                if cash + value < cost or value <= _DUST:  # could not pay the cost: no deal
                    asked.append(want)
                    dealt.append(0.0)
                    state.orders.append((row, int(i), _SELL, want, 0.0, p, 0.0, 0.0))
                    continue
                cash += value - cost
                day_cost += cost
                day_value += value
                traded_amount += want
                amount[i] = 0.0
                held[i] = False
                count[i] = 0
                asked.append(want)
                dealt.append(want)
                advantage.append(p / float(cl[i]) - 1.0)
                state.orders.append((row, int(i), _SELL, want, want, p, value, cost))

            budget = cash * risk_degree / len(buy_idx) if len(buy_idx) else 0.0
            buy_blocked = (lb | ls) if forbid_all else lb
            for i in buy_idx:
                if buy_blocked[i]:
                    continue
                p = float(px[i])
                f = float(factor[day, i]) if factor is not None else 1.0
                want = _round_lot(budget / p, f, unit)
                got = want
                value = got * p
                if cash < max(value * open_cost, min_cost):
                    got = 0.0
                elif cash < value + max(value * open_cost, min_cost):
                    # Not enough cash for value plus cost: buy what the cash covers.
                    if cash < min_cost:
                        affordable = 0.0
                    elif open_cost > 0 and cash >= min_cost / open_cost + min_cost:
                        affordable = cash / (1.0 + open_cost) / p  # the cost is the rate
                    else:
                        affordable = (cash - min_cost) / p  # the cost is min_cost
                    got = _round_lot(min(affordable, want), f, unit)
                value = got * p
                if want > 0:
                    asked.append(want)
                    dealt.append(got if value > _DUST else 0.0)
                if value <= _DUST:
                    state.orders.append((row, int(i), _BUY, want, 0.0, p, 0.0, 0.0))
                    continue
                cost = max(value * open_cost, min_cost)
                cash -= value + cost
                day_cost += cost
                day_value += value
                traded_amount += got
                amount[i] = got
                held[i] = True
                price[i] = p
                count[i] = 0
                advantage.append(1.0 - p / float(cl[i]))
                state.orders.append((row, int(i), _BUY, want, got, p, value, cost))

        # End of the day: holdings take the day's close (suspended ones keep their last price).
        update = held & ~suspended[day]
        price[update] = close[day][update]
        count[held] += 1
        held_idx = np.flatnonzero(held)
        stock_value = float(amount[held_idx] @ price[held_idx])
        account_value = cash + stock_value
        total_cost += day_cost
        total_turnover += day_value
        report[row] = (
            account_value,
            (account_value - prev_account + day_cost) / prev_account,
            total_turnover,
            day_value / prev_account,
            total_cost,
            day_cost / prev_account,
            stock_value,
            cash,
        )
        prev_account = account_value
        if asked:
            ratios = np.asarray(dealt) / np.asarray(asked)
            indicators[row, 0] = ratios.mean()
            indicators[row, 3] = traded_amount
            indicators[row, 4] = day_value
            indicators[row, 5] = len(asked)
            if advantage:
                pa = np.asarray(advantage)
                indicators[row, 1] = pa.mean()
                indicators[row, 2] = (pa > 0).mean()
        else:
            indicators[row, 3:] = 0.0
        state.pos_day.append(np.full(len(held_idx), row))
        state.pos_inst.append(held_idx)
        state.pos_amount.append(amount[held_idx].copy())
        state.pos_price.append(price[held_idx].copy())
        state.pos_count.append(count[held_idx].copy())
    return state


def _assemble(
    state: _State, days: pd.DatetimeIndex, instruments: pd.Index, bench: np.ndarray
) -> BacktestResult:
    index = pd.DatetimeIndex(days, name="datetime")
    report = pd.DataFrame(state.report, index=index, columns=list(REPORT_COLUMNS[:-1]))
    report["bench"] = bench
    indicators = pd.DataFrame(state.indicators, index=index, columns=list(INDICATOR_COLUMNS))
    indicators["count"] = indicators["count"].astype("int64")

    rows = np.concatenate(state.pos_day) if state.pos_day else np.zeros(0, dtype=np.int64)
    inst = np.concatenate(state.pos_inst) if state.pos_inst else np.zeros(0, dtype=np.int64)
    amounts = np.concatenate(state.pos_amount) if state.pos_amount else np.zeros(0)
    prices = np.concatenate(state.pos_price) if state.pos_price else np.zeros(0)
    counts = np.concatenate(state.pos_count) if state.pos_count else np.zeros(0, dtype=np.int64)
    pos_index = pd.MultiIndex.from_arrays(
        [index[rows], instruments[inst]], names=["datetime", "instrument"]
    )
    weights = amounts * prices / state.report[rows, 0]
    positions = pd.DataFrame(
        {"amount": amounts, "price": prices, "weight": weights, "count_day": counts},
        index=pos_index,
    )

    if state.orders:
        o_row, o_inst, *o_values = (np.asarray(col) for col in zip(*state.orders, strict=True))
        order_index = pd.MultiIndex.from_arrays(
            [index[o_row], instruments[o_inst]], names=["datetime", "instrument"]
        )
        orders = pd.DataFrame(dict(zip(ORDER_COLUMNS, o_values, strict=True)), index=order_index)
        orders["direction"] = orders["direction"].astype("int64")
    else:
        empty = pd.MultiIndex.from_arrays(
            [pd.DatetimeIndex([]), pd.Index([], dtype=object)], names=["datetime", "instrument"]
        )
        orders = pd.DataFrame({c: pd.Series(dtype="float64") for c in ORDER_COLUMNS}, index=empty)
        orders["direction"] = orders["direction"].astype("int64")
    return BacktestResult(report=report, positions=positions, indicators=indicators, orders=orders)
