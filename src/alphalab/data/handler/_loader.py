"""Data loaders: turn expression configs into feature frames read from a market store."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.ipc

from alphalab._memory import drop_mapped_pages, map_file
from alphalab.data._columns import KEYS, column
from alphalab.data._time import as_date_str, date_filter, date_runs
from alphalab.data.expr import ExpressionSet
from alphalab.data.storage import MarketStore
from alphalab.exceptions import ConfigError, DataError
from alphalab.logging import get_logger

logger = get_logger(__name__)

#: Bump when computed values could change for the same inputs, to invalidate feature caches.
ENGINE_VERSION = "2"

GroupConfig = tuple[list[str], list[str]]
_ROW = "__row"
_MEMBER_ROW = "__member_row"
#: Rows per run of dates written to a feature cache file (one record batch each).
DATE_RUN_ROWS = 50_000
#: ``progress(done, total)`` while features are computed.
Progress = Callable[[int, int], None]


def parse_loader_config(config: Any) -> dict[str, GroupConfig]:
    """Normalise Qlib's loader config to ``{group: (expressions, names)}``.

    Accepts ``{"feature": (exprs, names), "label": (exprs, names)}``, a group given as a bare
    list of expressions (then names are the expressions), or a bare list for one ``feature``
    group.
    """
    if isinstance(config, list | tuple) and not _is_pair(config):
        config = {"feature": list(config)}
    elif _is_pair(config):
        config = {"feature": config}
    if not isinstance(config, Mapping) or not config:
        raise ConfigError(
            "A loader config must map groups to (expressions, names), e.g. "
            "{'feature': (['$close/$open'], ['RET']), 'label': (...)}; got " + repr(config)
        )
    groups: dict[str, GroupConfig] = {}
    for group, spec in config.items():
        if _is_pair(spec):
            exprs, names = list(spec[0]), list(spec[1])
        elif isinstance(spec, list | tuple):
            exprs, names = list(spec), list(spec)
        else:
            raise ConfigError(
                f"Loader group {group!r} must be (expressions, names) or a list of expressions; "
                f"got {spec!r}"
            )
        if len(exprs) != len(names):
            raise ConfigError(
                f"Loader group {group!r} has {len(exprs)} expressions but {len(names)} names"
            )
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise ConfigError(f"Loader group {group!r} repeats the name(s) {dupes}")
        if not all(isinstance(e, str) for e in exprs):
            raise ConfigError(f"Loader group {group!r}: every expression must be a string")
        groups[str(group)] = (exprs, [str(n) for n in names])
    return groups


def _is_pair(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, list | tuple) for v in value)
    )


class QlibDataLoader:
    """Compute expression groups over a universe and date range (Qlib's ``QlibDataLoader``).

    Args:
        config: ``{group: (expressions, names)}``; see :func:`parse_loader_config`.
        filter_pipe: Not supported yet; must be empty.
        freq: Only ``"day"``.
        swap_level: Accepted for Qlib compatibility; output is always (datetime, instrument).
        inst_processors: Not supported; must be empty.
    """

    def __init__(
        self,
        *,
        config: Any,
        filter_pipe: Sequence[Any] | None = None,
        freq: str = "day",
        swap_level: bool = True,
        inst_processors: Sequence[Any] | None = None,
    ) -> None:
        self.config = config
        self.filter_pipe = filter_pipe
        self.freq = freq
        self.swap_level = swap_level
        self.inst_processors = inst_processors

    def _check(self) -> dict[str, GroupConfig]:
        if self.freq != "day":
            raise ConfigError(f"Only daily data is supported (freq='day'); got freq={self.freq!r}")
        if self.filter_pipe:
            raise ConfigError(
                "filter_pipe (dynamic instrument filters) is not supported yet; remove it or "
                "pass an explicit instrument list"
            )
        if self.inst_processors:
            raise ConfigError("inst_processors are not supported; remove them from the config")
        return parse_loader_config(self.config)

    @staticmethod
    def _expressions(groups: dict[str, GroupConfig], store: MarketStore) -> ExpressionSet:
        flat_exprs = [e for exprs, _ in groups.values() for e in exprs]
        flat_names = [column(g, n) for g, (_, names) in groups.items() for n in names]
        return ExpressionSet(flat_exprs, flat_names, fields=store.fields())

    def cache_key(
        self, store: MarketStore, instruments: list[str], universe: Any, start: Any, end: Any
    ) -> str:
        """A key identifying the loaded frame: expressions, instruments, range and data."""
        groups = self._check()
        exprs = self._expressions(groups, store)
        fields = sorted(exprs.required_fields)
        data = store.fingerprint(
            fields, instruments, start, end, history=_history(exprs, store), future=exprs.lookahead
        )
        payload = {
            "engine": ENGINE_VERSION,
            "groups": groups,
            "universe": universe if isinstance(universe, str) else None,
            "instruments": instruments,
            "start": as_date_str(start),
            "end": as_date_str(end),
            "data": data,
        }
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def load(
        self,
        store: MarketStore,
        instruments: Any,
        start: Any = None,
        end: Any = None,
        progress: Progress | None = None,
    ) -> pl.DataFrame:
        """Compute every group over ``instruments`` (a universe name or a list) in [start, end].

        Returns:
            A frame with ``datetime``, ``instrument`` and ``group/name`` columns, sorted by
            (datetime, instrument), rows limited to universe membership; values float32,
            missing as null.
        """
        exprs, raw = self._inputs(store, instruments, start, end)
        # Features are kept as float32 (as Qlib stores them): half the memory of every view.
        computed = exprs.evaluate(raw, progress=progress, dtype=pl.Float32)
        del raw
        # Which rows to keep and in what order is decided on the keys alone; the values are
        # then moved one column at a time, so the frame is never held twice.
        rows = self._keep(
            computed.select(KEYS).with_row_index(_ROW), store, instruments, start, end
        )
        rows = rows.sort(KEYS)
        order = rows.get_column(_ROW)
        result = rows.select(KEYS)
        for name in computed.columns[len(KEYS) :]:
            # one contiguous column first: gathering across chunks is several times slower
            result = result.with_columns(computed.get_column(name).rechunk().gather(order))
            computed = computed.drop(name)
        return result

    def load_to_file(
        self,
        store: MarketStore,
        instruments: Any,
        start: Any,
        end: Any,
        path: Path,
        progress: Progress | None = None,
    ) -> None:
        """Write what :meth:`load` returns to ``path`` (Arrow IPC), never holding all of it.

        Features are computed for a group of instruments at a time and each group is written
        to a scratch file as soon as it is done; ``path`` is then written a run of dates at a
        time from the mapped scratch file. Memory holds one group or one run, not the frame.
        """
        exprs, raw = self._inputs(store, instruments, start, end)
        with _replacing(path) as target, _scratch_file(path.parent) as scratch:
            heights = []
            with _IpcFile(scratch) as writer:
                # pieces hold increasing runs of instruments, each sorted by (instrument,
                # datetime): a stable sort on the date alone orders them by (datetime,
                # instrument), within a piece and across pieces
                for piece in exprs.evaluate_pieces(raw, progress=progress, dtype=pl.Float32):
                    piece = self._keep(piece, store, instruments, start, end)
                    writer.write(piece.sort("datetime", maintain_order=True))
                    heights.append(piece.height)
            del raw
            written = read_mapped(scratch)
            offsets = np.cumsum([0, *heights])
            pieces = [written.slice(o, h) for o, h in zip(offsets[:-1], heights, strict=True)]
            runs = date_runs(written.get_column("datetime"), DATE_RUN_ROWS)
            ends = pl.Series([high for _, high in runs]).cast(written.schema["datetime"])
            bounds = [[0, *p.get_column("datetime").search_sorted(ends, "right")] for p in pieces]
            with _IpcFile(target) as writer:
                writer.write(written.head(0))  # the schema, also when no row is kept
                for k in range(len(runs)):
                    run = [
                        p.slice(b[k], b[k + 1] - b[k]) for p, b in zip(pieces, bounds, strict=True)
                    ]
                    writer.write(pl.concat(run).sort("datetime", maintain_order=True))
                    drop_mapped_pages()
            del written, pieces

    def _inputs(
        self, store: MarketStore, instruments: Any, start: Any, end: Any
    ) -> tuple[ExpressionSet, pl.DataFrame]:
        """The parsed expressions and the market data they read (with history and lookahead)."""
        groups = self._check()
        codes = resolve_instruments(store, instruments, start, end)
        exprs = self._expressions(groups, store)
        raw = store.read(
            sorted(exprs.required_fields),
            codes,
            start,
            end,
            history=_history(exprs, store),
            future=exprs.lookahead,
        )
        return exprs, raw

    @staticmethod
    def _keep(
        frame: pl.DataFrame, store: MarketStore, instruments: Any, start: Any, end: Any
    ) -> pl.DataFrame:
        """The rows inside [start, end] and, for a universe, inside its membership."""
        frame = frame.filter(date_filter(start, end))
        if isinstance(instruments, str):
            frame = filter_membership(frame, store.membership(instruments))
        return frame


def _history(exprs: ExpressionSet, store: MarketStore) -> int:
    """Trading days of history to read; an expanding window needs the whole calendar."""
    return len(store.calendar_array()) if exprs.lookback is None else exprs.lookback


def resolve_instruments(store: MarketStore, instruments: Any, start: Any, end: Any) -> list[str]:
    """Instrument codes of a universe name (members within the range) or an explicit list."""
    if isinstance(instruments, str):
        codes = store.instruments(instruments, start, end)
        if not codes:
            raise DataError(
                f"The universe {instruments!r} has no instrument between {as_date_str(start)} "
                f"and {as_date_str(end)}"
            )
        return sorted(codes)
    if isinstance(instruments, list | tuple) and instruments:
        if not all(isinstance(code, str) for code in instruments):
            raise ConfigError("An instrument list must contain instrument codes (strings)")
        return sorted(set(instruments))
    raise ConfigError(
        f"'instruments' must be a universe name (e.g. 'csi300') or a list of codes; got "
        f"{instruments!r}"
    )


def filter_membership(frame: pl.DataFrame, spans: pl.DataFrame) -> pl.DataFrame:
    """Keep the rows whose date lies inside one of the instrument's membership spans."""
    span_cols = spans.select(
        "instrument",
        pl.col("start").cast(pl.Datetime("us")).alias("_start"),
        pl.col("end").cast(pl.Datetime("us")).alias("_end"),
    )
    moment = pl.col("datetime").cast(pl.Datetime("us"))
    # rows are matched by position: hashing (datetime, instrument) keys costs far more memory
    inside = (
        frame.select(KEYS)
        .with_row_index(_MEMBER_ROW)
        .join(span_cols, on="instrument", how="inner")
        .filter((moment >= pl.col("_start")) & (moment <= pl.col("_end")))
        .get_column(_MEMBER_ROW)
        .to_numpy()
    )
    keep = np.zeros(frame.height, dtype=bool)
    keep[inside] = True
    return frame.filter(pl.Series(keep))


@contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` that replaces it when the block succeeds.

    A reader never sees a partial file, and a file is never rewritten in place, so frames
    still mapped from an older version stay valid.
    """
    with _scratch_file(path.parent, prefix=f".{path.name}.") as tmp:
        yield tmp
        os.replace(tmp, path)


@contextmanager
def _scratch_file(folder: Path, prefix: str = ".scratch.") -> Iterator[Path]:
    """A new empty file in ``folder``, removed when the block ends (unless it was moved)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".tmp")
    os.close(fd)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


class _IpcFile:
    """An uncompressed Arrow IPC file written a frame at a time (all with one schema)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: pa.ipc.RecordBatchFileWriter | None = None
        self._schema: pa.Schema | None = None

    def write(self, frame: pl.DataFrame) -> None:
        table = frame.to_arrow()
        if self._writer is None:
            self._schema = table.schema
            self._writer = pa.ipc.new_file(str(self.path), table.schema)
        self._writer.write_table(table.cast(self._schema))

    def __enter__(self) -> _IpcFile:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer.close()


def read_mapped(path: Path) -> pl.DataFrame:
    """An uncompressed Arrow IPC file as a frame whose values stay in the (mapped) file.

    Nothing is decoded: a cached run costs little more than the fingerprint of its data.

    Only the pages a computation reads count in the process' memory, and
    :func:`alphalab._memory.release_free_memory` gives them back.
    """
    table = pa.ipc.open_file(pa.py_buffer(map_file(path))).read_all()
    frame = pl.from_arrow(table, rechunk=False)
    assert isinstance(frame, pl.DataFrame)
    return frame


def load_cached(
    loader: QlibDataLoader,
    store: MarketStore,
    instruments: Any,
    start: Any,
    end: Any,
    cache_dir: Path | None,
    progress: Progress | None = None,
) -> tuple[pl.DataFrame, str]:
    """Load through the feature cache (None: no cache); also return the data's cache key.

    The key (see :meth:`QlibDataLoader.cache_key`) doubles as the fingerprint of the data a
    run used: it changes when an expression, the instruments, the range or a value read does.
    With a cache, the frame returned is mapped from the cache file (see :func:`read_mapped`),
    also right after it was computed: features then stay out of the process' memory.
    """
    codes = resolve_instruments(store, instruments, start, end)
    key = loader.cache_key(store, codes, instruments, start, end)
    if cache_dir is None:
        return loader.load(store, instruments, start, end, progress), key
    path = cache_dir / "features" / f"{key}.arrow"
    if path.is_file():
        try:
            frame = read_mapped(path)
            logger.info("Features read from cache %s", path.name)
            return frame, key
        except (OSError, ValueError, pa.ArrowException, pl.exceptions.PolarsError) as e:
            logger.warning("Ignoring unreadable feature cache %s: %s", path, e)
    try:
        loader.load_to_file(store, instruments, start, end, path, progress)
        return read_mapped(path), key
    except (OSError, pa.ArrowException) as e:
        logger.warning("Could not write the feature cache %s (%s); computing in memory", path, e)
    return loader.load(store, instruments, start, end, progress), key
