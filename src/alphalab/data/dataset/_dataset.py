"""Datasets (Qlib's ``DatasetH`` / ``TSDatasetH``): named date segments over a handler."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from alphalab.config import init_instance_by_config
from alphalab.data._columns import KEYS, select_columns
from alphalab.data._time import as_date_str, date_filter, date_runs, to_timestamp
from alphalab.data.handler import DataHandlerLP, frame_to_pandas
from alphalab.exceptions import ConfigError, DataError, NotFoundError


def _segment_bounds(name: str, value: Any) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    if isinstance(value, slice):
        start, end = value.start, value.stop
    elif isinstance(value, list | tuple) and len(value) == 2:
        start, end = value
    else:
        raise ConfigError(
            f"Segment {name!r} must be [start, end] (e.g. ['2017-01-01', '2018-12-31']); "
            f"got {value!r}"
        )
    low = to_timestamp(start, f"start of segment {name!r}")
    high = to_timestamp(end, f"end of segment {name!r}")
    if low is not None and high is not None and low > high:
        raise ConfigError(f"Segment {name!r} starts ({as_date_str(low)}) after it ends")
    return low, high


class DatasetH:
    """A handler plus named segments; :meth:`prepare` slices the handler's data by segment.

    Args:
        handler: A :class:`DataHandlerLP` or its config (built on first use).
        segments: ``{"train": [start, end], "valid": [...], "test": [...]}``.
        fetch_kwargs: Extra arguments for the handler's fetch.
    """

    def __init__(
        self,
        handler: Any,
        segments: Mapping[str, Any],
        fetch_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.handler_config = handler
        self.segments = dict(segments)
        self.fetch_kwargs = dict(fetch_kwargs or {})
        self._handler: DataHandlerLP | None = None

    @property
    def handler(self) -> DataHandlerLP:
        """The handler, built from its config on first use."""
        if self._handler is None:
            handler = init_instance_by_config(
                self.handler_config, "alphalab.data.handler", accept_types=DataHandlerLP
            )
            if not isinstance(handler, DataHandlerLP):
                raise ConfigError(f"handler must be a DataHandlerLP; got {handler!r}")
            self._handler = handler
        return self._handler

    def setup_data(self) -> None:
        """Check the segments, then load and process the handler's data."""
        for name, value in self.segments.items():
            _segment_bounds(name, value)
        self.handler.setup_data()

    def segment_bounds(self, segment: str) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        """The [start, end] of a named segment."""
        if segment not in self.segments:
            raise NotFoundError(
                f"The dataset has no segment {segment!r}; it has: {', '.join(self.segments)}"
            )
        return _segment_bounds(segment, self.segments[segment])

    def prepare_polars(
        self,
        segment: str,
        col_set: str | Sequence[str] | None = "__all",
        data_key: str = DataHandlerLP.DK_I,
    ) -> pl.DataFrame:
        """One segment as the internal Polars frame; an empty segment is an error."""
        start, end = self.segment_bounds(segment)
        frame = self.handler.fetch_polars(slice(start, end), "datetime", col_set, data_key)
        if frame.height == 0:
            raise self._empty(segment, data_key)
        return frame

    def prepare_chunks(
        self,
        segment: str,
        col_set: str | Sequence[str] | None = "__all",
        data_key: str = DataHandlerLP.DK_I,
        rows: int = 50_000,
    ) -> Iterator[pl.DataFrame]:
        """What :meth:`prepare_polars` returns, as consecutive runs of whole dates.

        Each piece holds about ``rows`` rows, so a model can stream a segment without holding
        a copy of it (a learning view is processed piece by piece as it is read).
        """
        start, end = self.segment_bounds(segment)
        keys = self.handler.fetch_polars(slice(start, end), "datetime", None, DataHandlerLP.DK_I)
        yielded = 0
        for low, high in date_runs(keys.get_column("datetime"), rows):
            frame = self.handler.fetch_polars(slice(low, high), "datetime", col_set, data_key)
            if frame.height:
                yielded += frame.height
                yield frame
        if not yielded:
            raise self._empty(segment, data_key)

    def _empty(self, segment: str, data_key: str) -> DataError:
        start, end = self.segment_bounds(segment)
        return DataError(
            f"Segment {segment!r} [{as_date_str(start)}, {as_date_str(end)}] has no rows "
            f"for data_key {data_key!r}; {self._coverage(data_key)}"
        )

    def _coverage(self, data_key: str) -> str:
        whole = self.handler.fetch_polars(slice(None, None), "datetime", None, data_key)
        if whole.height == 0:
            return "the handler has no data"
        first, last = whole["datetime"].min(), whole["datetime"].max()
        return f"the data covers {as_date_str(first)} to {as_date_str(last)}"

    def prepare(
        self,
        segments: str | Sequence[str] | slice,
        col_set: str | Sequence[str] | None = "__all",
        data_key: str = DataHandlerLP.DK_I,
        **kwargs: Any,
    ) -> Any:
        """Return the data of one segment (a frame) or several (a list of frames), as Qlib.

        Frames are indexed by (datetime, instrument) with column groups ``feature``/``label``
        (single-level columns when ``col_set`` names one group).
        """
        fetch_kwargs = {**self.fetch_kwargs, **kwargs}
        if isinstance(segments, slice):
            return self.handler.fetch(segments, "datetime", col_set, data_key, **fetch_kwargs)
        if isinstance(segments, str):
            frame = self.prepare_polars(segments, col_set, data_key)
            return frame_to_pandas(frame, col_set, **fetch_kwargs)
        return [self.prepare(s, col_set, data_key, **kwargs) for s in segments]


class TSDataSampler:
    """Sequences of the last ``step_len`` days per sample, gathered on demand.

    Samples are the rows of a segment ordered by (datetime, instrument). Sample ``i`` is a
    ``(step_len, n_columns)`` float32 array of that instrument's rows on the ``step_len``
    trading days up to the sample's date (calendar of the handler's data), NaN where the
    instrument has no row; nothing is materialised beyond one float32 matrix of the data.
    """

    def __init__(
        self, frame: pl.DataFrame, start: Any, end: Any, step_len: int, fillna_type: str = "none"
    ) -> None:
        if step_len < 1:
            raise ConfigError(f"step_len must be >= 1; got {step_len}")
        if fillna_type not in ("none", "ffill", "ffill+bfill"):
            raise ConfigError(
                f"fillna_type must be 'none', 'ffill' or 'ffill+bfill'; got {fillna_type!r}"
            )
        self.step_len = step_len
        self.fillna_type = fillna_type
        frame = frame.sort(["instrument", "datetime"])
        value_cols = [c for c in frame.columns if c not in KEYS]
        self.columns = [c.partition("/")[2] for c in value_cols]
        data = frame.select(value_cols).fill_null(float("nan")).to_numpy().astype(np.float32)
        # One all-NaN row at the end: missing window rows point there.
        self._data = np.vstack([data, np.full((1, data.shape[1]), np.nan, dtype=np.float32)])
        dates = frame["datetime"].unique().sort()
        codes = frame["instrument"].unique().sort()
        row_date = dates.search_sorted(frame["datetime"]).to_numpy()
        row_code = codes.search_sorted(frame["instrument"]).to_numpy()
        missing = len(data)
        self._grid = np.full((len(dates), len(codes)), missing, dtype=np.int64)
        self._grid[row_date, row_code] = np.arange(len(data))
        in_segment = frame.select(date_filter(start, end)).to_series().to_numpy()
        order = np.lexsort((row_code[in_segment], row_date[in_segment]))
        self._sample_date = row_date[in_segment][order]
        self._sample_code = row_code[in_segment][order]
        self._dates = dates
        self._codes = codes

    def __len__(self) -> int:
        return len(self._sample_date)

    def get_index(self) -> pd.MultiIndex:
        """The (datetime, instrument) of every sample, in sample order."""
        dates = pd.DatetimeIndex(self._dates.cast(pl.Datetime("ns")).to_numpy())
        codes = self._codes.to_numpy()
        return pd.MultiIndex.from_arrays(
            [dates[self._sample_date], codes[self._sample_code]], names=list(KEYS)
        )

    def __getitem__(self, idx: int | slice | Sequence[int] | np.ndarray) -> np.ndarray:
        """One sample ``(step_len, n_columns)`` or a batch ``(batch, step_len, n_columns)``."""
        single = isinstance(idx, int | np.integer)
        positions = np.arange(len(self))[idx] if isinstance(idx, slice) else np.atleast_1d(idx)
        offsets = np.arange(-self.step_len + 1, 1)
        days = self._sample_date[positions][:, None] + offsets[None, :]
        before_start = days < 0
        rows = self._grid[np.clip(days, 0, None), self._sample_code[positions][:, None]]
        rows[before_start] = len(self._data) - 1
        batch = self._data[rows]
        if self.fillna_type != "none":
            batch = _fill_along_time(batch, backward=self.fillna_type == "ffill+bfill")
        return batch[0] if single else batch


def _fill_along_time(batch: np.ndarray, backward: bool) -> np.ndarray:
    """Forward-fill (then optionally back-fill) NaN along axis 1 of a (B, T, C) array."""
    out = batch.copy()
    for t in range(1, out.shape[1]):
        gap = np.isnan(out[:, t])
        out[:, t][gap] = out[:, t - 1][gap]
    if backward:
        for t in range(out.shape[1] - 2, -1, -1):
            gap = np.isnan(out[:, t])
            out[:, t][gap] = out[:, t + 1][gap]
    return out


class TSDatasetH(DatasetH):
    """A dataset whose segments are sequences of ``step_len`` days for recurrent models."""

    def __init__(
        self,
        handler: Any,
        segments: Mapping[str, Any],
        fetch_kwargs: Mapping[str, Any] | None = None,
        step_len: int = 30,
    ) -> None:
        super().__init__(handler, segments, fetch_kwargs)
        self.step_len = step_len

    def prepare(  # type: ignore[override]
        self,
        segments: str | Sequence[str],
        col_set: str | Sequence[str] | None = "__all",
        data_key: str = DataHandlerLP.DK_I,
        fillna_type: str = "none",
        **kwargs: Any,
    ) -> TSDataSampler | list[TSDataSampler]:
        """Samplers of one or several segments; windows may reach before the segment start."""
        if not isinstance(segments, str):
            return [self._sampler(s, col_set, data_key, fillna_type) for s in segments]
        return self._sampler(segments, col_set, data_key, fillna_type)

    def _sampler(
        self, segment: str, col_set: Any, data_key: str, fillna_type: str
    ) -> TSDataSampler:
        start, end = self.segment_bounds(segment)
        self.prepare_polars(segment, col_set, data_key)  # raises on an empty segment
        whole = self.handler.fetch_polars(slice(None, end), "datetime", col_set, data_key)
        frame = whole.select([*KEYS, *select_columns(whole, col_set)])
        return TSDataSampler(frame, start, end, self.step_len, fillna_type)
