"""A self-contained HTML report: charts embedded as base64 PNG, tables of the analyses."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from alphalab.evaluate.report._plots import (
    figure_to_png,
    plot_cumulative_return,
    plot_drawdown,
    plot_ic,
    plot_turnover,
)
from alphalab.exceptions import DataError

if TYPE_CHECKING:
    from alphalab.evaluate._backtest import BacktestResult
    from alphalab.evaluate._signal import SignalAnalysis

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em;
       color: #222; max-width: 1100px; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.7em; text-align: right; }
th { background: #f3f3f3; }
img { max-width: 100%; height: auto; display: block; margin: 0.6em 0; }
.meta { color: #666; font-size: 0.9em; }
"""


@dataclass(frozen=True)
class ReportFiles:
    """Where :func:`write_report` wrote the report: the HTML page and the PNG charts by name."""

    html: Path
    images: Mapping[str, Path] = field(default_factory=dict)


def _charts(backtest: BacktestResult | None, signal: SignalAnalysis | None) -> dict[str, bytes]:
    charts: dict[str, bytes] = {}
    if backtest is not None:
        report = backtest.report
        charts["cumulative_return"] = figure_to_png(plot_cumulative_return(report))
        charts["drawdown"] = figure_to_png(plot_drawdown(report))
        charts["turnover"] = figure_to_png(plot_turnover(report))
    if signal is not None and signal.ic.notna().any():
        charts["ic"] = figure_to_png(plot_ic(signal.ic, signal.ric))
    return charts


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(float_format=lambda v: f"{v:.6f}", border=0, na_rep="NaN")


def _page(
    title: str,
    charts: Mapping[str, bytes],
    backtest: BacktestResult | None,
    signal: SignalAnalysis | None,
) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    captions = {
        "cumulative_return": "Cumulative return vs benchmark, and excess return",
        "drawdown": "Drawdown",
        "ic": "Daily IC with rolling mean",
        "turnover": "Turnover",
    }
    if backtest is not None:
        report = backtest.report
        first, last = report.index[0], report.index[-1]
        parts.append(
            f'<p class="meta">Backtest {pd.Timestamp(first).date()} to '
            f"{pd.Timestamp(last).date()}, {len(report)} trading days; final account "
            f"{report['account'].iloc[-1]:,.2f}</p>"
        )
        parts.append("<h2>Risk analysis (excess return)</h2>")
        analysis = backtest.port_analysis()["risk"].unstack(level=0)
        parts.append(_table(analysis))
        parts.append("<h2>Trade indicators</h2>")
        parts.append(_table(backtest.indicator_analysis()))
    holdings: list[str] = []
    if backtest is not None:
        positions = backtest.positions
        if len(positions):
            last_day = positions.index.get_level_values(0).max()
            final = positions.xs(last_day, level=0).sort_values("weight", ascending=False)
            holdings.append(
                f"<h2>Holdings on {pd.Timestamp(last_day).date()} "
                f"(top {min(20, len(final))} of {len(final)} by weight)</h2>"
            )
            holdings.append(_table(final.head(20)))
    if signal is not None:
        parts.append("<h2>Signal analysis</h2>")
        metrics = pd.Series(dict(signal.metrics), dtype="float64").to_frame("value")
        parts.append(_table(metrics))
    for name, png in charts.items():
        encoded = base64.b64encode(png).decode("ascii")
        caption = html.escape(captions.get(name, name))
        parts.append(f"<h2>{caption}</h2>")
        parts.append(f'<img alt="{caption}" src="data:image/png;base64,{encoded}">')
    parts.extend(holdings)
    parts.append("</body></html>")
    return "\n".join(parts)


def render_html_report(
    *,
    backtest: BacktestResult | None = None,
    signal: SignalAnalysis | None = None,
    title: str = "alphalab report",
) -> str:
    """The report as one HTML page that needs no other file (charts are embedded).

    Args:
        backtest: A backtest result: risk analysis and indicator tables, cumulative return,
            drawdown and turnover charts.
        signal: A signal analysis: the metrics table and the IC chart.
        title: Page title.

    Raises:
        DataError: Neither a backtest nor a signal analysis is given.
    """
    if backtest is None and signal is None:
        raise DataError("An HTML report needs a backtest result, a signal analysis, or both")
    return _page(title, _charts(backtest, signal), backtest, signal)


def write_report(
    folder: str | Path,
    *,
    backtest: BacktestResult | None = None,
    signal: SignalAnalysis | None = None,
    title: str = "alphalab report",
) -> ReportFiles:
    """Write ``report.html`` and one PNG per chart into ``folder`` (created if needed).

    Returns:
        The paths written.

    Raises:
        DataError: Neither a backtest nor a signal analysis is given.
    """
    if backtest is None and signal is None:
        raise DataError("A report needs a backtest result, a signal analysis, or both")
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    charts = _charts(backtest, signal)
    images: dict[str, Path] = {}
    for name, png in charts.items():
        path = target / f"{name}.png"
        path.write_bytes(png)
        images[name] = path
    page = target / "report.html"
    page.write_text(_page(title, charts, backtest, signal), encoding="utf-8")
    return ReportFiles(html=page, images=images)
