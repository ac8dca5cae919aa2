"""``alphalab rolling``: a rolling study (windows -> pool training -> merge -> analysis)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table


def rolling(
    workflow: Annotated[Path, typer.Argument(help="Workflow YAML (with an optional rolling:).")],
    step: Annotated[
        int | None, typer.Option("--step", min=1, help="Trading days per test window.")
    ] = None,
    rtype: Annotated[
        str | None, typer.Option("--rtype", help="expanding (default) or sliding.")
    ] = None,
    trunc_days: Annotated[
        int | None, typer.Option("--trunc-days", min=0, help="Gap before each test start.")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", "-w", min=0, help="Worker processes (0: train here)."),
    ] = None,
    pool: Annotated[str | None, typer.Option("--pool", help="Task pool name.")] = None,
    experiment: Annotated[
        str | None, typer.Option("--experiment", "-e", help="Experiment of the runs.")
    ] = None,
    uri: Annotated[str | None, typer.Option("--uri", help="Tracking URI.")] = None,
    task_uri: Annotated[str | None, typer.Option("--task-uri", help="Task store URI.")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a key: key.path=value.")
    ] = None,
) -> None:
    """Roll a workflow over its test period, train every window, merge and analyse them."""
    from alphalab.tasks import run_rolling
    from alphalab.workflow import parse_overrides

    summary = run_rolling(
        workflow,
        experiment_name=experiment,
        uri=uri,
        task_uri=task_uri,
        overrides=parse_overrides(set_ or []),
        step=step,
        rtype=rtype,
        trunc_days=trunc_days,
        workers=workers,
        pool=pool,
    )
    table = Table(title=f"{workflow}: rolling study", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("run id", summary.run_id)
    table.add_row("experiment", summary.experiment_name)
    table.add_row("task pool", summary.pool)
    table.add_row("windows", str(len(summary.window_run_ids)))
    first, last = summary.test_windows[0], summary.test_windows[-1]
    table.add_row("test period", f"{first[0]} .. {last[1]}")
    for metric, value in sorted(summary.metrics.items()):
        table.add_row(metric, f"{value:.4f}")
    Console(width=200).print(table)
