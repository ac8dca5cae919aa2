"""Processors: learnable or stateless transforms of feature frames, as Qlib's.

Each processor follows the estimator contract: keyword-only parameters stored as given,
``fit(frame)`` learns from the rows it is given (the handler passes only the fit window) and
returns ``self``, learned state ends in ``_``, and ``transform(frame)`` (or calling the
processor) returns a new frame. Frames are Polars frames with ``datetime``/``instrument`` keys
and ``group/name`` value columns; missing values are nulls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import polars as pl

from alphalab.data._columns import column, group_columns, split_column, value_columns
from alphalab.data._time import date_filter
from alphalab.exceptions import ConfigError, DataError

#: Qlib's scale that maps a uniform rank to roughly unit standard deviation.
_RANK_SCALE = 3.46
#: Median absolute deviation to standard deviation for normal data.
_MAD_TO_STD = 1.4826


class Processor:
    """Base class: stateless by default; subclasses that learn override :meth:`fit`."""

    #: Whether the processor may run on inference data (labels-only processors may not).
    for_infer: bool = True
    #: Whether the output rows of a date depend only on the input rows of that date. A
    #: handler may then process one date range at a time instead of keeping a processed copy
    #: of all its data. Every built-in processor is; the safe default for others is False.
    date_local: bool = False

    def fit(self, frame: pl.DataFrame) -> Processor:
        """Learn state from ``frame`` (the fit window); stateless processors learn nothing."""
        return self

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Return the processed frame."""
        raise NotImplementedError

    def __call__(self, frame: pl.DataFrame) -> pl.DataFrame:
        return self.transform(frame)

    def is_for_infer(self) -> bool:
        """Qlib's name for :attr:`for_infer`."""
        return self.for_infer

    def readonly(self) -> bool:
        """Processors here never mutate their input (Qlib's copy-avoidance hint)."""
        return True

    def get_params(self) -> dict[str, Any]:
        """Construction parameters, for logging and for rebuilding the processor."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


def _require_fitted(proc: Processor, attr: str) -> Any:
    value = getattr(proc, attr, None)
    if value is None:
        raise DataError(f"{type(proc).__name__} must be fitted before it transforms data")
    return value


class DropnaFeature(Processor):
    """Drop rows with any missing value in ``fields_group`` (default: the features)."""

    date_local = True

    def __init__(self, *, fields_group: str = "feature") -> None:
        self.fields_group = fields_group

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        cols = group_columns(frame, self.fields_group)
        if not cols:
            return frame
        return frame.filter(pl.all_horizontal([pl.col(c).is_not_null() for c in cols]))


class DropnaLabel(DropnaFeature):
    """Drop rows whose label is missing; learning data only (never at inference)."""

    for_infer = False

    def __init__(self, *, fields_group: str = "label") -> None:
        super().__init__(fields_group=fields_group)


class Fillna(Processor):
    """Replace missing values (and NaN) of a group by ``fill_value``."""

    date_local = True

    def __init__(self, *, fields_group: str | None = None, fill_value: float = 0.0) -> None:
        self.fields_group = fields_group
        self.fill_value = fill_value

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        cols = group_columns(frame, self.fields_group)
        return frame.with_columns(pl.col(c).fill_nan(None).fill_null(self.fill_value) for c in cols)


class ProcessInf(Processor):
    """Replace +-inf by the mean of the finite values of that column on the same date."""

    date_local = True

    def __init__(self, *, fields_group: str | None = None) -> None:
        self.fields_group = fields_group

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        exprs = []
        for c in group_columns(frame, self.fields_group):
            x = pl.col(c)
            finite_mean = pl.when(x.is_finite()).then(x).otherwise(None).mean().over("datetime")
            exprs.append(pl.when(x.is_infinite()).then(finite_mean).otherwise(x).alias(c))
        return frame.with_columns(exprs)


class CSZScoreNorm(Processor):
    """Per-date z-score: ``(x - mean) / std`` (``method="robust"``: median and MAD)."""

    date_local = True

    def __init__(self, *, fields_group: str | None = None, method: str = "zscore") -> None:
        self.fields_group = fields_group
        self.method = method

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        if self.method not in ("zscore", "robust"):
            raise ConfigError(
                f"CSZScoreNorm method must be 'zscore' or 'robust'; got {self.method!r}"
            )
        exprs = []
        for c in group_columns(frame, self.fields_group):
            x = pl.col(c)
            if self.method == "zscore":
                centre = x.mean().over("datetime")
                scale = x.std().over("datetime")
            else:
                centre = x.median().over("datetime")
                scale = (x - centre).abs().median().over("datetime") * _MAD_TO_STD
            exprs.append(((x - centre) / scale).alias(c))
        return frame.with_columns(exprs)


class CSRankNorm(Processor):
    """Per-date percentile rank, centred and scaled: ``(rank_pct - 0.5) * 3.46``."""

    date_local = True

    def __init__(self, *, fields_group: str | None = None) -> None:
        self.fields_group = fields_group

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        exprs = []
        for c in group_columns(frame, self.fields_group):
            x = pl.col(c)
            pct = x.rank("average").over("datetime") / x.count().over("datetime")
            exprs.append(((pct - 0.5) * _RANK_SCALE).alias(c))
        return frame.with_columns(exprs)


class _FittedNorm(Processor):
    """Shared parts of the processors that learn per-column statistics from the fit window.

    ``fit_start_time``/``fit_end_time`` are accepted for Qlib YAML compatibility; when given
    they narrow the rows this processor learns from, inside what the handler passes.
    """

    date_local = True

    def __init__(
        self,
        *,
        fields_group: str | None = None,
        fit_start_time: Any = None,
        fit_end_time: Any = None,
    ) -> None:
        self.fields_group = fields_group
        self.fit_start_time = fit_start_time
        self.fit_end_time = fit_end_time

    def _fit_rows(self, frame: pl.DataFrame) -> pl.DataFrame:
        rows = frame.filter(date_filter(self.fit_start_time, self.fit_end_time))
        if rows.height == 0:
            raise DataError(
                f"{type(self).__name__} has no rows to fit on in the fit window "
                f"[{self.fit_start_time}, {self.fit_end_time}]"
            )
        return rows


class ZScoreNorm(_FittedNorm):
    """``(x - mean) / std`` with per-column mean and std (ddof=0) of the fit window.

    Columns whose fit-window std is 0 or undefined are left unchanged, as Qlib does.
    """

    def fit(self, frame: pl.DataFrame) -> ZScoreNorm:
        rows = self._fit_rows(frame)
        cols = group_columns(rows, self.fields_group)
        stats = rows.select(
            [pl.col(c).mean().alias(f"m{i}") for i, c in enumerate(cols)]
            + [pl.col(c).std(ddof=0).alias(f"s{i}") for i, c in enumerate(cols)]
        ).row(0)
        n = len(cols)
        self.mean_ = dict(zip(cols, stats[:n], strict=True))
        self.std_ = dict(zip(cols, stats[n:], strict=True))
        return self

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        mean, std = _require_fitted(self, "mean_"), self.std_
        exprs = [
            ((pl.col(c) - mean[c]) / std[c]).alias(c)
            for c in value_columns(frame)
            if c in mean and std[c] is not None and std[c] > 0 and mean[c] is not None
        ]
        return frame.with_columns(exprs)


class RobustZScoreNorm(_FittedNorm):
    """``(x - median) / (1.4826 * MAD)`` learned on the fit window, clipped to [-3, 3]."""

    def __init__(
        self,
        *,
        fields_group: str | None = None,
        fit_start_time: Any = None,
        fit_end_time: Any = None,
        clip_outlier: bool = True,
    ) -> None:
        super().__init__(
            fields_group=fields_group, fit_start_time=fit_start_time, fit_end_time=fit_end_time
        )
        self.clip_outlier = clip_outlier

    def fit(self, frame: pl.DataFrame) -> RobustZScoreNorm:
        rows = self._fit_rows(frame)
        cols = group_columns(rows, self.fields_group)
        medians = rows.select(pl.col(c).median() for c in cols).row(0)
        mads = rows.select(
            (pl.col(c) - med).abs().median() for c, med in zip(cols, medians, strict=True)
        ).row(0)
        self.median_ = dict(zip(cols, medians, strict=True))
        self.scale_ = {
            c: (mad if mad is not None else math.nan) * _MAD_TO_STD + 1e-12
            for c, mad in zip(cols, mads, strict=True)
        }
        return self

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        median, scale = _require_fitted(self, "median_"), self.scale_
        exprs = []
        for c in value_columns(frame):
            if c not in median or median[c] is None:
                continue
            x = (pl.col(c) - median[c]) / scale[c]
            exprs.append((x.clip(-3.0, 3.0) if self.clip_outlier else x).alias(c))
        return frame.with_columns(exprs)


class MinMaxNorm(_FittedNorm):
    """``(x - min) / (max - min)`` learned on the fit window; constant columns unchanged."""

    def fit(self, frame: pl.DataFrame) -> MinMaxNorm:
        rows = self._fit_rows(frame)
        cols = group_columns(rows, self.fields_group)
        lows = rows.select(pl.col(c).min() for c in cols).row(0)
        highs = rows.select(pl.col(c).max() for c in cols).row(0)
        self.min_ = dict(zip(cols, lows, strict=True))
        self.max_ = dict(zip(cols, highs, strict=True))
        return self

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        low, high = _require_fitted(self, "min_"), self.max_
        exprs = [
            ((pl.col(c) - low[c]) / (high[c] - low[c])).alias(c)
            for c in value_columns(frame)
            if c in low and low[c] is not None and high[c] is not None and high[c] > low[c]
        ]
        return frame.with_columns(exprs)


class FilterCol(Processor):
    """Keep only ``col_list`` among the columns of ``fields_group`` (others groups untouched)."""

    date_local = True

    def __init__(self, *, fields_group: str = "feature", col_list: Sequence[str] = ()) -> None:
        self.fields_group = fields_group
        self.col_list = list(col_list)

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        present = {split_column(c)[1] for c in group_columns(frame, self.fields_group)}
        unknown = [name for name in self.col_list if name not in present]
        if unknown:
            raise ConfigError(
                f"FilterCol: column(s) {unknown} are not in group {self.fields_group!r}"
            )
        keep = {column(self.fields_group, name) for name in self.col_list}
        drop = [c for c in group_columns(frame, self.fields_group) if c not in keep]
        return frame.drop(drop)


class TanhProcess(Processor):
    """Denoise features with ``tanh(x - 1)``, as Qlib's; label columns are left alone."""

    date_local = True

    def __init__(self, *, fields_group: str = "feature") -> None:
        self.fields_group = fields_group

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(
            (pl.col(c) - 1.0).tanh().alias(c) for c in group_columns(frame, self.fields_group)
        )
