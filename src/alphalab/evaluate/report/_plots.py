"""Charts of a backtest report and of a signal's IC, drawn with matplotlib's Agg canvas.

The figures are built with ``matplotlib.figure.Figure`` directly (no pyplot), so they never
touch the interactive backend of the caller and work on machines without a display.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from alphalab.exceptions import DataError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_SIZE = (10.0, 4.0)
_DPI = 100


def _figure() -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=_SIZE, dpi=_DPI)
    FigureCanvasAgg(fig)
    # Fixed margins that fit these charts' labels: a layout engine costs more than drawing.
    fig.subplots_adjust(left=0.085, right=0.965, top=0.91, bottom=0.1)
    return fig


def _need(report: pd.DataFrame, columns: tuple[str, ...], chart: str) -> None:
    missing = [c for c in columns if c not in report.columns]
    if missing:
        raise DataError(f"The {chart} chart needs the report column(s) {missing}")
    if report.empty:
        raise DataError(f"The {chart} chart needs a non-empty report")


def plot_cumulative_return(report: pd.DataFrame) -> Figure:
    """Cumulative return of the portfolio, the benchmark and the excess return.

    Returns are accumulated by summation, as Qlib does; the excess return is shown with and
    without cost.
    """
    _need(report, ("return", "bench", "cost"), "cumulative return")
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(report.index, (report["return"] - report["cost"]).cumsum(), label="portfolio (net)")
    ax.plot(report.index, report["bench"].cumsum(), label="benchmark")
    excess = report["return"] - report["bench"]
    ax.plot(report.index, excess.cumsum(), label="excess without cost", linestyle="--")
    ax.plot(report.index, (excess - report["cost"]).cumsum(), label="excess with cost")
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_title("Cumulative return")
    ax.set_ylabel("cumulative return (sum)")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return fig


def plot_drawdown(report: pd.DataFrame) -> Figure:
    """Drawdown of the cumulative (summed) net portfolio return and of the excess return."""
    _need(report, ("return", "bench", "cost"), "drawdown")
    fig = _figure()
    ax = fig.add_subplot()
    net = (report["return"] - report["cost"]).cumsum()
    excess = (report["return"] - report["bench"] - report["cost"]).cumsum()
    ax.fill_between(
        report.index,
        excess - excess.cummax(),
        0.0,
        alpha=0.35,
        color="#d62728",
        label="excess with cost",
    )
    ax.plot(report.index, net - net.cummax(), color="#1f77b4", label="portfolio (net)")
    ax.set_title("Drawdown")
    ax.set_ylabel("drawdown (sum of returns)")
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3)
    return fig


def plot_ic(ic: pd.Series, ric: pd.Series | None = None, window: int = 20) -> Figure:
    """Daily IC as bars with its rolling mean (and the rolling Rank IC when given)."""
    if ic.dropna().empty:
        raise DataError("The IC chart needs at least one defined IC value")
    fig = _figure()
    ax = fig.add_subplot()
    dates = pd.DatetimeIndex(ic.index)
    # One line per day in a single collection: hundreds of bar patches draw 10x slower.
    ax.vlines(dates, 0.0, ic.to_numpy(), color="#9ecae1", linewidth=1.0, label="daily IC")
    periods = max(1, min(window, len(ic)))
    ax.plot(
        dates,
        ic.rolling(periods, min_periods=1).mean(),
        color="#08519c",
        label=f"IC {periods}-day mean",
    )
    if ric is not None:
        ax.plot(
            pd.DatetimeIndex(ric.index),
            ric.rolling(periods, min_periods=1).mean(),
            color="#d94801",
            label=f"Rank IC {periods}-day mean",
        )
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_title(f"Daily IC (mean {ic.mean():.4f})")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return fig


def plot_turnover(report: pd.DataFrame) -> Figure:
    """Daily turnover (traded value / previous account) and its 20-day mean."""
    _need(report, ("turnover",), "turnover")
    fig = _figure()
    ax = fig.add_subplot()
    ax.vlines(
        report.index,
        0.0,
        report["turnover"].to_numpy(),
        color="#a1d99b",
        linewidth=1.0,
        label="daily turnover",
    )
    ax.plot(
        report.index,
        report["turnover"].rolling(20, min_periods=1).mean(),
        color="#006d2c",
        label="20-day mean",
    )
    ax.set_title("Turnover")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return fig


def figure_to_png(fig: Figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write the figure as a PNG file and return its path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(figure_to_png(fig))
    return target
