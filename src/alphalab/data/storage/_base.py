"""The market store interface shared by every backend (Parquet, Qlib binary, simulated).

A market store serves four things: the trading calendar, the listing span of every instrument,
named universes (membership spans per instrument) and daily bars. Backends implement a few
private primitives; this module turns them into the public query interface and guarantees the
shape of what :meth:`MarketStore.read` returns, whatever the backend:

* columns ``datetime`` (:data:`DATETIME_DTYPE`), ``instrument`` (``pl.String``), then the
  requested fields without ``$`` (:data:`VALUE_DTYPE`) in the order asked for;
* sorted by ``(instrument, datetime)``;
* one row per (instrument, trading day) inside the instrument's listing span and the window;
* a missing value (a suspended day, a field the instrument lacks) is null, never NaN.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import polars as pl

from alphalab.exceptions import DataError, NotFoundError

#: dtype of the ``datetime`` column of every frame a store returns (naive, nanoseconds).
DATETIME_DTYPE = pl.Datetime("ns")
#: dtype of every field column (Qlib stores float32; values are returned as stored).
VALUE_DTYPE = pl.Float32
#: Fields every store provides (extra numeric columns may follow).
BASE_FIELDS: tuple[str, ...] = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "vwap",
    "factor",
    "change",
)
#: The universe that lists every tradable instrument.
ALL_UNIVERSE = "all"

#: Anything accepted as a date: ``"2020-01-31"``, ``datetime.date``, ``pandas.Timestamp``...
DateLike: TypeAlias = str | dt.date | np.datetime64

_NS = "datetime64[ns]"


def to_datetime64(value: Any, *, what: str = "date") -> np.datetime64:
    """Convert a date-like value to ``numpy.datetime64[ns]`` (naive).

    Raises:
        DataError: when ``value`` is not a date.
    """
    if isinstance(value, np.datetime64):
        return value.astype(_NS)
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as e:
        raise DataError(f"The {what} {value!r} is not a date (use e.g. '2020-01-31')") from e
    if stamp is pd.NaT:
        raise DataError(f"The {what} {value!r} is not a date (use e.g. '2020-01-31')")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert(None)
    return np.datetime64(stamp.value, "ns")


def datetime_lit(value: np.datetime64) -> pl.Expr:
    """A Polars literal of :data:`DATETIME_DTYPE` for a ``numpy.datetime64`` value."""
    nanos = int(np.asarray(value).astype("datetime64[ns]").astype(np.int64))
    return pl.lit(nanos, dtype=pl.Int64).cast(DATETIME_DTYPE)


def strip_field(name: str) -> str:
    """Return a field name without its leading ``$`` (``"$close"`` -> ``"close"``)."""
    return name[1:] if name.startswith("$") else name


@dataclass(frozen=True)
class Window:
    """The trading-day window of a query: calendar positions ``[lo, hi]`` (inclusive)."""

    lo: int
    hi: int

    @property
    def empty(self) -> bool:
        """Whether the window holds no trading day."""
        return self.hi < self.lo


def frame_fingerprint(frame: pl.DataFrame) -> str:
    """Return a stable hex digest of a frame's schema and values.

    Equal frames (same columns, dtypes, rows and values; nulls and NaNs counted as missing)
    give equal digests across processes, machines and library versions.
    """
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr([(name, str(dtype)) for name, dtype in frame.schema.items()]).encode())
    digest.update(str(frame.height).encode())
    for name in frame.columns:
        column = frame.get_column(name)
        digest.update(name.encode() + b"\x00")
        if column.dtype == pl.String:
            runs = column.fill_null("\x00null").rle().struct.unnest()
            digest.update("\x00".join(runs.get_column("value").to_list()).encode())
            lengths = runs.get_column("len").cast(pl.Int64).to_numpy()
            digest.update(np.ascontiguousarray(lengths, dtype="<i8").tobytes())
        elif column.dtype.is_temporal():
            values = column.cast(pl.Int64).fill_null(np.iinfo(np.int64).min).to_numpy()
            digest.update(np.ascontiguousarray(values, dtype="<i8").tobytes())
        else:
            array = column.cast(pl.Float64).to_numpy().astype("<f8")
            array[np.isnan(array)] = np.nan  # one canonical NaN bit pattern
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def repeat_strings(
    values: Sequence[str], counts: np.ndarray, name: str = "instrument"
) -> pl.Series:
    """A String Series holding ``values[k]`` ``counts[k]`` times, in order (fast)."""
    codes = np.repeat(np.arange(len(values), dtype=np.uint32), counts)
    return pl.Series(name, list(values), dtype=pl.String).gather(codes)


def is_sorted_by_key(frame: pl.DataFrame) -> bool:
    """Whether ``frame`` is strictly sorted by ``(instrument, datetime)``."""
    if frame.height < 2:
        return True
    inst, when = pl.col("instrument"), pl.col("datetime")
    ordered = (inst > inst.shift(1)) | ((inst == inst.shift(1)) & (when > when.shift(1)))
    return bool(frame.select(ordered.slice(1).all()).item())


def empty_bars(fields: Sequence[str]) -> pl.DataFrame:
    """An empty frame with the schema :meth:`MarketStore.read` returns."""
    schema: dict[str, Any] = {"datetime": DATETIME_DTYPE, "instrument": pl.String}
    schema.update(dict.fromkeys(fields, VALUE_DTYPE))
    return pl.DataFrame(schema=schema)


class MarketStore(ABC):
    """Daily market data: calendar, listings, universes and bars; read-only.

    Subclasses implement :meth:`_load_calendar`, :meth:`_load_listing`,
    :meth:`_load_universes`, :meth:`fields` and :meth:`_read_bars`; everything else is
    shared so every backend answers queries identically.
    """

    def __init__(self) -> None:
        self._calendar_cache: np.ndarray | None = None
        self._listing_cache: pl.DataFrame | None = None
        self._universes_cache: pl.DataFrame | None = None

    # ------------------------------------------------------------------ backend primitives
    @property
    @abstractmethod
    def uri(self) -> str:
        """Where the data lives (a folder path)."""

    @property
    @abstractmethod
    def kind(self) -> str:
        """A short name of the backend (``"parquet"``, ``"qlib"``)."""

    @abstractmethod
    def _load_calendar(self) -> np.ndarray:
        """Return the trading days as a sorted, unique ``datetime64[ns]`` array."""

    @abstractmethod
    def _load_listing(self) -> pl.DataFrame:
        """Return ``instrument, start, end`` (one row per readable instrument)."""

    @abstractmethod
    def _load_universes(self) -> pl.DataFrame:
        """Return ``universe, instrument, start, end`` (one row per membership span)."""

    @abstractmethod
    def fields(self) -> list[str]:
        """Return the field names this store serves (without ``$``)."""

    @abstractmethod
    def _read_bars(
        self, fields: list[str], instruments: list[str], lo: np.datetime64, hi: np.datetime64
    ) -> pl.DataFrame:
        """Return the rows of ``instruments`` (sorted) with datetime in ``[lo, hi]``.

        One row per trading day inside each instrument's listing span; columns ``datetime``,
        ``instrument`` and ``fields`` (any float dtype; NaN or null for missing values),
        sorted by ``(instrument, datetime)``.
        """

    def size_on_disk(self) -> int:
        """Return the bytes the store occupies on disk."""
        return 0

    # ------------------------------------------------------------------ calendar
    def calendar_array(self) -> np.ndarray:
        """Return every trading day as a ``datetime64[ns]`` array (cached)."""
        if self._calendar_cache is None:
            self._calendar_cache = self._load_calendar()
        return self._calendar_cache

    def calendar(self, start: DateLike | None = None, end: DateLike | None = None) -> list[Any]:
        """Return the trading days in ``[start, end]`` as ``pandas.Timestamp`` values."""
        cal = self.calendar_array()
        window = self.window(start, end)
        return list(pd.DatetimeIndex(cal[window.lo : window.hi + 1]))

    def calendar_series(
        self, start: DateLike | None = None, end: DateLike | None = None
    ) -> pl.Series:
        """Return the trading days in ``[start, end]`` as a Polars ``datetime`` Series."""
        cal = self.calendar_array()
        window = self.window(start, end)
        return pl.Series("datetime", cal[window.lo : window.hi + 1], dtype=DATETIME_DTYPE)

    def window(
        self,
        start: DateLike | None = None,
        end: DateLike | None = None,
        *,
        history: int = 0,
        future: int = 0,
    ) -> Window:
        """Return the calendar positions of ``[start, end]`` widened by history/future days.

        ``start`` snaps to the first trading day on or after it, ``end`` to the last trading
        day on or before it; the widening stops at the ends of the calendar.

        Raises:
            DataError: for a start after the end or a negative history/future.
        """
        if history < 0 or future < 0:
            raise DataError(
                f"history and future must be >= 0 trading days; got {history} and {future}"
            )
        cal = self.calendar_array()
        lo = 0 if start is None else int(np.searchsorted(cal, to_datetime64(start, what="start")))
        hi = (
            len(cal) - 1
            if end is None
            else int(np.searchsorted(cal, to_datetime64(end, what="end"), side="right")) - 1
        )
        if start is not None and end is not None and to_datetime64(start) > to_datetime64(end):
            raise DataError(f"The start {start!r} is after the end {end!r}")
        if hi < lo:
            return Window(lo, hi)
        return Window(max(0, lo - history), min(len(cal) - 1, hi + future))

    # ------------------------------------------------------------------ instruments
    def listing(self) -> pl.DataFrame:
        """Return ``instrument, start, end``: the listing span of every readable instrument.

        This includes instruments in no universe, such as a benchmark index.
        """
        if self._listing_cache is None:
            self._listing_cache = self._load_listing().sort("instrument")
        return self._listing_cache

    def _universe_table(self) -> pl.DataFrame:
        if self._universes_cache is None:
            self._universes_cache = self._load_universes().sort("universe", "instrument", "start")
        return self._universes_cache

    def universes(self) -> list[str]:
        """Return the names of the universes (``all``, ``csi300``, ...)."""
        names = set(self._universe_table().get_column("universe").to_list())
        names.add(ALL_UNIVERSE)
        return sorted(names)

    def membership(self, universe: str) -> pl.DataFrame:
        """Return ``instrument, start, end`` of a universe: one row per membership span.

        Raises:
            NotFoundError: for an unknown universe (the message lists the known ones).
        """
        table = self._universe_table()
        rows = table.filter(pl.col("universe") == universe)
        if rows.height == 0:
            if universe == ALL_UNIVERSE:
                return self.listing()
            hint = ""
            if universe in set(self.listing().get_column("instrument").to_list()):
                hint = f" ({universe!r} is an instrument: pass a list, [{universe!r}])"
            raise NotFoundError(
                f"Unknown universe {universe!r} in {self.uri}; known universes: "
                f"{', '.join(self.universes())}{hint}"
            )
        return rows.select("instrument", "start", "end")

    def instruments(
        self,
        universe: str | Sequence[str] = ALL_UNIVERSE,
        start: DateLike | None = None,
        end: DateLike | None = None,
    ) -> list[str]:
        """Return the sorted instruments that belong to ``universe`` at any time in the window.

        ``universe`` is a universe name, or a list of instrument codes (those listed at some
        time in the window are kept).

        Raises:
            NotFoundError: for an unknown universe or instrument.
        """
        lo = to_datetime64(start, what="start") if start is not None else None
        hi = to_datetime64(end, what="end") if end is not None else None
        if isinstance(universe, str):
            spans = self.membership(universe)
        else:
            codes = self._check_instruments(universe)
            spans = self.listing().filter(pl.col("instrument").is_in(codes))
        if lo is not None:
            spans = spans.filter(pl.col("end") >= datetime_lit(lo))
        if hi is not None:
            spans = spans.filter(pl.col("start") <= datetime_lit(hi))
        return sorted(set(spans.get_column("instrument").to_list()))

    def _check_instruments(self, instruments: Sequence[str]) -> list[str]:
        if isinstance(instruments, str):
            raise DataError(
                f"Expected a list of instrument codes; got the string {instruments!r} "
                "(pass a universe name to instruments() to list its members)"
            )
        known = set(self.listing().get_column("instrument").to_list())
        wanted = sorted(set(instruments))
        missing = [code for code in wanted if code not in known]
        if missing:
            shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
            raise NotFoundError(
                f"{len(missing)} unknown instrument(s) in {self.uri}: {shown} "
                "(instrument codes are case-sensitive, e.g. 'SH600000')"
            )
        return wanted

    def _check_fields(self, fields: Sequence[str]) -> list[str]:
        if isinstance(fields, str):
            fields = [fields]
        names = [strip_field(f) for f in fields]
        available = set(self.fields())
        unknown = [f for f in names if f not in available]
        if unknown:
            raise NotFoundError(
                f"Unknown field(s) {', '.join('$' + f for f in unknown)} in {self.uri}; "
                f"available: {', '.join('$' + f for f in self.fields())}"
            )
        if len(set(names)) != len(names):
            raise DataError(f"Duplicate fields in {list(fields)!r}")
        return names

    # ------------------------------------------------------------------ bars
    def read(
        self,
        fields: Sequence[str],
        instruments: Sequence[str] | str,
        start: DateLike | None = None,
        end: DateLike | None = None,
        *,
        history: int = 0,
        future: int = 0,
    ) -> pl.DataFrame:
        """Read daily bars as a long Polars frame.

        Args:
            fields: Field names, with or without ``$`` (``["$close", "volume"]``).
            instruments: Instrument codes, or a universe name (its members in the window).
            start: First day of the window (None: the first trading day).
            end: Last day of the window (None: the last trading day).
            history: Trading days to add before ``start`` (as far as the calendar goes).
            future: Trading days to add after ``end`` (as far as the calendar goes).

        Returns:
            Columns ``datetime`` (``pl.Datetime("ns")``), ``instrument`` (``pl.String``),
            then the fields (``pl.Float32``) in the order given; sorted by
            ``(instrument, datetime)``; one row per trading day inside each instrument's
            listing span; suspended days are rows of nulls.

        Raises:
            NotFoundError: for an unknown field, instrument or universe.
            DataError: for an invalid window.
        """
        names = self._check_fields(fields)
        window = self.window(start, end, history=history, future=future)
        if isinstance(instruments, str):
            codes = self.instruments(instruments, start, end)
        else:
            codes = self._check_instruments(instruments)
        if window.empty or not codes:
            return empty_bars(names)
        cal = self.calendar_array()
        frame = self._read_bars(names, codes, cal[window.lo], cal[window.hi])
        return frame.select(
            pl.col("datetime").cast(DATETIME_DTYPE),
            pl.col("instrument").cast(pl.String),
            *(pl.col(f).cast(VALUE_DTYPE).fill_nan(None) for f in names),
        )

    def fingerprint(
        self,
        fields: Sequence[str],
        instruments: Sequence[str] | str,
        start: DateLike | None = None,
        end: DateLike | None = None,
        *,
        history: int = 0,
        future: int = 0,
    ) -> str:
        """Return a stable hash of what :meth:`read` returns for the same arguments.

        Two stores holding the same values (e.g. a Qlib directory and its Parquet import) give
        the same fingerprint; any changed value, row or field gives another.
        """
        frame = self.read(fields, instruments, start, end, history=history, future=future)
        return frame_fingerprint(frame)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"
