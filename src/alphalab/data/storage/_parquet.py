"""The Parquet market store: alphalab's own on-disk format, written atomically.

Layout of a store folder (see ``docs/data.md`` for the reasons and the measurements)::

    <root>/alphalab-store.json      {"format": "alphalab-market-store", "current": "v-..."}
    <root>/v-<stamp>-<id>/          one immutable version of the data
        calendar.parquet            datetime                                   (trading days)
        listing.parquet             instrument, start, end                     (listing spans)
        universes.parquet           universe, instrument, start, end           (membership)
        bars.parquet                instrument, datetime, open, high, ... (float32)
        meta.json                   fields, row count, source, creation time

``bars.parquet`` holds one row per (instrument, trading day) of each listing span, sorted by
``(instrument, datetime)``, in row groups of whole instruments so that a read of some
instruments skips the others' row groups. Writers build a new version in a hidden temporary
folder, rename it into place and then switch ``alphalab-store.json`` with an atomic
``os.replace``: a reader sees the old version or the new one, never a mix, and an interrupted
write leaves the previous version in force.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock

from alphalab.data.storage._base import (
    DATETIME_DTYPE,
    VALUE_DTYPE,
    MarketStore,
    datetime_lit,
    is_sorted_by_key,
    repeat_strings,
)
from alphalab.exceptions import DataError, StoreError
from alphalab.logging import get_logger

logger = get_logger(__name__)

MARKER = "alphalab-store.json"
FORMAT = "alphalab-market-store"
FORMAT_VERSION = 1
_LOCK = ".alphalab-store.lock"
_TMP_PREFIX = ".tmp-"
#: Rows per Parquet row group of ``bars.parquet`` (rounded to whole instruments).
ROW_GROUP_ROWS = 64 * 1024
COMPRESSION = "lz4"


def is_parquet_store(path: Path) -> bool:
    """Whether ``path`` is an alphalab Parquet store folder."""
    return (path / MARKER).is_file()


def _folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class ParquetMarketStore(MarketStore):
    """Read an alphalab Parquet store folder (written by :func:`write_parquet_store`)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        super().__init__()
        self._root = Path(root)
        marker = self._root / MARKER
        if not marker.is_file():
            raise StoreError(
                f"{self._root} is not an alphalab market store (no {MARKER}); create one with "
                "'alphalab data generate', 'alphalab data import-csv' or "
                "'alphalab data import-qlib'"
            )
        try:
            info = json.loads(marker.read_text(encoding="utf-8"))
            version = info["current"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise StoreError(f"The store marker {marker} is unreadable: {e}") from e
        if info.get("format") != FORMAT or info.get("format_version", 0) > FORMAT_VERSION:
            raise StoreError(
                f"{marker} describes format {info.get('format')!r} version "
                f"{info.get('format_version')!r}; this alphalab reads {FORMAT!r} up to version "
                f"{FORMAT_VERSION} (upgrade alphalab)"
            )
        self._dir = self._root / version
        try:
            self._meta: dict[str, Any] = json.loads(
                (self._dir / "meta.json").read_text(encoding="utf-8")
            )
        except (OSError, ValueError) as e:
            raise StoreError(
                f"The store version {self._dir} is incomplete or unreadable: {e}"
            ) from e
        self._bars_path = self._dir / "bars.parquet"

    @property
    def uri(self) -> str:
        """The store's root folder."""
        return str(self._root)

    @property
    def kind(self) -> str:
        """``"parquet"``."""
        return "parquet"

    @property
    def version_dir(self) -> Path:
        """The folder of the version currently in force."""
        return self._dir

    @property
    def meta(self) -> dict[str, Any]:
        """The version's ``meta.json`` (fields, rows, source, creation time)."""
        return dict(self._meta)

    def _read_table(self, name: str) -> pl.DataFrame:
        try:
            return pl.read_parquet(self._dir / name)
        except (OSError, pl.exceptions.PolarsError) as e:
            raise StoreError(f"Cannot read {self._dir / name}: {e}") from e

    def _load_calendar(self) -> np.ndarray:
        frame = self._read_table("calendar.parquet")
        return frame.get_column("datetime").cast(DATETIME_DTYPE).to_numpy().astype("datetime64[ns]")

    def _load_listing(self) -> pl.DataFrame:
        return self._read_table("listing.parquet")

    def _load_universes(self) -> pl.DataFrame:
        return self._read_table("universes.parquet")

    def fields(self) -> list[str]:
        """The fields stored in ``bars.parquet``."""
        return list(self._meta["fields"])

    def size_on_disk(self) -> int:
        """Bytes of the version in force."""
        return _folder_size(self._dir)

    def _row_runs(
        self, instruments: list[str], lo: np.datetime64, hi: np.datetime64, limit: int = 4
    ) -> list[tuple[int, int]] | None:
        """Row ranges ``(offset, length)`` of ``bars.parquet`` holding the query's rows.

        ``bars.parquet`` holds exactly one row per listed day, in listing order, so the rows
        of an instrument's window are known without reading. Returns None when they form
        more than ``limit`` separate ranges (a filter is then cheaper).
        """
        cal = self.calendar_array()
        listing = self.listing()
        starts = np.searchsorted(cal, listing.get_column("start").to_numpy())
        ends = np.searchsorted(cal, listing.get_column("end").to_numpy(), side="right")
        lengths = ends - starts
        offsets = np.r_[0, np.cumsum(lengths)]
        if int(offsets[-1]) != int(self._meta["rows"]):
            return None  # not the layout this method assumes: use a filter
        lo_i = int(np.searchsorted(cal, lo))
        hi_i = int(np.searchsorted(cal, hi, side="right"))
        wanted = listing.get_column("instrument").is_in(instruments).to_numpy()
        runs: list[tuple[int, int]] = []
        for k in np.flatnonzero(wanted):
            a = max(int(starts[k]), lo_i)
            b = min(int(ends[k]), hi_i)
            if b <= a:
                continue
            first = int(offsets[k]) + a - int(starts[k])
            if runs and runs[-1][0] + runs[-1][1] == first:
                runs[-1] = (runs[-1][0], runs[-1][1] + b - a)
            else:
                runs.append((first, b - a))
                if len(runs) > limit:
                    return None
        return runs

    def _read_bars(
        self, fields: list[str], instruments: list[str], lo: np.datetime64, hi: np.datetime64
    ) -> pl.DataFrame:
        try:
            scan = pl.scan_parquet(self._bars_path).select("datetime", "instrument", *fields)
            runs = self._row_runs(instruments, lo, hi)
            if runs is not None:
                # A few contiguous row ranges: slices read only the row groups they need
                # and cost no mask or filtered copy.
                if not runs:
                    return scan.slice(0, 0).collect()
                if len(runs) == 1 and runs[0] == (0, int(self._meta["rows"])):
                    return scan.collect()
                return pl.concat([scan.slice(a, n) for a, n in runs]).collect()
            predicate = pl.col("datetime").is_between(datetime_lit(lo), datetime_lit(hi))
            predicate = predicate & pl.col("instrument").is_in(instruments)
            return scan.filter(predicate).collect()
        except (OSError, pl.exceptions.PolarsError) as e:
            raise StoreError(f"Cannot read {self._bars_path}: {e}") from e


# ---------------------------------------------------------------------- writing


def _check_calendar(calendar: np.ndarray) -> np.ndarray:
    cal = np.asarray(calendar).astype("datetime64[ns]")
    if cal.size == 0:
        raise DataError("The trading calendar is empty")
    if np.any(np.diff(cal.astype(np.int64)) <= 0):
        raise DataError("The trading calendar must be sorted with no duplicate days")
    return cal


def _span_positions(
    cal: np.ndarray, frame: pl.DataFrame, what: str
) -> tuple[np.ndarray, np.ndarray]:
    starts = frame.get_column("start").cast(DATETIME_DTYPE).to_numpy().astype("datetime64[ns]")
    ends = frame.get_column("end").cast(DATETIME_DTYPE).to_numpy().astype("datetime64[ns]")
    lo = np.searchsorted(cal, starts, side="left")
    hi = np.searchsorted(cal, ends, side="right") - 1
    bad = np.flatnonzero(starts > ends)
    if bad.size:
        row = frame.row(int(bad[0]), named=True)
        raise DataError(f"{what}: the span of {row['instrument']} starts after it ends ({row})")
    return lo, hi


def _grid(cal: np.ndarray, listing: pl.DataFrame) -> pl.DataFrame:
    """Every (instrument, trading day) of each listing span, sorted."""
    lo, hi = _span_positions(cal, listing, "listing")
    lengths = np.maximum(hi - lo + 1, 0)
    positions = np.concatenate([np.arange(a, a + n) for a, n in zip(lo, lengths, strict=True)])
    names = listing.get_column("instrument").to_list()
    return pl.DataFrame(
        {
            "instrument": repeat_strings(names, lengths),
            "datetime": pl.Series(cal[positions.astype(np.int64)], dtype=DATETIME_DTYPE),
        }
    )


def _normalise_spans(frame: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    return frame.select(
        *(pl.col(k).cast(pl.String) for k in keys),
        pl.col("start").cast(DATETIME_DTYPE),
        pl.col("end").cast(DATETIME_DTYPE),
    )


def _complete_chunk(
    chunk: pl.DataFrame, cal: np.ndarray, listing: pl.DataFrame, fields: Sequence[str]
) -> pl.DataFrame:
    """Validate a chunk of bars and add null rows for listed days it lacks."""
    chunk = chunk.select(
        pl.col("instrument").cast(pl.String),
        pl.col("datetime").cast(DATETIME_DTYPE),
        *(pl.col(f).cast(VALUE_DTYPE).fill_nan(None) for f in fields),
    )
    names = chunk.get_column("instrument").unique()
    spans = listing.filter(pl.col("instrument").is_in(names.implode()))
    unknown = names.filter(~names.is_in(spans.get_column("instrument").implode()))
    if unknown.len():
        raise DataError(
            f"Bars of instrument(s) with no listing span: {', '.join(unknown.head(5).to_list())}"
        )
    dupes = chunk.filter(pl.struct("instrument", "datetime").is_duplicated())
    if dupes.height:
        row = dupes.row(0, named=True)
        raise DataError(f"Duplicate bar for {row['instrument']} on {row['datetime']:%Y-%m-%d}")
    grid = _grid(cal, spans)
    outside = chunk.join(grid, on=["instrument", "datetime"], how="anti")
    if outside.height:
        row = outside.row(0, named=True)
        raise DataError(
            f"{outside.height} bar(s) fall outside their instrument's listing span or the "
            f"calendar, e.g. {row['instrument']} on {row['datetime']:%Y-%m-%d}"
        )
    return grid.join(chunk, on=["instrument", "datetime"], how="left", maintain_order="left")


def _chunks_by_instrument(bars: pl.DataFrame, rows: int) -> Iterable[pl.DataFrame]:
    """Split sorted bars into chunks of whole instruments of about ``rows`` rows."""
    if not is_sorted_by_key(bars):
        bars = bars.sort("instrument", "datetime")
    counts = bars.group_by("instrument", maintain_order=True).len()
    offset = 0
    taken = 0
    start = 0
    for n in counts.get_column("len").to_list():
        taken += n
        if taken >= rows:
            yield bars.slice(start, offset + n - start)
            start = offset + n
            taken = 0
        offset += n
    if start < bars.height:
        yield bars.slice(start, bars.height - start)


def write_version(
    root: str | os.PathLike[str], build: Callable[[Path], dict[str, Any]]
) -> ParquetMarketStore:
    """Build a new store version with ``build(tmp_dir)`` and put it in force atomically.

    ``build`` writes the version's files into ``tmp_dir`` and returns its metadata. If it
    raises (or the process dies), the version in force is untouched and the temporary folder
    is removed (now, or by the next writer).

    Raises:
        StoreError: when ``root`` is a non-empty folder that is not a market store.
    """
    root_path = Path(root).expanduser()
    if root_path.exists() and not root_path.is_dir():
        raise StoreError(f"Cannot write a market store at {root_path}: it is a file")
    root_path.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root_path / _LOCK)):
        entries = [p for p in root_path.iterdir() if p.name not in (_LOCK,)]
        if entries and not is_parquet_store(root_path):
            visible = [p.name for p in entries if not p.name.startswith(_TMP_PREFIX)]
            if visible:
                raise StoreError(
                    f"Refusing to write a market store into {root_path}: the folder holds other "
                    f"files ({', '.join(sorted(visible)[:5])}); choose an empty or new folder"
                )
        for stale in root_path.glob(_TMP_PREFIX + "*"):
            shutil.rmtree(stale, ignore_errors=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        version = f"v-{stamp}-{uuid.uuid4().hex[:8]}"
        tmp = root_path / f"{_TMP_PREFIX}{version}"
        tmp.mkdir()
        try:
            meta = build(tmp)
            meta.update(
                format=FORMAT,
                format_version=FORMAT_VERSION,
                created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            )
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
            os.replace(tmp, root_path / version)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        previous = None
        if is_parquet_store(root_path):
            previous = json.loads((root_path / MARKER).read_text(encoding="utf-8")).get("current")
        marker_tmp = root_path / f"{_TMP_PREFIX}{MARKER}"
        with open(marker_tmp, "w", encoding="utf-8") as f:
            json.dump({"format": FORMAT, "format_version": FORMAT_VERSION, "current": version}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(marker_tmp, root_path / MARKER)
        # Keep the previous version for readers that opened it; drop anything older.
        for old in root_path.glob("v-*"):
            if old.name not in (version, previous):
                shutil.rmtree(old, ignore_errors=True)
    logger.info("Wrote market store version %s in %s", version, root_path)
    return ParquetMarketStore(root_path)


def write_parquet_store(
    root: str | os.PathLike[str],
    *,
    calendar: np.ndarray | Sequence[Any],
    listing: pl.DataFrame,
    universes: pl.DataFrame,
    bars: pl.DataFrame | Iterable[pl.DataFrame],
    fields: Sequence[str],
    source: str = "",
) -> ParquetMarketStore:
    """Write market data as a new version of the Parquet store at ``root`` (atomically).

    Args:
        root: The store folder (created if needed).
        calendar: Trading days (anything ``numpy.datetime64`` accepts), sorted.
        listing: ``instrument, start, end`` for every instrument that has bars.
        universes: ``universe, instrument, start, end`` membership spans.
        bars: ``instrument, datetime`` and ``fields``; a frame, or frames of whole instruments
            in ascending instrument order (to bound memory). Missing listed days become null
            rows; NaN becomes null.
        fields: The value columns to store, in order.
        source: A description of where the data came from (kept in ``meta.json``).

    Raises:
        DataError: for inconsistent data (bars outside listing spans or the calendar,
            duplicates, unknown instruments); nothing is written then.
        StoreError: when ``root`` cannot hold a store.
    """
    cal = _check_calendar(np.asarray(calendar))
    fields = list(fields)
    listing = _normalise_spans(listing, ["instrument"]).sort("instrument")
    if listing.get_column("instrument").is_duplicated().any():
        raise DataError("The listing has more than one span for some instrument")
    universes = _normalise_spans(universes, ["universe", "instrument"]).sort(
        "universe", "instrument", "start"
    )
    listed = listing.get_column("instrument")
    strays = universes.filter(~pl.col("instrument").is_in(listed.implode()))
    if strays.height:
        row = strays.row(0, named=True)
        raise DataError(
            f"Universe {row['universe']!r} names {row['instrument']}, which has no listing span"
        )
    _span_positions(cal, universes, "universes")
    chunks: Iterable[pl.DataFrame] = (
        _chunks_by_instrument(bars, ROW_GROUP_ROWS) if isinstance(bars, pl.DataFrame) else bars
    )

    def build(folder: Path) -> dict[str, Any]:
        pl.DataFrame({"datetime": pl.Series(cal, dtype=DATETIME_DTYPE)}).write_parquet(
            folder / "calendar.parquet"
        )
        listing.write_parquet(folder / "listing.parquet")
        universes.write_parquet(folder / "universes.parquet")
        schema = pa.schema(
            [("instrument", pa.large_string()), ("datetime", pa.timestamp("ns"))]
            + [(f, pa.float32()) for f in fields]
        )
        rows = 0
        last: str | None = None
        seen: set[str] = set()
        with pq.ParquetWriter(folder / "bars.parquet", schema, compression=COMPRESSION) as out:
            for chunk in chunks:
                if chunk.height == 0:
                    continue
                missing = [c for c in ("instrument", "datetime", *fields) if c not in chunk.columns]
                if missing:
                    raise DataError(f"Bars lack the column(s) {', '.join(missing)}")
                full = _complete_chunk(chunk, cal, listing, fields)
                first = full.get_column("instrument")[0]
                if last is not None and first <= last:
                    raise DataError(
                        "Bars must come in chunks of whole instruments in ascending order; "
                        f"{first} follows {last}"
                    )
                last = full.get_column("instrument")[-1]
                seen.update(full.get_column("instrument").unique().to_list())
                for group in _chunks_by_instrument(full, ROW_GROUP_ROWS):
                    out.write_table(group.to_arrow().cast(schema), row_group_size=group.height)
                rows += full.height
        # Listed instruments without any bar still get their (null) rows.
        absent = listing.filter(~pl.col("instrument").is_in(list(seen)))
        if absent.height:
            raise DataError(
                f"{absent.height} listed instrument(s) have no bars, e.g. "
                f"{absent.get_column('instrument')[0]}"
            )
        return {
            "fields": fields,
            "rows": rows,
            "instruments": listing.height,
            "calendar": [str(cal[0])[:10], str(cal[-1])[:10]],
            "source": source,
        }

    return write_version(root, build)
