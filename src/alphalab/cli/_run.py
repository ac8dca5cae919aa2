"""``alphalab run``: run workflow files end to end and summarise the runs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from alphalab.cli._console import console, short_name
from alphalab.config import RUNS_DIR_NAME
from alphalab.exceptions import NotFoundError
from alphalab.tracking import R, Recorder
from alphalab.workflow import RunSummary, compare_metrics, parse_overrides, run_workflow


def print_summary(summary: RunSummary) -> None:
    """Print one run's summary: identity, metrics, phase timings and where to look."""
    table = Table(title=f"{summary.workflow}: {summary.status}", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("run id", summary.run_id)
    table.add_row("run name", summary.run_name)
    table.add_row("experiment", summary.experiment_name)
    for metric, value in summary.metrics.items():
        table.add_row(short_name(metric), f"{value:.4f}")
    for phase, seconds in summary.phases.items():
        table.add_row(f"time: {phase}", f"{seconds:.1f}s")
    if summary.children:
        table.add_row("seeds", ", ".join(c.run_id[:8] for c in summary.children))
    if summary.report:
        table.add_row("report", summary.report)
    table.add_row("artifacts", summary.artifact_uri)
    console.print(table)


def comparison_table(rows: dict[str, pd.DataFrame], title: str) -> Table:
    """A table of ``mean ± std`` per summary metric (rows) and workflow or run (columns)."""
    table = Table(title=title)
    table.add_column("metric")
    for name in rows:
        table.add_column(name, justify="right", overflow="fold")
    for metric in next(iter(rows.values())).index:
        cells = []
        for stats in rows.values():
            mean, std = stats.loc[metric, "mean"], stats.loc[metric, "std"]
            if pd.isna(mean):
                cells.append("-")
            elif pd.isna(std):
                cells.append(f"{mean:.4f}")
            else:
                cells.append(f"{mean:.4f} ± {std:.4f}")
        table.add_row(short_name(metric), *cells)
    return table


def save_comparison(rows: dict[str, pd.DataFrame]) -> Path:
    """Write the comparison as CSV under ``./alphalab-runs/comparisons/`` and return the path."""
    frame = pd.concat(rows, names=["workflow", "metric"]).unstack("metric")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path.cwd() / RUNS_DIR_NAME / "comparisons" / f"compare-{stamp}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path)
    return path


def run(
    workflows: Annotated[list[Path], typer.Argument(help="Workflow YAML file(s).")],
    experiment_name: Annotated[
        str | None, typer.Option("--experiment-name", "-e", help="Experiment to record into.")
    ] = None,
    uri: Annotated[str | None, typer.Option("--uri", help="Tracking URI for the runs.")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a key: --set task.model.kwargs.num_leaves=64"),
    ] = None,
    seeds: Annotated[
        int, typer.Option("--seeds", min=1, help="Runs per workflow with seeds 0..N-1.")
    ] = 1,
) -> None:
    """Run workflows (Qlib's qrun): features, training, records, all tracked as runs."""
    overrides = parse_overrides(set_ or [])
    summaries: list[RunSummary] = []
    for workflow in workflows:
        with console.status(f"Running {workflow}") as status:

            def on_phase(phase: str, workflow: Path = workflow) -> None:
                status.update(f"Running {workflow}: {phase}")

            summary = run_workflow(
                workflow,
                experiment_name=experiment_name,
                uri=uri,
                overrides=overrides,
                seeds=seeds,
                on_phase=on_phase,
            )
        print_summary(summary)
        summaries.append(summary)
    if len(summaries) > 1 or seeds > 1:
        rows = {
            s.workflow: compare_metrics([c.metrics for c in s.children or (s,)]) for s in summaries
        }
        console.print(comparison_table(rows, "Comparison (mean ± std over seeds)"))
        console.print(f"Comparison saved to {save_comparison(rows)}")
    console.print("Browse the runs with [bold]alphalab ui[/] or [bold]alphalab exp runs[/].")


def compare(
    targets: Annotated[list[str], typer.Argument(help="Run ids or experiment names.")],
) -> None:
    """Compare runs: mean ± std over each run's seeds (child runs) of the summary metrics."""
    rows: dict[str, pd.DataFrame] = {}
    for target in targets:
        for recorder in _resolve_runs(target):
            children = recorder.list_children()
            metrics = [r.list_metrics() for r in children] or [recorder.list_metrics()]
            rows[f"{recorder.name} ({recorder.id[:8]})"] = compare_metrics(metrics)
    if not rows:
        raise NotFoundError(f"No finished run found in {targets}")
    console.print(comparison_table(rows, "Comparison (mean ± std over seeds)"))


def _resolve_runs(target: str) -> list[Recorder]:
    """One run by id, or the top-level finished runs of an experiment, oldest first."""
    try:
        return [R.get_recorder(recorder_id=target)]
    except NotFoundError:
        pass
    experiment = R.get_exp(experiment_name=target, create=False)
    recorders = experiment.list_recorders(rtype="dict")
    assert isinstance(recorders, dict)  # rtype="dict" returns the mapping
    runs = [r for r in recorders.values() if r.parent_id is None and r.status.value == "FINISHED"]
    return sorted(runs, key=lambda r: r.start_time or 0)
