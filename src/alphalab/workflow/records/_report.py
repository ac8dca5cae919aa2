"""The HTML report of a run, from its recorded analysis artifacts."""

from __future__ import annotations

from pathlib import Path

from alphalab.evaluate import BacktestResult, SignalAnalysis, signal_metrics
from alphalab.evaluate.report import ReportFiles, write_report
from alphalab.exceptions import NotFoundError
from alphalab.tracking import Recorder

BACKTEST_ARTIFACT = "portfolio_analysis/backtest.pkl"
IC_ARTIFACT = "sig_analysis/ic.pkl"
RIC_ARTIFACT = "sig_analysis/ric.pkl"


def _has(recorder: Recorder, path: str) -> bool:
    folder = path.rpartition("/")[0] or None
    return path in recorder.list_artifacts(folder)


def write_run_report(
    recorder: Recorder, folder: Path, *, backtest: BacktestResult | None = None
) -> ReportFiles:
    """Write the run's report (charts + HTML) into ``folder`` and log it under ``report/``.

    Uses the backtest (``PortAnaRecord``) and the signal analysis (``SigAnaRecord``) the run
    has; ``backtest`` may be passed when it is at hand.

    Raises:
        NotFoundError: when the run has neither.
    """
    if backtest is None and _has(recorder, BACKTEST_ARTIFACT):
        backtest = recorder.load_object(BACKTEST_ARTIFACT)
    signal = None
    if _has(recorder, IC_ARTIFACT) and _has(recorder, RIC_ARTIFACT):
        ic, ric = recorder.load_object(IC_ARTIFACT), recorder.load_object(RIC_ARTIFACT)
        signal = SignalAnalysis(ic, ric, metrics=signal_metrics(ic, ric))
    if backtest is None and signal is None:
        raise NotFoundError(
            f"Run {recorder.id} has no backtest and no signal analysis to report; "
            "its workflow needs SigAnaRecord and/or PortAnaRecord"
        )
    files = write_report(
        folder, backtest=backtest, signal=signal, title=f"alphalab run {recorder.id}"
    )
    for path in [files.html, *files.images.values()]:
        recorder.log_artifact(path, "report")
    return files
