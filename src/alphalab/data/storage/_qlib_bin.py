"""Qlib's binary data directory: read in place, and write (for tests, benchmarks, export).

Layout (``shared/spec/qlib-compat.md``)::

    calendars/day.txt                      one trading day per line; line k is time index k
    instruments/<universe>.txt             SYMBOL<TAB>start<TAB>end, one line per span
    features/<symbol lower>/<field>.day.bin little-endian float32: [start index, values...]

An instrument's listing span is the union of its spans over every universe file; an
instrument with feature files but in no universe file (an index such as ``SH000300``) is
listed over the calendar range its ``close`` file (or its longest file) covers.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from alphalab.data.storage._base import (
    DATETIME_DTYPE,
    MarketStore,
    datetime_lit,
    repeat_strings,
    to_datetime64,
)
from alphalab.exceptions import DataError, StoreError

_FREQ_SUFFIX = ".day.bin"
_DTYPE = np.dtype("<f4")


def is_qlib_dir(path: Path) -> bool:
    """Whether ``path`` looks like a Qlib data directory."""
    return (path / "calendars" / "day.txt").is_file() and (path / "features").is_dir()


def _parse_date(text: str, file: Path, line: int) -> np.datetime64:
    try:
        return to_datetime64(text.strip(), what="date")
    except DataError:
        raise DataError(
            f"{file}, line {line}: {text.strip()!r} is not a date (expected YYYY-MM-DD)"
        ) from None


def read_qlib_calendar(file: Path) -> np.ndarray:
    """Read ``calendars/day.txt`` as a sorted ``datetime64[ns]`` array.

    Raises:
        DataError: naming the file and line of a malformed or out-of-order date.
    """
    days: list[np.datetime64] = []
    with open(file, encoding="utf-8") as f:
        for number, text in enumerate(f, start=1):
            if not text.strip():
                continue
            day = _parse_date(text, file, number)
            if days and day <= days[-1]:
                raise DataError(
                    f"{file}, line {number}: {text.strip()} is not after the previous day "
                    "(the calendar must be sorted and unique)"
                )
            days.append(day)
    if not days:
        raise DataError(f"{file} holds no trading day")
    return np.array(days, dtype="datetime64[ns]")


def read_qlib_instruments(file: Path) -> pl.DataFrame:
    """Read one ``instruments/<universe>.txt`` as ``instrument, start, end``.

    Raises:
        DataError: naming the file and line of a malformed line.
    """
    names: list[str] = []
    starts: list[np.datetime64] = []
    ends: list[np.datetime64] = []
    with open(file, encoding="utf-8") as f:
        for number, text in enumerate(f, start=1):
            if not text.strip():
                continue
            parts = text.split("\t") if "\t" in text else text.split()
            if len(parts) != 3:
                raise DataError(
                    f"{file}, line {number}: expected SYMBOL<TAB>start<TAB>end; "
                    f"got {text.strip()!r}"
                )
            start = _parse_date(parts[1], file, number)
            end = _parse_date(parts[2], file, number)
            if start > end:
                raise DataError(f"{file}, line {number}: the span starts after it ends")
            names.append(parts[0].strip().upper())
            starts.append(start)
            ends.append(end)
    return pl.DataFrame(
        {
            "instrument": pl.Series(names, dtype=pl.String),
            "start": pl.Series(np.array(starts, dtype="datetime64[ns]"), dtype=DATETIME_DTYPE),
            "end": pl.Series(np.array(ends, dtype="datetime64[ns]"), dtype=DATETIME_DTYPE),
        }
    )


def _check_header(file: Path, size: int, first: float, n_days: int) -> tuple[int, int]:
    if size < 4 or size % 4:
        raise DataError(
            f"{file} is not a Qlib feature file: {size} bytes is not a whole number of float32 "
            "values with a start index"
        )
    if not np.isfinite(first) or first != int(first) or not 0 <= first < n_days:
        raise DataError(
            f"{file}: the start index {first!r} is not a position in the calendar (0..{n_days - 1})"
        )
    count = size // 4 - 1
    if int(first) + count > n_days:
        raise DataError(
            f"{file}: {count} values from index {int(first)} run past the calendar's {n_days} days"
        )
    return int(first), count


def _bin_header(file: Path, n_days: int) -> tuple[int, int]:
    """Return (start index, number of values) of a ``.day.bin`` file; validate its shape."""
    size = file.stat().st_size
    first = np.fromfile(file, dtype=_DTYPE, count=1)[0] if size >= 4 else np.float32(np.nan)
    return _check_header(file, size, float(first), n_days)


def _read_bin_range(
    file: Path, n_days: int, start: int, stop: int
) -> tuple[int, np.ndarray] | None:
    """Read the values of calendar positions ``[start, stop]`` a ``.day.bin`` file holds.

    Returns (position of the first value returned, values), or None when the file does not
    exist. Raises DataError for a malformed file.
    """
    try:
        with open(file, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(4)
            first_value = float(np.frombuffer(head, dtype=_DTYPE)[0]) if len(head) == 4 else np.nan
            first, count = _check_header(file, size, first_value, n_days)
            lo = max(start, first)
            hi = min(stop, first + count - 1)
            if hi < lo:
                return lo, np.empty(0, dtype=_DTYPE)
            if lo > first:
                f.seek(4 * (1 + lo - first))
            return lo, np.fromfile(f, dtype=_DTYPE, count=hi - lo + 1)
    except FileNotFoundError:
        return None


class QlibBinMarketStore(MarketStore):
    """Serve a Qlib data directory in place through the :class:`MarketStore` interface."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        super().__init__()
        self._root = Path(root)
        if not is_qlib_dir(self._root):
            raise StoreError(
                f"{self._root} is not a Qlib data directory (it needs calendars/day.txt and "
                "features/)"
            )
        self._features = self._root / "features"
        self._dirs: dict[str, Path] | None = None
        self._fields: list[str] | None = None

    @property
    def uri(self) -> str:
        """The directory."""
        return str(self._root)

    @property
    def kind(self) -> str:
        """``"qlib"``."""
        return "qlib"

    def _instrument_dirs(self) -> dict[str, Path]:
        """Upper-case instrument code -> its features folder."""
        if self._dirs is None:
            self._dirs = {
                entry.name.upper(): Path(entry.path)
                for entry in os.scandir(self._features)
                if entry.is_dir()
            }
        return self._dirs

    def _load_calendar(self) -> np.ndarray:
        return read_qlib_calendar(self._root / "calendars" / "day.txt")

    def _load_universes(self) -> pl.DataFrame:
        frames = []
        folder = self._root / "instruments"
        if folder.is_dir():
            for file in sorted(folder.glob("*.txt")):
                frames.append(
                    read_qlib_instruments(file).select(
                        pl.lit(file.stem).alias("universe"), pl.all()
                    )
                )
        if not frames:
            return pl.DataFrame(
                schema={
                    "universe": pl.String,
                    "instrument": pl.String,
                    "start": DATETIME_DTYPE,
                    "end": DATETIME_DTYPE,
                }
            )
        return pl.concat(frames)

    def _load_listing(self) -> pl.DataFrame:
        cal = self.calendar_array()
        spans = (
            self._universe_table()
            .group_by("instrument")
            .agg(pl.col("start").min(), pl.col("end").max())
        )
        # Clip spans to the calendar; drop instruments without any feature folder.
        dirs = self._instrument_dirs()
        spans = spans.filter(pl.col("instrument").is_in(list(dirs))).with_columns(
            pl.col("start").clip(lower_bound=datetime_lit(cal[0])),
            pl.col("end").clip(upper_bound=datetime_lit(cal[-1])),
        )
        listed = set(spans.get_column("instrument").to_list())
        extra_names: list[str] = []
        extra_start: list[np.datetime64] = []
        extra_end: list[np.datetime64] = []
        for code in sorted(set(dirs) - listed):
            files = sorted(dirs[code].glob("*" + _FREQ_SUFFIX))
            if not files:
                continue
            preferred = dirs[code] / ("close" + _FREQ_SUFFIX)
            headers = [_bin_header(f, cal.size) for f in files]
            if preferred.is_file():
                first, count = _bin_header(preferred, cal.size)
            else:
                first, count = max(headers, key=lambda h: h[1])
            if count == 0:
                continue
            extra_names.append(code)
            extra_start.append(cal[first])
            extra_end.append(cal[first + count - 1])
        extra = pl.DataFrame(
            {
                "instrument": pl.Series(extra_names, dtype=pl.String),
                "start": pl.Series(
                    np.array(extra_start, dtype="datetime64[ns]"), dtype=DATETIME_DTYPE
                ),
                "end": pl.Series(np.array(extra_end, dtype="datetime64[ns]"), dtype=DATETIME_DTYPE),
            }
        )
        return pl.concat([spans.select("instrument", "start", "end"), extra]).filter(
            pl.col("start") <= pl.col("end")
        )

    def fields(self) -> list[str]:
        """Every field that has a ``.day.bin`` file for some instrument."""
        if self._fields is None:
            names: set[str] = set()
            for folder in self._instrument_dirs().values():
                names.update(
                    entry.name[: -len(_FREQ_SUFFIX)]
                    for entry in os.scandir(folder)
                    if entry.name.endswith(_FREQ_SUFFIX)
                )
            base = ["open", "high", "low", "close", "volume", "vwap", "factor", "change"]
            self._fields = [f for f in base if f in names] + sorted(names - set(base))
        return list(self._fields)

    def size_on_disk(self) -> int:
        """Bytes of every file in the directory."""
        return sum(f.stat().st_size for f in self._root.rglob("*") if f.is_file())

    def _read_bars(
        self, fields: list[str], instruments: list[str], lo: np.datetime64, hi: np.datetime64
    ) -> pl.DataFrame:
        cal = self.calendar_array()
        lo_i = int(np.searchsorted(cal, lo))
        hi_i = int(np.searchsorted(cal, hi, side="right")) - 1
        spans = self.listing().filter(pl.col("instrument").is_in(instruments)).sort("instrument")
        codes = spans.get_column("instrument").to_list()
        first = np.searchsorted(cal, spans.get_column("start").to_numpy().astype("datetime64[ns]"))
        last = (
            np.searchsorted(
                cal, spans.get_column("end").to_numpy().astype("datetime64[ns]"), side="right"
            )
            - 1
        )
        a = np.maximum(first, lo_i)
        b = np.minimum(last, hi_i)
        lengths = np.maximum(b - a + 1, 0)
        offsets = np.r_[0, np.cumsum(lengths)]
        total = int(offsets[-1])
        positions = np.empty(total, dtype=np.int64)
        values = {f: np.full(total, np.nan, dtype=_DTYPE) for f in fields}
        dirs = self._instrument_dirs()
        for k, code in enumerate(codes):
            n = int(lengths[k])
            if n == 0:
                continue
            o = int(offsets[k])
            start = int(a[k])
            positions[o : o + n] = np.arange(start, start + n)
            folder = dirs.get(code)
            if folder is None:
                continue
            for name in fields:
                found = _read_bin_range(
                    folder / (name + _FREQ_SUFFIX), cal.size, start, start + n - 1
                )
                if found is None:
                    continue
                lo_v, chunk = found
                values[name][o + lo_v - start : o + lo_v - start + chunk.size] = chunk
        data = {
            "datetime": pl.Series(cal[positions], dtype=DATETIME_DTYPE),
            "instrument": repeat_strings(codes, lengths),
        }
        data.update({f: pl.Series(values[f]) for f in fields})
        return pl.DataFrame(data)


def write_qlib_dir(
    store: MarketStore,
    dest: str | os.PathLike[str],
    *,
    fields: Sequence[str] | None = None,
) -> Path:
    """Write ``store`` as a Qlib binary data directory at ``dest`` (which must not exist).

    Every instrument's feature files cover its whole listing span (NaN on suspended days);
    every universe becomes ``instruments/<universe>.txt``. The directory is built beside
    ``dest`` and renamed into place, so ``dest`` never holds a partial export.

    Raises:
        StoreError: when ``dest`` already exists.
    """
    target = Path(dest).expanduser()
    if target.exists():
        raise StoreError(f"Refusing to overwrite {target}: choose a new folder for the export")
    names = list(fields) if fields is not None else store.fields()
    tmp = target.with_name(f".tmp-{target.name}-{uuid.uuid4().hex[:8]}")
    try:
        (tmp / "calendars").mkdir(parents=True)
        (tmp / "instruments").mkdir()
        (tmp / "features").mkdir()
        cal = store.calendar_array()
        (tmp / "calendars" / "day.txt").write_text(
            "".join(f"{str(d)[:10]}\n" for d in cal), encoding="utf-8"
        )
        for universe in store.universes():
            spans = store.membership(universe).sort("instrument", "start")
            lines = [
                f"{row[0]}\t{row[1]:%Y-%m-%d}\t{row[2]:%Y-%m-%d}\n" for row in spans.iter_rows()
            ]
            (tmp / "instruments" / f"{universe}.txt").write_text("".join(lines), encoding="utf-8")
        listing = store.listing()
        codes = listing.get_column("instrument").to_list()
        for batch_start in range(0, len(codes), 200):
            batch = codes[batch_start : batch_start + 200]
            frame = store.read(names, batch)
            for (code,), rows in frame.group_by("instrument", maintain_order=True):
                folder = tmp / "features" / str(code).lower()
                folder.mkdir()
                first = int(np.searchsorted(cal, rows.get_column("datetime").to_numpy()[0]))
                for name in names:
                    column = rows.get_column(name).cast(pl.Float32).to_numpy().astype(_DTYPE)
                    np.r_[np.array([first], dtype=_DTYPE), column].astype(_DTYPE).tofile(
                        folder / (name + _FREQ_SUFFIX)
                    )
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
