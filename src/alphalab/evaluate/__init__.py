"""Evaluation: signal analysis, the TopkDropout backtest, risk analysis, plots and reports."""

from __future__ import annotations

from alphalab.evaluate._backtest import (
    INDICATOR_COLUMNS,
    REPORT_COLUMNS,
    BacktestResult,
    backtest,
)
from alphalab.evaluate._market import ExchangeConfig, MarketData
from alphalab.evaluate._risk import (
    RISK_METRICS,
    annualization_scaler,
    indicator_analysis,
    parse_freq,
    risk_analysis,
)
from alphalab.evaluate._signal import (
    LONG_SHORT_METRICS,
    SIGNAL_METRICS,
    SignalAnalysis,
    calc_ic,
    calc_long_short_return,
    signal_analysis,
    signal_metrics,
)
from alphalab.evaluate.report import (
    ReportFiles,
    plot_cumulative_return,
    plot_drawdown,
    plot_ic,
    plot_turnover,
    render_html_report,
    write_report,
)
from alphalab.evaluate.strategy import TopkDropoutStrategy

__all__ = [
    "INDICATOR_COLUMNS",
    "LONG_SHORT_METRICS",
    "REPORT_COLUMNS",
    "RISK_METRICS",
    "SIGNAL_METRICS",
    "BacktestResult",
    "ExchangeConfig",
    "MarketData",
    "ReportFiles",
    "SignalAnalysis",
    "TopkDropoutStrategy",
    "annualization_scaler",
    "backtest",
    "calc_ic",
    "calc_long_short_return",
    "indicator_analysis",
    "parse_freq",
    "plot_cumulative_return",
    "plot_drawdown",
    "plot_ic",
    "plot_turnover",
    "render_html_report",
    "risk_analysis",
    "signal_analysis",
    "signal_metrics",
    "write_report",
]
