"""``alphalab report RUN_ID``: regenerate a run's HTML report and optionally open it."""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from alphalab.cli._console import console
from alphalab.config import RUNS_DIR_NAME
from alphalab.tracking import R
from alphalab.workflow import write_run_report


def report(
    run_id: Annotated[str, typer.Argument(help="The run (recorder) id.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Folder for the report files.")
    ] = None,
    open_: Annotated[bool, typer.Option("--open", help="Open the report in a browser.")] = False,
    uri: Annotated[str | None, typer.Option("--uri", help="Tracking URI.")] = None,
) -> None:
    """Rebuild a run's report (returns, drawdown, IC, turnover) from its recorded analysis."""
    if uri is not None:
        R.set_uri(uri)
    recorder = R.get_recorder(recorder_id=run_id)
    folder = output or Path.cwd() / RUNS_DIR_NAME / "reports" / recorder.id
    files = write_run_report(recorder, folder)
    console.print(f"Report written to {files.html} and logged to the run under report/")
    if open_:
        webbrowser.open(files.html.resolve().as_uri())
