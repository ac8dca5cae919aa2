"""Signal analysis: IC and Rank IC per date, long-short returns, and their summary metrics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from alphalab.exceptions import DataError

SIGNAL_METRICS = ("IC", "ICIR", "Rank IC", "Rank ICIR")
LONG_SHORT_METRICS = (
    "Long-Short Ann Return",
    "Long-Short Ann Sharpe",
    "Long-Avg Ann Return",
    "Long-Avg Ann Sharpe",
)


def _as_series(values: pd.Series | pd.DataFrame, what: str) -> pd.Series:
    """Return the first column of a frame, or the series itself, checking the index."""
    if isinstance(values, pd.DataFrame):
        if values.shape[1] == 0:
            raise DataError(f"The {what} frame has no column")
        values = values.iloc[:, 0]
    if not isinstance(values, pd.Series):
        raise DataError(
            f"The {what} must be a pandas Series or DataFrame indexed by (datetime, instrument); "
            f"got {type(values).__name__}"
        )
    if not isinstance(values.index, pd.MultiIndex) or values.index.nlevels != 2:
        raise DataError(
            f"The {what} must be indexed by a 2-level MultiIndex (datetime, instrument); "
            f"got an index with {values.index.nlevels} level(s)"
        )
    return values


def _date_level(index: pd.MultiIndex, date_col: str) -> int:
    if date_col in index.names:
        return index.names.index(date_col)
    for i, level in enumerate(index.levels):
        if isinstance(level, pd.DatetimeIndex):
            return i
    raise DataError(
        f"Cannot find the date level {date_col!r} in the index levels {list(index.names)}"
    )


def _aligned(
    pred: pd.Series | pd.DataFrame, label: pd.Series | pd.DataFrame, date_col: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.Index]:
    """Return (date codes, pred, label, unique dates) over the rows of ``pred`` and ``label``."""
    p = _as_series(pred, "prediction")
    lab = _as_series(label, "label")
    frame = pd.DataFrame({"pred": p, "label": lab})
    if not isinstance(frame.index, pd.MultiIndex):
        raise DataError("The prediction and label indexes cannot be aligned")
    level = _date_level(frame.index, date_col)
    codes, dates = pd.factorize(frame.index.get_level_values(level), sort=True)
    return (
        codes,
        frame["pred"].to_numpy(dtype="float64"),
        frame["label"].to_numpy(dtype="float64"),
        pd.Index(dates, name=date_col),
    )


def _grouped_pearson(codes: np.ndarray, x: np.ndarray, y: np.ndarray, n_groups: int) -> np.ndarray:
    """Pearson correlation of x and y within each group; NaN where undefined."""
    n = np.bincount(codes, minlength=n_groups).astype("float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = np.bincount(codes, weights=x, minlength=n_groups) / n
        my = np.bincount(codes, weights=y, minlength=n_groups) / n
        dx = x - mx[codes]
        dy = y - my[codes]
        sxy = np.bincount(codes, weights=dx * dy, minlength=n_groups)
        sxx = np.bincount(codes, weights=dx * dx, minlength=n_groups)
        syy = np.bincount(codes, weights=dy * dy, minlength=n_groups)
        corr = sxy / np.sqrt(sxx * syy)
    # A constant column within a date has no defined correlation (tiny variances are noise).
    scale_x = np.bincount(codes, weights=np.abs(x), minlength=n_groups)
    scale_y = np.bincount(codes, weights=np.abs(y), minlength=n_groups)
    tiny = (sxx <= (1e-14 * scale_x) ** 2) | (syy <= (1e-14 * scale_y) ** 2)
    corr[(n < 2) | tiny] = np.nan
    return np.clip(corr, -1.0, 1.0)


def calc_ic(
    pred: pd.Series | pd.DataFrame,
    label: pd.Series | pd.DataFrame,
    date_col: str = "datetime",
    dropna: bool = False,
) -> tuple[pd.Series, pd.Series]:
    """Information coefficient per date: Pearson (IC) and Spearman (Rank IC) of pred and label.

    Rows where either value is missing are left out of that date's correlation (as pandas'
    ``Series.corr`` does). A date with fewer than two complete rows, or with a constant
    prediction or label, gets NaN.

    Args:
        pred: Scores indexed by (datetime, instrument); a DataFrame's first column is used.
        label: Labels with the same kind of index; a DataFrame's first column is used.
        date_col: Name of the date level.
        dropna: Drop the dates whose correlation is NaN.

    Returns:
        ``(ic, ric)``: two Series indexed by date.
    """
    codes, x, y, dates = _aligned(pred, label, date_col)
    valid = np.isfinite(x) & np.isfinite(y)
    codes, x, y = codes[valid], x[valid], y[valid]
    n_groups = len(dates)
    ic = _grouped_pearson(codes, x, y, n_groups)
    ranks = pd.DataFrame({"d": codes, "x": x, "y": y}).groupby("d")[["x", "y"]].rank()
    ric = _grouped_pearson(codes, ranks["x"].to_numpy(), ranks["y"].to_numpy(), n_groups)
    ic_s = pd.Series(ic, index=dates, dtype="float64")
    ric_s = pd.Series(ric, index=dates, dtype="float64")
    if dropna:
        return ic_s.dropna(), ric_s.dropna()
    return ic_s, ric_s


def calc_long_short_return(
    pred: pd.Series | pd.DataFrame,
    label: pd.Series | pd.DataFrame,
    date_col: str = "datetime",
    quantile: float = 0.2,
    dropna: bool = False,
) -> tuple[pd.Series, pd.Series]:
    """Long-short and long-average returns per date.

    On each date with ``n`` rows, ``k = int(n * quantile)``; long-short is (mean label of the
    ``k`` highest scores − mean label of the ``k`` lowest scores) / 2, and long-average is the
    mean label of the date. Rows without a score are never in the top or bottom group but count
    in ``n`` (unless ``dropna``); missing labels are skipped in the means. Ties in the score are
    broken by row order.

    Args:
        pred: Scores indexed by (datetime, instrument).
        label: Raw returns with the same kind of index.
        date_col: Name of the date level.
        quantile: Fraction of each date taken long and short.
        dropna: Drop rows where the score or label is missing before anything else.

    Returns:
        ``(long_short_r, long_avg_r)``: two Series indexed by date.
    """
    if not 0 < quantile <= 0.5:
        raise DataError(f"quantile must be in (0, 0.5]; got {quantile}")
    codes, x, y, dates = _aligned(pred, label, date_col)
    if dropna:
        keep = np.isfinite(x) & np.isfinite(y)
        codes, x, y = codes[keep], x[keep], y[keep]
    n_groups = len(dates)
    n = np.bincount(codes, minlength=n_groups)
    k = (n * quantile).astype("int64")
    has_score = np.isfinite(x)
    order_idx = np.arange(len(x))

    def side_mean(descending: bool) -> np.ndarray:
        key = np.where(has_score, -x if descending else x, np.inf)
        order = np.lexsort((order_idx, key, codes))  # by date, then score, then row order
        sorted_codes = codes[order]
        starts = np.searchsorted(sorted_codes, np.arange(n_groups))
        rank = np.arange(len(order)) - starts[sorted_codes]
        chosen = order[(rank < k[sorted_codes]) & has_score[order]]
        values = y[chosen]
        ok = np.isfinite(values)
        sums = np.bincount(codes[chosen][ok], weights=values[ok], minlength=n_groups)
        counts = np.bincount(codes[chosen][ok], minlength=n_groups)
        with np.errstate(invalid="ignore", divide="ignore"):
            return sums / counts

    long_mean = side_mean(descending=True)
    short_mean = side_mean(descending=False)
    ok = np.isfinite(y)
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = np.bincount(codes[ok], weights=y[ok], minlength=n_groups) / np.bincount(
            codes[ok], minlength=n_groups
        )
    long_short = pd.Series((long_mean - short_mean) / 2.0, index=dates, dtype="float64")
    return long_short, pd.Series(avg, index=dates, dtype="float64")


def _mean_over_std(series: pd.Series) -> float:
    std = float(series.std())
    return float(series.mean()) / std if std > 0 else float("nan")


def signal_metrics(
    ic: pd.Series,
    ric: pd.Series,
    long_short_r: pd.Series | None = None,
    long_avg_r: pd.Series | None = None,
    ann_scaler: float = 252,
) -> dict[str, float]:
    """The SigAnaRecord metrics under their Qlib names.

    ``IC`` = mean of ``ic``, ``ICIR`` = mean / sample std (not annualised), the same on ``ric``
    for ``Rank IC`` / ``Rank ICIR``; with long-short series also ``Long-Short Ann Return`` =
    mean x ``ann_scaler``, ``Long-Short Ann Sharpe`` = mean / std x sqrt(``ann_scaler``) and the
    same two for long-average.
    """
    metrics = {
        "IC": float(ic.mean()),
        "ICIR": _mean_over_std(ic),
        "Rank IC": float(ric.mean()),
        "Rank ICIR": _mean_over_std(ric),
    }
    scale = float(np.sqrt(ann_scaler))
    for name, series in (("Long-Short", long_short_r), ("Long-Avg", long_avg_r)):
        if series is not None:
            metrics[f"{name} Ann Return"] = float(series.mean()) * ann_scaler
            metrics[f"{name} Ann Sharpe"] = _mean_over_std(series) * scale
    return metrics


@dataclass(frozen=True)
class SignalAnalysis:
    """The result of :func:`signal_analysis`: per-date series and the summary metrics."""

    ic: pd.Series
    ric: pd.Series
    long_short_r: pd.Series | None = None
    long_avg_r: pd.Series | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)


def signal_analysis(
    pred: pd.Series | pd.DataFrame,
    label: pd.Series | pd.DataFrame,
    *,
    ana_long_short: bool = False,
    ann_scaler: float = 252,
    date_col: str = "datetime",
) -> SignalAnalysis:
    """Everything SigAnaRecord records: IC, Rank IC, optionally long-short, and the metrics."""
    ic, ric = calc_ic(pred, label, date_col=date_col)
    long_short_r = long_avg_r = None
    if ana_long_short:
        long_short_r, long_avg_r = calc_long_short_return(pred, label, date_col=date_col)
    metrics = signal_metrics(ic, ric, long_short_r, long_avg_r, ann_scaler=ann_scaler)
    return SignalAnalysis(ic, ric, long_short_r, long_avg_r, metrics)
