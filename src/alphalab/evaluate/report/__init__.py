"""Charts (PNG, matplotlib Agg) and a self-contained HTML report of a backtest and a signal."""

from __future__ import annotations

from alphalab.evaluate.report._html import ReportFiles, render_html_report, write_report
from alphalab.evaluate.report._plots import (
    figure_to_png,
    plot_cumulative_return,
    plot_drawdown,
    plot_ic,
    plot_turnover,
    save_png,
)

__all__ = [
    "ReportFiles",
    "figure_to_png",
    "plot_cumulative_return",
    "plot_drawdown",
    "plot_ic",
    "plot_turnover",
    "render_html_report",
    "save_png",
    "write_report",
]
