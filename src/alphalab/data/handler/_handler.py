"""Data handlers (Qlib's ``DataHandlerLP``): load features and labels, then process them.

A handler keeps three views of its data: raw (``DK_R``), inference (``DK_I``: infer
processors applied) and learning (``DK_L``: learn processors applied too). Processors that
learn (normalisers) fit only on rows inside ``[fit_start_time, fit_end_time]``, so nothing
from the validation or test period leaks into training.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import polars as pl

from alphalab._progress import make_progress, phase
from alphalab.config import Settings, get_settings, init_instance_by_config
from alphalab.data._columns import select_columns, to_pandas
from alphalab.data._time import date_slice, to_timestamp
from alphalab.data.handler._loader import QlibDataLoader, load_cached
from alphalab.data.processor import Processor
from alphalab.data.storage import MarketStore, open_market_store
from alphalab.exceptions import ConfigError, DataError
from alphalab.logging import get_logger

logger = get_logger(__name__)

_PROCESSOR_MODULE = "alphalab.data.processor"


def build_processors(configs: Sequence[Any] | None, where: str) -> list[Processor]:
    """Instantiate processor configs (``{"class": "ZScoreNorm", "kwargs": {...}}``, names...)."""
    processors = []
    for i, config in enumerate(configs or []):
        try:
            proc = init_instance_by_config(config, _PROCESSOR_MODULE, accept_types=Processor)
        except ConfigError as e:
            raise ConfigError(f"{where}[{i}]: {e}") from None
        if not isinstance(proc, Processor):
            raise ConfigError(f"{where}[{i}]: {proc!r} is not a Processor")
        processors.append(proc)
    return processors


class DataHandlerLP:
    """Loads features/labels for a universe and date range and applies processors.

    Construction stores the configuration; data is loaded on :meth:`setup_data` (called by
    the first :meth:`fetch` or by a dataset).

    Args:
        instruments: A universe name (``"csi300"``, ``"all"``) or a list of codes.
        start_time: First date of data (history before it is read for the windows).
        end_time: Last date of data.
        data_loader: A :class:`QlibDataLoader` or its config.
        infer_processors: Processors for inference and learning data.
        learn_processors: Processors for learning data only (e.g. DropnaLabel).
        shared_processors: Processors applied before both chains.
        process_type: ``"append"`` (learn chain runs on the infer output) or
            ``"independent"`` (both chains start from raw data).
        drop_raw: Free the raw view after processing.
        fit_start_time: First date processors learn from (default ``start_time``).
        fit_end_time: Last date processors learn from (default ``end_time``).
        store: A market store to read instead of the configured ``provider_uri``.
        cache: Cache computed features under the settings' ``cache_dir``.
    """

    DK_R: ClassVar[str] = "raw"
    DK_I: ClassVar[str] = "infer"
    DK_L: ClassVar[str] = "learn"
    PTYPE_I: ClassVar[str] = "independent"
    PTYPE_A: ClassVar[str] = "append"

    def __init__(
        self,
        instruments: str | Sequence[str] = "csi300",
        start_time: Any = None,
        end_time: Any = None,
        data_loader: Any = None,
        infer_processors: Sequence[Any] = (),
        learn_processors: Sequence[Any] = (),
        shared_processors: Sequence[Any] = (),
        process_type: str = "append",
        drop_raw: bool = False,
        fit_start_time: Any = None,
        fit_end_time: Any = None,
        store: MarketStore | None = None,
        cache: bool = True,
    ) -> None:
        self.instruments = instruments
        self.start_time = start_time
        self.end_time = end_time
        self.data_loader = data_loader
        self.infer_processors = list(infer_processors)
        self.learn_processors = list(learn_processors)
        self.shared_processors = list(shared_processors)
        self.process_type = process_type
        self.drop_raw = drop_raw
        self.fit_start_time = fit_start_time
        self.fit_end_time = fit_end_time
        self.store = store
        self.cache = cache
        self._views: dict[str, pl.DataFrame] = {}
        self._learn_input: pl.DataFrame | None = None  # see _process
        self._fitted: dict[str, list[Processor]] = {}
        self._data_fingerprint: str | None = None

    # ----------------------------------------------------------------- set-up
    def _loader(self) -> QlibDataLoader:
        loader = init_instance_by_config(
            self.data_loader, "alphalab.data.handler", accept_types=QlibDataLoader
        )
        if not isinstance(loader, QlibDataLoader):
            raise ConfigError(f"data_loader must be a QlibDataLoader; got {loader!r}")
        return loader

    def _validate(self) -> None:
        if self.process_type not in (self.PTYPE_A, self.PTYPE_I):
            raise ConfigError(
                f"process_type must be 'append' or 'independent'; got {self.process_type!r}"
            )
        start, end = to_timestamp(self.start_time), to_timestamp(self.end_time)
        if start is not None and end is not None and start > end:
            raise ConfigError(f"start_time {self.start_time} is after end_time {self.end_time}")

    def setup_data(self, settings: Settings | None = None, *, refit: bool = True) -> None:
        """Load the raw data (through the feature cache) and run the processors.

        Args:
            settings: Settings to read data with (default: the resolved settings).
            refit: Fit the processors again; ``False`` reuses the fitted processors of a
                handler that was unpickled (e.g. the ``dataset`` artifact of a run), so new
                data is processed exactly as the training data was.
        """
        self._validate()
        settings = settings or get_settings()
        store = self.store or open_market_store(settings.provider_uri, settings=settings)
        cache_dir = Path(settings.cache_dir) if self.cache else None
        loader = self._loader()
        with make_progress() as bar:
            task = bar.add_task("Computing features", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            raw, self._data_fingerprint = load_cached(
                loader, store, self.instruments, self.start_time, self.end_time, cache_dir, advance
            )
        if raw.height == 0:
            raise DataError(
                f"No data for instruments {self.instruments!r} between {self.start_time} and "
                f"{self.end_time}"
            )
        with phase("Processing features"):
            self._process(raw, refit=refit or not self._fitted)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle configuration and fitted processors, not data (Qlib's ``dump_all=False``)."""
        state = dict(self.__dict__)
        state["_views"] = {}
        state["_learn_input"] = None
        state["store"] = None
        return state

    def _fit_window(self) -> tuple[Any, Any]:
        start = self.fit_start_time if self.fit_start_time is not None else self.start_time
        end = self.fit_end_time if self.fit_end_time is not None else self.end_time
        return start, end

    def _fit_transform(
        self, procs: list[Processor], frame: pl.DataFrame, fit: bool
    ) -> pl.DataFrame:
        """Apply ``procs`` in order to ``frame``, each first fitted on the fit window's rows."""
        for proc in procs:
            if fit and _learns(proc):
                proc.fit(self._fit_rows(frame, proc))
            frame = proc(frame)
        return frame

    def _fit_rows(self, frame: pl.DataFrame, proc: Processor) -> pl.DataFrame:
        rows = date_slice(frame, *self._fit_window())
        if rows.height == 0:
            raise DataError(
                f"No rows in the fit window [{self.fit_start_time}, {self.fit_end_time}] to fit "
                f"{type(proc).__name__} on"
            )
        return rows

    def _fit_only(self, procs: list[Processor], frame: pl.DataFrame) -> None:
        """Fit date-local ``procs`` on the fit window alone, without processing every row.

        For date-local processors this learns exactly what fitting on the whole frame does.
        """
        if any(_learns(proc) for proc in procs):
            self._fit_transform(procs, date_slice(frame, *self._fit_window()), fit=True)

    def _process(self, raw: pl.DataFrame, refit: bool) -> None:
        if refit:
            fitted = {
                "shared": build_processors(self.shared_processors, "shared_processors"),
                "infer": build_processors(self.infer_processors, "infer_processors"),
                "learn": build_processors(self.learn_processors, "learn_processors"),
            }
        else:
            fitted = self._fitted
        for proc in fitted["shared"] + fitted["infer"]:
            if not proc.is_for_infer():
                raise ConfigError(
                    f"{type(proc).__name__} cannot run on inference data (it drops or changes "
                    "rows by label); put it in learn_processors"
                )
        shared = self._fit_transform(fitted["shared"], raw, refit)
        infer = self._fit_transform(fitted["infer"], shared, refit)
        learn_input = infer if self.process_type == self.PTYPE_A else shared
        self._fitted = fitted
        self._views = {self.DK_I: infer}
        if all(proc.date_local for proc in fitted["learn"]):
            # The learning view is made per fetched date range (see fetch_polars): holding a
            # processed copy of every row would double the memory of the handler.
            if refit:
                self._fit_only(fitted["learn"], learn_input)
            self._learn_input = learn_input
        else:
            self._views[self.DK_L] = self._fit_transform(fitted["learn"], learn_input, refit)
        if not self.drop_raw:
            self._views[self.DK_R] = raw

    @property
    def data_fingerprint(self) -> str:
        """A stable hash of the expressions, instruments, range and values this handler read."""
        if self._data_fingerprint is None:
            raise DataError("The handler has not loaded data yet; call setup_data() first")
        return self._data_fingerprint

    @property
    def processors(self) -> dict[str, list[Processor]]:
        """The fitted processors by chain (``shared``, ``infer``, ``learn``)."""
        return self._fitted

    # ------------------------------------------------------------------ reads
    def fetch_polars(
        self,
        selector: Any = slice(None, None),
        level: str | int = "datetime",
        col_set: str | Sequence[str] | None = "__all",
        data_key: str = DK_I,
    ) -> pl.DataFrame:
        """Like :meth:`fetch` but returns the internal Polars frame (key + value columns)."""
        if not self._views:
            self.setup_data()
        if data_key == self.DK_L and data_key not in self._views:
            frame = self._learn_rows(selector, level)
        elif data_key in self._views:
            frame = _select_rows(self._views[data_key], selector, level)
        else:
            available = ", ".join(sorted({*self._views, self.DK_L}))
            raise ConfigError(
                f"data_key {data_key!r} is not available (drop_raw={self.drop_raw}); "
                f"choose from: {available}"
            )
        return frame.select(["datetime", "instrument", *select_columns(frame, col_set)])

    def _learn_rows(self, selector: Any, level: str | int) -> pl.DataFrame:
        """The learning view of the selected rows, processed now (date-local learn chain)."""
        learn, frame = self._fitted["learn"], self._learn_input
        assert frame is not None  # set with the views
        if level in ("datetime", 0):
            return self._fit_transform(learn, _select_rows(frame, selector, level), fit=False)
        # Processors work per date: other selections are cut from whole dates.
        return _select_rows(self._fit_transform(learn, frame, fit=False), selector, level)

    def fetch(
        self,
        selector: Any = slice(None, None),
        level: str | int = "datetime",
        col_set: str | Sequence[str] | None = "__all",
        data_key: str = DK_I,
        squeeze: bool = False,
        proc_func: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    ) -> pd.DataFrame:
        """Return data as Qlib does: index (datetime, instrument), columns (group, name).

        Args:
            selector: A date slice (``slice("2020-01-01", "2020-06-30")``), one date, or
                instrument code(s) when ``level="instrument"``.
            level: ``"datetime"`` (0) or ``"instrument"`` (1).
            col_set: ``"__all"``, a group (``"feature"``: single-level columns) or groups.
            data_key: ``DK_R``, ``DK_I`` or ``DK_L``.
            squeeze: Return a Series when one column is selected.
            proc_func: Applied to the pandas frame before it is returned.
        """
        frame = self.fetch_polars(selector, level, col_set, data_key)
        return frame_to_pandas(frame, col_set, squeeze, proc_func)

    def get_cols(self, col_set: str | Sequence[str] = "__all", data_key: str = DK_I) -> list[str]:
        """Column names (without group) of ``col_set``."""
        frame = self.fetch_polars(slice(None, None), "datetime", col_set, data_key).head(0)
        return [c.partition("/")[2] for c in frame.columns[2:]]


def frame_to_pandas(
    frame: pl.DataFrame,
    col_set: str | Sequence[str] | None = "__all",
    squeeze: bool = False,
    proc_func: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Convert a fetched Polars frame to Qlib's pandas shape (see :meth:`DataHandlerLP.fetch`)."""
    columns = [c for c in frame.columns if c not in ("datetime", "instrument")]
    single_group = isinstance(col_set, str) and col_set != "__all"
    out = to_pandas(frame, columns, squeeze=single_group)
    if proc_func is not None:
        out = proc_func(out)
    if squeeze and out.shape[1] == 1:
        return out.iloc[:, 0]
    return out


def _learns(proc: Processor) -> bool:
    """Whether ``proc`` learns state in ``fit`` (stateless processors need no fit rows)."""
    return type(proc).fit is not Processor.fit


def _select_rows(frame: pl.DataFrame, selector: Any, level: str | int) -> pl.DataFrame:
    """The rows of ``frame`` a fetch selector names; date ranges are zero-copy slices."""
    if level in ("datetime", 0):
        if isinstance(selector, slice):
            if selector.step is not None:
                raise ConfigError("A date slice cannot have a step")
            return date_slice(frame, selector.start, selector.stop)
        if isinstance(selector, list | tuple) and len(selector) == 2:
            return date_slice(frame, selector[0], selector[1])
        return date_slice(frame, selector, selector)
    if level in ("instrument", 1):
        if isinstance(selector, slice) and selector == slice(None, None):
            return frame
        codes = [selector] if isinstance(selector, str) else list(selector)
        return frame.filter(pl.col("instrument").is_in(codes))
    raise ConfigError(f"level must be 'datetime' or 'instrument'; got {level!r}")
