"""Import CSV folders and Qlib directories into a Parquet store (atomically).

Both importers read and check everything first, then write one new store version (see
:func:`alphalab.data.storage._parquet.write_version`): a malformed input is reported by file
and line, and the store in force is left exactly as it was.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from alphalab.data.storage._base import (
    ALL_UNIVERSE,
    BASE_FIELDS,
    VALUE_DTYPE,
    datetime_lit,
)
from alphalab.data.storage._parquet import ParquetMarketStore, write_parquet_store
from alphalab.data.storage._qlib_bin import QlibBinMarketStore
from alphalab.exceptions import DataError, NotFoundError
from alphalab.logging import get_logger

logger = get_logger(__name__)

_NULL_TOKENS = ("", "nan", "NaN", "NAN", "null", "NULL", "None", "NA", "N/A", "-")
_PRICE_FIELDS = ("open", "high", "low", "close", "vwap")
#: Instruments per chunk when copying a Qlib directory (bounds memory).
_QLIB_BATCH = 200


def import_qlib(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    fields: Sequence[str] | None = None,
) -> ParquetMarketStore:
    """Copy a Qlib binary data directory into the Parquet store at ``dest``.

    Args:
        src: The Qlib directory (``calendars/``, ``instruments/``, ``features/``).
        dest: The store folder (created, or given a new version atomically).
        fields: Fields to copy (default: every field found).

    Raises:
        StoreError: when ``src`` is not a Qlib directory or ``dest`` cannot hold a store.
        DataError: naming the file (and line) of malformed input.
    """
    source = QlibBinMarketStore(Path(src).expanduser())
    names = [f.lstrip("$") for f in fields] if fields is not None else source.fields()
    cal = source.calendar_array()
    listing = source.listing()
    listed = listing.get_column("instrument")
    spans = []
    for universe in source.universes():
        members = source.membership(universe)
        dropped = members.filter(~pl.col("instrument").is_in(listed.implode()))
        if dropped.height:
            logger.warning(
                "Universe %r names %d instrument(s) with no feature data (e.g. %s); skipped",
                universe,
                dropped.height,
                dropped.get_column("instrument")[0],
            )
        spans.append(
            members.filter(pl.col("instrument").is_in(listed.implode())).select(
                pl.lit(universe).alias("universe"), pl.all()
            )
        )
    universes = (
        pl.concat(spans)
        .with_columns(
            pl.col("start").clip(lower_bound=datetime_lit(cal[0])),
            pl.col("end").clip(upper_bound=datetime_lit(cal[-1])),
        )
        .filter(pl.col("start") <= pl.col("end"))
    )
    codes = listed.sort().to_list()

    def chunks() -> Iterator[pl.DataFrame]:
        for i in range(0, len(codes), _QLIB_BATCH):
            yield source.read(names, codes[i : i + _QLIB_BATCH])

    return write_parquet_store(
        dest,
        calendar=cal,
        listing=listing,
        universes=universes,
        bars=chunks(),
        fields=names,
        source=f"qlib directory {source.uri}",
    )


@dataclass(frozen=True)
class CsvOptions:
    """How to read a folder of per-instrument CSV files (Yahoo-style exports by default).

    Column names are matched after normalising (lower case, spaces and dashes to ``_``), so
    ``Adj Close`` is ``adj_close``.

    Attributes:
        date_column: Column holding the date.
        symbol_column: Column holding the instrument code; None takes the file name
            (without extension), upper-cased.
        date_format: ``strftime`` format of the dates (None: ISO dates, inferred).
        columns: Renames from source column to field name, e.g. ``{"vol": "volume"}``.
        adjusted_close_column: Column with the dividend/split adjusted close; when present,
            ``factor = adjusted close / close`` and prices are adjusted (raw x factor) and
            volume divided by the factor, as in Qlib.
        pattern: Glob of the files to read inside the folder.
        delimiter: Field separator.
    """

    date_column: str = "date"
    symbol_column: str | None = None
    date_format: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    adjusted_close_column: str | None = "adj_close"
    pattern: str = "*.csv"
    delimiter: str = ","


def _normalise(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def _first_ragged_line(file: Path, delimiter: str) -> str:
    """Describe the first row whose field count differs from the header's ("" if none)."""
    try:
        with open(file, encoding="utf-8", newline="") as f:
            reader = csv.reader(f, delimiter=delimiter)
            header = next(reader, [])
            for row in reader:
                if row and len(row) != len(header):
                    return (
                        f"line {reader.line_num} has {len(row)} fields where the header has "
                        f"{len(header)}"
                    )
    except UnicodeDecodeError as e:
        return f"not UTF-8 text (byte {e.start}); convert the file to UTF-8"
    except csv.Error as e:
        return f"malformed CSV: {e}"
    return ""


def _check_ragged(file: Path, delimiter: str, n_columns: int) -> None:
    """Raise DataError for a row with more or fewer fields than the header.

    A vectorised count of separators flags suspicious files; the csv module then finds the
    exact line (and forgives separators inside quotes).
    """
    lines = pl.read_csv(
        file,
        has_header=False,
        separator="\x1f",
        quote_char=None,
        new_columns=["line"],
        infer_schema=False,
    )
    counts = lines.select(
        pl.col("line").fill_null("").str.count_matches(delimiter, literal=True)
    ).to_series()
    if counts.len() and (counts != n_columns - 1).any():
        detail = _first_ragged_line(file, delimiter)
        if detail:
            raise DataError(f"{file}: {detail}")


def _read_csv_file(file: Path, options: CsvOptions) -> pl.DataFrame:
    try:
        raw = pl.read_csv(
            file,
            infer_schema=False,
            separator=options.delimiter,
            truncate_ragged_lines=False,
        )
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as e:
        detail = ""
        if isinstance(e, pl.exceptions.PolarsError):
            detail = _first_ragged_line(file, options.delimiter)
        raise DataError(f"{file}: {detail or e}") from e
    _check_ragged(file, options.delimiter, len(raw.columns))
    renames = {c: _normalise(c) for c in raw.columns}
    raw = raw.rename(renames)
    mapping = {_normalise(k): v for k, v in options.columns.items()}
    raw = raw.rename({c: mapping[c] for c in raw.columns if c in mapping})
    if len(set(raw.columns)) != len(raw.columns):
        raise DataError(f"{file}: duplicate columns after renaming: {raw.columns}")
    date_col = _normalise(options.date_column)
    date_col = mapping.get(date_col, date_col)
    if date_col not in raw.columns:
        raise DataError(
            f"{file}: no date column {options.date_column!r} (columns: {', '.join(raw.columns)}); "
            "set the date column option"
        )
    symbol_col = None
    if options.symbol_column is not None:
        symbol_col = _normalise(options.symbol_column)
        if symbol_col not in raw.columns:
            raise DataError(
                f"{file}: no symbol column {options.symbol_column!r} "
                f"(columns: {', '.join(raw.columns)})"
            )
    frame = raw.with_row_index("_line", offset=2)
    # Dates: report the first value that does not parse.
    text = pl.col(date_col).str.strip_chars()
    parsed = text.str.to_datetime(
        format=options.date_format, strict=False, time_unit="ns"
    ).dt.truncate("1d")
    try:
        frame = frame.with_columns(parsed.alias("datetime"))
    except pl.exceptions.PolarsError as e:
        raise DataError(
            f"{file}: cannot parse the dates in column {date_col!r} ({e}); set the date format"
        ) from e
    bad = frame.filter(pl.col("datetime").is_null())
    if bad.height:
        row = bad.row(0, named=True)
        raise DataError(
            f"{file}, line {row['_line']}: {row[date_col]!r} is not a date"
            + (f" in format {options.date_format!r}" if options.date_format else "")
        )
    if symbol_col is not None:
        frame = frame.with_columns(
            pl.col(symbol_col).str.strip_chars().str.to_uppercase().alias("instrument")
        )
        empty = frame.filter(pl.col("instrument").is_null() | (pl.col("instrument") == ""))
        if empty.height:
            raise DataError(f"{file}, line {empty.row(0, named=True)['_line']}: empty symbol")
    else:
        frame = frame.with_columns(pl.lit(file.stem.strip().upper()).alias("instrument"))
    value_cols = [
        c
        for c in frame.columns
        if c not in ("_line", "datetime", "instrument", date_col, symbol_col)
    ]
    for col in value_cols:
        source = pl.col(col).str.strip_chars()
        number = (
            pl.when(source.is_in(_NULL_TOKENS) | source.is_null())
            .then(None)
            .otherwise(source.cast(pl.Float64, strict=False))
        )
        frame = frame.with_columns(number.alias(f"_{col}"), source.alias(col))
        bad = frame.filter(
            pl.col(f"_{col}").is_null()
            & pl.col(col).is_not_null()
            & ~pl.col(col).is_in(_NULL_TOKENS)
        )
        if bad.height:
            row = bad.row(0, named=True)
            raise DataError(
                f"{file}, line {row['_line']}: column {col!r} has the non-numeric value "
                f"{row[col]!r}"
            )
        frame = frame.drop(col).rename({f"_{col}": col})
    dupes = frame.filter(pl.struct("instrument", "datetime").is_duplicated())
    if dupes.height:
        lines = dupes.get_column("_line").head(2).to_list()
        row = dupes.row(0, named=True)
        raise DataError(
            f"{file}, lines {lines[0]} and {lines[1]}: two rows for {row['instrument']} on "
            f"{row['datetime']:%Y-%m-%d}"
        )
    missing = [f for f in ("open", "high", "low", "close", "volume") if f not in frame.columns]
    if missing:
        raise DataError(
            f"{file}: missing column(s) {', '.join(missing)} (columns: {', '.join(raw.columns)}); "
            "map yours with the columns option, e.g. vol=volume"
        )
    return frame.select("instrument", "datetime", *value_cols).sort("instrument", "datetime")


def _derive_fields(frame: pl.DataFrame, adjusted: str | None) -> pl.DataFrame:
    """Add factor (from the adjusted close), vwap and change when the files lack them."""
    if "factor" not in frame.columns:
        if adjusted is not None and adjusted in frame.columns:
            frame = frame.with_columns((pl.col(adjusted) / pl.col("close")).alias("factor"))
            frame = frame.with_columns(
                *(pl.col(p) * pl.col("factor") for p in _PRICE_FIELDS if p in frame.columns),
                pl.col("volume") / pl.col("factor"),
            ).drop(adjusted)
        else:
            frame = frame.with_columns(pl.lit(1.0).alias("factor"))
    if "vwap" not in frame.columns:
        frame = frame.with_columns(
            ((pl.col("high") + pl.col("low") + 2.0 * pl.col("close")) / 4.0).alias("vwap")
        )
    if "change" not in frame.columns:
        previous = pl.col("close").forward_fill().shift(1).over("instrument")
        frame = frame.with_columns((pl.col("close") / previous - 1.0).alias("change"))
    return frame


def import_csv(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    options: CsvOptions | None = None,
) -> ParquetMarketStore:
    """Import a folder of per-instrument CSV files into the Parquet store at ``dest``.

    The calendar is the union of the files' dates; an instrument is listed from its first to
    its last row, and a calendar day it lacks in between is a suspended day (nulls). Files
    need ``date, open, high, low, close, volume``; ``vwap`` defaults to
    ``(high + low + 2 close) / 4``, ``factor`` to ``adjusted close / close`` (or 1) and
    ``change`` to the close-to-close change. Other numeric columns are kept as extra fields.

    Raises:
        NotFoundError: when ``src`` has no matching file.
        DataError: naming the file and line of the first malformed value; nothing is written.
    """
    options = options or CsvOptions()
    folder = Path(src).expanduser()
    if not folder.is_dir():
        raise NotFoundError(f"The CSV folder {folder} does not exist")
    files = sorted(folder.glob(options.pattern))
    if not files:
        raise NotFoundError(f"No file matches {options.pattern!r} in {folder}")
    frames = [_read_csv_file(file, options) for file in files]
    adjusted = _normalise(options.adjusted_close_column) if options.adjusted_close_column else None
    bars = pl.concat(frames, how="diagonal_relaxed")
    dupes = bars.filter(pl.struct("instrument", "datetime").is_duplicated())
    if dupes.height:
        row = dupes.row(0, named=True)
        raise DataError(
            f"{row['instrument']} has two rows on {row['datetime']:%Y-%m-%d} (in different "
            "files?); each instrument must come from one file"
        )
    bars = _derive_fields(bars.sort("instrument", "datetime"), adjusted)
    extras = sorted(c for c in bars.columns if c not in ("instrument", "datetime", *BASE_FIELDS))
    fields = [*BASE_FIELDS, *extras]
    bars = bars.select("instrument", "datetime", *(pl.col(f).cast(VALUE_DTYPE) for f in fields))
    calendar = np.unique(bars.get_column("datetime").to_numpy().astype("datetime64[ns]"))
    listing = bars.group_by("instrument").agg(
        pl.col("datetime").min().alias("start"), pl.col("datetime").max().alias("end")
    )
    universes = listing.select(pl.lit(ALL_UNIVERSE).alias("universe"), pl.all())
    return write_parquet_store(
        dest,
        calendar=calendar,
        listing=listing,
        universes=universes,
        bars=bars,
        fields=fields,
        source=f"CSV folder {folder}",
    )
