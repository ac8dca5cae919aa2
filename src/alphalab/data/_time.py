"""Date handling shared by handlers and datasets: parse user dates, filter by range."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import pandas as pd
import polars as pl

from alphalab.exceptions import ConfigError


def to_timestamp(value: Any, what: str = "date") -> pd.Timestamp | None:
    """Parse a user-given date (string, date, datetime, Timestamp); None stays None."""
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"The {what} {value!r} is not a date (expected e.g. 2020-01-31)"
        ) from None
    if pd.isna(stamp):
        raise ConfigError(f"The {what} {value!r} is not a date (expected e.g. 2020-01-31)")
    return stamp.tz_localize(None) if stamp.tzinfo is not None else stamp


def date_filter(start: Any = None, end: Any = None, col: str = "datetime") -> pl.Expr:
    """A Polars predicate for ``start <= col <= end`` (either bound may be None)."""
    moment = pl.col(col).cast(pl.Datetime("us"))
    predicate = pl.lit(True)
    low, high = to_timestamp(start, "start date"), to_timestamp(end, "end date")
    if low is not None:
        predicate = predicate & (moment >= pl.lit(low.to_pydatetime(), dtype=pl.Datetime("us")))
    if high is not None:
        predicate = predicate & (moment <= pl.lit(high.to_pydatetime(), dtype=pl.Datetime("us")))
    return predicate


def date_slice(frame: pl.DataFrame, start: Any = None, end: Any = None) -> pl.DataFrame:
    """The rows with ``start <= datetime <= end`` (either bound may be None).

    A zero-copy slice when ``frame`` is sorted by ``datetime`` (handler views are), a filtered
    copy otherwise.
    """
    dates = frame.get_column("datetime")
    if not dates.is_sorted():
        return frame.filter(date_filter(start, end))
    low, high = to_timestamp(start, "start date"), to_timestamp(end, "end date")

    def position(stamp: pd.Timestamp, side: Literal["left", "right"]) -> int:
        # a bound of the column's own type: a Python datetime would cast the whole column
        bound = pl.Series([stamp.to_pydatetime()]).cast(dates.dtype)
        return int(dates.search_sorted(bound, side=side)[0])

    first = 0 if low is None else position(low, "left")
    stop = frame.height if high is None else position(high, "right")
    return frame.slice(first, max(stop - first, 0))


def date_runs(dates: pl.Series, rows: int) -> list[tuple[Any, Any]]:
    """Cut the dates of ``dates`` (one per row) into runs of about ``rows`` rows.

    Returns the (first, last) date of each run, in date order; a date is never split, so a
    run may hold more rows than asked.
    """
    counts = dates.value_counts(name="rows").sort(dates.name)
    runs: list[tuple[Any, Any]] = []
    days = counts.get_column(dates.name).to_list()
    first, size = 0, 0
    for k, count in enumerate(counts.get_column("rows").to_list()):
        size += count
        if size >= rows or k == len(days) - 1:
            runs.append((days[first], days[k]))
            first, size = k + 1, 0
    return runs


def as_date_str(value: Any) -> str | None:
    """Render a date as ``YYYY-MM-DD`` (for cache keys and messages)."""
    stamp = to_timestamp(value)
    return None if stamp is None else dt.date(stamp.year, stamp.month, stamp.day).isoformat()
