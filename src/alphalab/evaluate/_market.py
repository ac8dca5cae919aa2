"""Market data for the backtest as wide frames (dates x instruments), and the exchange rules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from alphalab.exceptions import ConfigError, DataError, NotFoundError

_WIDE_FIELDS = ("open", "vwap", "change", "factor", "tradable")
_FRAME_FIELDS = ("close", "open", "vwap", "change", "factor")


def _check_wide(name: str, frame: pd.DataFrame) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise DataError(
            f"MarketData.{name} must be a DataFrame (dates x instruments); "
            f"got {type(frame).__name__}"
        )
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise DataError(
            f"MarketData.{name} must have a DatetimeIndex of trading days; "
            f"got {type(frame.index).__name__}"
        )


@dataclass(frozen=True, repr=False)
class MarketData:
    """Daily market data the backtest reads: wide frames, dates x instruments.

    Prices are adjusted prices.

    Attributes:
        close: Close prices; NaN means the instrument is suspended (or not listed) that day.
            Its index is the trading calendar of the backtest and its columns the instruments.
        open: Open prices, needed for ``deal_price="open"``.
        vwap: Volume-weighted average prices, needed for ``deal_price="vwap"``.
        change: Daily change of the close (``close / previous close - 1``), used for the
            limit-up/down rule; computed from ``close`` when absent.
        factor: Adjustment factor (adjusted price = raw price x factor), used to round amounts
            to whole trade units; without it no rounding happens.
        tradable: Optional boolean mask; False marks an instrument as suspended that day even if
            it has a price.
        benchmark: Daily returns of the benchmark indexed by date (the return dated t is the
            change from t-1 to t); missing days count as 0.

    Frames other than ``close`` are aligned to ``close`` (reindexed) on construction.
    """

    close: pd.DataFrame
    open: pd.DataFrame | None = None
    vwap: pd.DataFrame | None = None
    change: pd.DataFrame | None = None
    factor: pd.DataFrame | None = None
    tradable: pd.DataFrame | None = None
    benchmark: pd.Series | None = None

    def __repr__(self) -> str:
        present = [f.name for f in fields(self) if getattr(self, f.name) is not None]
        dates = self.close.index
        span = f"{dates[0].date()}..{dates[-1].date()}" if len(dates) else "empty"
        return (
            f"MarketData({len(dates)} days {span} x {self.close.shape[1]} instruments; "
            f"fields {present})"
        )

    def __post_init__(self) -> None:
        _check_wide("close", self.close)
        if not self.close.index.is_monotonic_increasing or not self.close.index.is_unique:
            raise DataError("MarketData.close must be indexed by unique dates in increasing order")
        if not self.close.columns.is_unique:
            duplicated = self.close.columns[self.close.columns.duplicated()].unique().tolist()
            raise DataError(f"MarketData.close has duplicated instruments: {duplicated[:5]}")
        for name in _WIDE_FIELDS:
            frame = getattr(self, name)
            if frame is None:
                continue
            _check_wide(name, frame)
            if not frame.index.equals(self.close.index) or not frame.columns.equals(
                self.close.columns
            ):
                fill = False if name == "tradable" else np.nan
                aligned = frame.reindex(
                    index=self.close.index, columns=self.close.columns, fill_value=fill
                )
                object.__setattr__(self, name, aligned)
        if self.benchmark is not None and not isinstance(self.benchmark, pd.Series):
            raise DataError(
                "MarketData.benchmark must be a Series of daily returns indexed by date; "
                f"got {type(self.benchmark).__name__}"
            )

    @property
    def dates(self) -> pd.DatetimeIndex:
        """The trading calendar: every date of the data."""
        return pd.DatetimeIndex(self.close.index)

    @property
    def instruments(self) -> pd.Index:
        """The instruments, in column order."""
        return self.close.columns

    def benchmark_returns(
        self, benchmark: str | Sequence[str] | pd.Series | None = None
    ) -> pd.Series:
        """Daily benchmark returns on :attr:`dates` (0 where unknown).

        Args:
            benchmark: An instrument of the data (its close-to-close change is used), a list of
                instruments (the mean of their daily changes, as Qlib does), a Series of daily
                returns, or None for :attr:`benchmark` (zeros when that is None too).

        Raises:
            NotFoundError: ``benchmark`` names an instrument that is not in the data.
        """
        if benchmark is None:
            benchmark = self.benchmark
        if benchmark is None:
            return pd.Series(0.0, index=self.dates, name="bench")
        if isinstance(benchmark, pd.Series):
            returns = benchmark.copy()
            returns.index = pd.DatetimeIndex(pd.to_datetime(returns.index))
        elif isinstance(benchmark, str) or (
            isinstance(benchmark, Sequence) and all(isinstance(b, str) for b in benchmark)
        ):
            codes = [benchmark] if isinstance(benchmark, str) else list(benchmark)
            missing = [c for c in codes if c not in self.close.columns]
            if missing or not codes:
                raise NotFoundError(
                    f"The benchmark instrument(s) {missing or codes} are not in the market data; "
                    "pass the benchmark's daily returns as a Series or include its prices"
                )
            prices = self.close[codes]
            returns = (prices / prices.shift(1) - 1.0).mean(axis=1)
        else:
            raise ConfigError(
                "benchmark must be an instrument code, a list of codes, a Series of daily "
                f"returns or None; got {type(benchmark).__name__}"
            )
        return returns.reindex(self.dates).astype("float64").fillna(0.0).rename("bench")

    @classmethod
    def from_frame(
        cls,
        frame: Any,
        *,
        benchmark: str | Sequence[str] | pd.Series | None = None,
        date_col: str = "datetime",
        instrument_col: str = "instrument",
    ) -> MarketData:
        """Build market data from a long frame with one row per (date, instrument).

        Args:
            frame: A pandas or Polars DataFrame with the columns ``datetime``, ``instrument``,
                ``close`` and any of ``open``, ``vwap``, ``change``, ``factor``, ``tradable``
                (or ``suspended``); a leading ``$`` in field names (Qlib style) is accepted, and
                with pandas the date and instrument may be index levels instead of columns.
                Other columns are ignored.
            benchmark: An instrument of the frame whose close-to-close change becomes the
                benchmark, or a Series of daily returns, or None.
            date_col: Name of the date column.
            instrument_col: Name of the instrument column.

        Raises:
            DataError: Required columns are missing or a (date, instrument) pair repeats.
            NotFoundError: ``benchmark`` names an instrument that is not in the frame.
        """
        if type(frame).__module__.split(".")[0] == "polars":
            frame = frame.to_pandas()
        if not isinstance(frame, pd.DataFrame):
            raise DataError(
                "MarketData.from_frame needs a pandas or Polars DataFrame; "
                f"got {type(frame).__name__}"
            )
        data = frame.reset_index() if set(frame.index.names) & {date_col, instrument_col} else frame
        data = data.rename(columns=lambda c: c[1:] if isinstance(c, str) and c[:1] == "$" else c)
        missing = [c for c in (date_col, instrument_col, "close") if c not in data.columns]
        if missing:
            raise DataError(
                f"The market frame lacks the column(s) {missing}; it needs {date_col!r}, "
                f"{instrument_col!r} and 'close' (plus optional open, vwap, change, factor)"
            )
        data = data.assign(**{date_col: pd.to_datetime(data[date_col])})
        if data.duplicated([date_col, instrument_col]).any():
            dup = data[data.duplicated([date_col, instrument_col])].iloc[0]
            raise DataError(
                f"The market frame repeats the pair ({dup[date_col]}, {dup[instrument_col]}); "
                "each (date, instrument) must appear once"
            )
        value_cols = [c for c in _FRAME_FIELDS if c in data.columns]
        if "tradable" in data.columns:
            data = data.assign(tradable=data["tradable"].astype("float64"))
            value_cols.append("tradable")
        elif "suspended" in data.columns:
            data = data.assign(tradable=1.0 - data["suspended"].astype("float64"))
            value_cols.append("tradable")
        wide = (
            data.set_index([date_col, instrument_col])[value_cols]
            .astype("float64")
            .unstack(instrument_col)
            .sort_index()
        )
        parts: dict[str, pd.DataFrame] = {}
        for name in value_cols:
            part = wide[name]
            part.columns.name = None
            part.index.name = "datetime"
            parts[name] = part
        if "tradable" in parts:
            parts["tradable"] = parts["tradable"].fillna(0.0).astype(bool)
        market = cls(**parts)
        if benchmark is not None:
            market = cls(
                **{f.name: getattr(market, f.name) for f in fields(cls) if f.name != "benchmark"},
                benchmark=market.benchmark_returns(benchmark),
            )
        return market


_DEAL_PRICES = ("close", "open", "vwap")


@dataclass(frozen=True)
class ExchangeConfig:
    """The exchange rules of a backtest (Qlib's ``exchange_kwargs``).

    Attributes:
        deal_price: Price every order deals at: ``"close"``, ``"open"`` or ``"vwap"`` (a leading
            ``$`` is accepted). Where that price is missing, the close is used.
        open_cost: Cost rate of buying.
        close_cost: Cost rate of selling.
        min_cost: Minimum cost of an order that deals something.
        limit_threshold: A day whose change is >= this is limit-up (no buying), <= minus this is
            limit-down (no selling); None disables the rule.
        trade_unit: Shares per lot in raw (unadjusted) terms, e.g. 100 for China A shares; None
            trades fractional amounts. Needs the ``factor`` field of the market data.
    """

    deal_price: str = "close"
    open_cost: float = 0.0005
    close_cost: float = 0.0015
    min_cost: float = 5.0
    limit_threshold: float | None = 0.095
    trade_unit: float | None = None

    def __post_init__(self) -> None:
        price = self.deal_price.lstrip("$") if isinstance(self.deal_price, str) else None
        if price not in _DEAL_PRICES:
            raise ConfigError(
                f"The 'deal_price' of the exchange must be one of {list(_DEAL_PRICES)}; "
                f"got {self.deal_price!r}"
            )
        object.__setattr__(self, "deal_price", price)
        for name in ("open_cost", "close_cost", "min_cost"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ConfigError(
                    f"The {name!r} of the exchange must be a number >= 0; got {value!r}"
                )
        limit = self.limit_threshold
        if limit is not None and (
            not isinstance(limit, int | float) or isinstance(limit, bool) or limit <= 0
        ):
            raise ConfigError(
                f"The 'limit_threshold' of the exchange must be a number > 0 or None; got {limit!r}"
            )
        unit = self.trade_unit
        if unit is not None and (
            not isinstance(unit, int | float) or isinstance(unit, bool) or unit <= 0
        ):
            raise ConfigError(
                f"The 'trade_unit' of the exchange must be a number > 0 or None; got {unit!r}"
            )

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any] | ExchangeConfig | None) -> ExchangeConfig:
        """Build from a Qlib-style ``exchange_kwargs`` mapping; unknown keys are errors.

        ``freq`` is accepted when it is ``"day"`` (the only frequency of this backtest).
        """
        if kwargs is None:
            return cls()
        if isinstance(kwargs, ExchangeConfig):
            return kwargs
        options = dict(kwargs)
        freq = options.pop("freq", "day")
        if freq not in ("day", "1day", "1d"):
            raise ConfigError(f"The backtest runs on daily data only; exchange freq was {freq!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(
                f"Unknown exchange option(s) {unknown}; the supported ones are {sorted(known)}"
            )
        return cls(**options)
