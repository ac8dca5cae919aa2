"""``alphalab exp``: list, inspect, delete and recover tracked runs; ``alphalab ui``."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from alphalab.cli._console import console, short_name
from alphalab.config import get_settings, is_postgres_uri, sqlalchemy_url, uri_scheme
from alphalab.exceptions import MissingDependencyError

app = typer.Typer(help="List, inspect, delete and recover tracked experiments and runs.")


UriOption = Annotated[
    str | None, typer.Option("--uri", help="Tracking URI (default: the configured one).")
]


def _manager(uri: str | None) -> Any:
    from alphalab.tracking import R

    return R.get_exp_manager(uri)


def _fmt_time(ms: Any) -> str:
    if ms is None or (isinstance(ms, float) and math.isnan(ms)):
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _fmt_duration(start: Any, end: Any, status: str) -> str:
    if start is None:
        return ""
    if end is None or status == "RUNNING":
        end = datetime.now(tz=UTC).timestamp() * 1000
    seconds = max(0.0, (end - start) / 1000)
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{sec:02d}" if hours else f"{minutes}:{sec:02d}"


def _status_text(status: str, tags: dict[str, str]) -> str:
    """The status, and for a RUNNING run whether its process is alive (host/pid)."""
    from alphalab.tracking import process_liveness

    if status != "RUNNING":
        return status
    where = f"{tags.get('hostname', '?')}:{tags.get('alphalab.pid', '?')}"
    liveness = process_liveness(tags)
    if liveness == "dead":
        return f"RUNNING (process dead: {where})"
    if liveness == "alive":
        return f"RUNNING ({where})"
    return f"RUNNING (on {where})"


@app.command("list")
def list_experiments(uri: UriOption = None) -> None:
    """List the experiments with their number of runs."""
    manager = _manager(uri)
    table = Table(title=f"Experiments in {manager.uri}")
    table.add_column("id")
    table.add_column("name")
    table.add_column("runs", justify="right")
    for name, exp in sorted(manager.list_experiments().items()):
        runs = manager._search_runs([exp.id])
        table.add_row(exp.id, name, str(len(runs)))
    console.print(table)


@app.command("runs")
def runs(
    experiment: Annotated[str, typer.Argument(help="Experiment name (or id).")],
    filter_string: Annotated[
        str, typer.Option("--filter", "-f", help='MLflow filter, e.g. "metrics.IC > 0.03".')
    ] = "",
    metrics: Annotated[
        int,
        typer.Option(
            "--metrics", help="How many metric columns to show (IC, ICIR, Rank IC... first)."
        ),
    ] = 4,
    uri: UriOption = None,
) -> None:
    """Table of an experiment's runs: id, name, status, start, duration, key metrics."""
    from alphalab.exceptions import NotFoundError

    manager = _manager(uri)
    try:
        exp = manager.get_exp(experiment_name=experiment, create=False)
    except NotFoundError:
        if not experiment.isdigit():
            raise
        exp = manager.get_exp(experiment_id=experiment)
    found = manager._search_runs(
        [exp.id], filter_string=filter_string, order_by=["attributes.start_time DESC"]
    )
    keys = _metric_columns([run.data.metrics for run in found], metrics)
    parents: dict[str, int] = {}
    for run in found:
        parent = run.data.tags.get("mlflow.parentRunId")
        if parent:
            parents[parent] = parents.get(parent, 0) + 1
    columns: dict[str, list[str]] = {
        "run id": [run.info.run_id for run in found],
        "name": [run.info.run_name or "" for run in found],
        "status": [_status_text(run.info.status, run.data.tags) for run in found],
        "start": [_fmt_time(run.info.start_time)[:16] for run in found],
        "duration": [
            _fmt_duration(run.info.start_time, run.info.end_time, run.info.status) for run in found
        ],
    }
    if parents:
        columns["children"] = [str(parents.get(run.info.run_id, "")) for run in found]
    metric_headers = []
    for key in keys:
        header = short_name(key) if short_name(key) not in columns else f"metrics.{key}"
        metric_headers.append(header)
        columns[header] = [
            "" if key not in run.data.metrics else f"{run.data.metrics[key]:.4g}" for run in found
        ]
    width = console.width
    shown = _fitting_columns(columns, metric_headers, width)
    table = Table(title=f"Runs of {exp.name!r} ({len(found)})", box=box.SIMPLE_HEAD)
    for header in shown:
        if header in metric_headers:
            table.add_column(header, overflow="fold", justify="right")
        else:
            table.add_column(header, overflow="fold")
    table.columns[0].no_wrap = True
    for row in zip(*(columns[header] for header in shown), strict=True):
        table.add_row(*row)
    console.print(table)
    hidden = [header for header in columns if header not in shown]
    if hidden:
        console.print(
            f"Not shown, to fit {width} columns: {', '.join(hidden)} (a wider terminal, or "
            f"COLUMNS={_fitting_width(columns)}, shows them)"
        )


def _needed(columns: dict[str, list[str]], header: str) -> int:
    """Characters a column takes: its longest cell (names fold past 16) and padding."""
    cells = [len(cell) for cell in columns[header]]
    if header == "name":
        return min(max(cells, default=4), 16) + 3
    return max([len(header), *cells]) + 3


def _fitting_width(columns: dict[str, list[str]]) -> int:
    return 4 + sum(_needed(columns, header) for header in columns)


def _fitting_columns(
    columns: dict[str, list[str]], metric_headers: list[str], width: int
) -> list[str]:
    """The columns that fit ``width``: identity first, then metrics, duration, start."""
    priority = ["run id", "name", "status", *metric_headers, "children", "duration", "start"]

    shown: list[str] = []
    used = 4  # the table's edges
    for header in (h for h in priority if h in columns):
        if len(shown) >= 3 and used + _needed(columns, header) > width:
            break  # what follows matters less
        shown.append(header)
        used += _needed(columns, header)
    return [header for header in columns if header in shown]


def _metric_columns(runs_metrics: list[dict[str, float]], count: int) -> list[str]:
    """The metrics to show: the workflow summary's (IC, ICIR...) in order, then the rest."""
    from alphalab.workflow import SUMMARY_METRICS

    present = {key for metrics in runs_metrics for key in metrics}
    first = [key for key in SUMMARY_METRICS if key in present]
    return (first + sorted(present - set(first)))[:count]


@app.command("show")
def show(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    uri: UriOption = None,
) -> None:
    """Show a run: status, params, metrics, tags and artifacts."""
    manager = _manager(uri)
    recorder = manager.get_recorder(run_id)
    tags = recorder.list_tags()
    exp = manager.get_exp(experiment_id=recorder.experiment_id, create=False)
    console.print(f"[bold]Run[/] {recorder.id}  name={recorder.name!r}  experiment={exp.name!r}")
    console.print(f"status: {_status_text(recorder.status.value, tags)}")
    console.print(f"start: {recorder.start_time}  end: {recorder.end_time}")
    if recorder.parent_id:
        console.print(f"parent: {recorder.parent_id}")
    children = recorder.child_count
    if children:
        console.print(f"children: {children}")
    try:
        console.print(f"artifacts: {recorder.get_local_dir()}")
    except Exception:
        console.print(f"artifacts: {recorder.info['artifact_uri']}")
    for title, values in (
        ("params", recorder.list_params()),
        ("metrics", recorder.list_metrics()),
        ("tags", tags),
    ):
        table = Table(title=title)
        table.add_column("key")
        table.add_column("value", overflow="fold")
        for key, value in sorted(values.items()):
            table.add_row(key, f"{value:.6g}" if isinstance(value, float) else str(value))
        console.print(table)
    table = Table(title="artifacts")
    table.add_column("path")
    pending = recorder.list_artifacts()
    while pending:
        path = pending.pop(0)
        if path.endswith("/"):
            pending.extend(recorder.list_artifacts(path.rstrip("/")))
        else:
            table.add_row(path)
    console.print(table)


@app.command("delete")
def delete(
    target: Annotated[str, typer.Argument(help="Run id, or experiment name with --experiment.")],
    experiment: Annotated[
        bool, typer.Option("--experiment", "-e", help="Delete the experiment named TARGET.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    uri: UriOption = None,
) -> None:
    """Delete a run (by id) or an experiment (by name, with --experiment)."""
    manager = _manager(uri)
    if experiment:
        exp = manager.get_exp(experiment_name=target, create=False)
        if not yes:
            typer.confirm(f"Delete experiment {exp.name!r} ({exp.id})?", abort=True)
        manager.delete_exp(experiment_id=exp.id)
        console.print(f"Deleted experiment {exp.name!r} ({exp.id})")
        return
    recorder = manager.get_recorder(target)
    if not yes:
        typer.confirm(f"Delete run {recorder.id} ({recorder.name!r})?", abort=True)
    exp = manager.get_exp(experiment_id=recorder.experiment_id, create=False)
    exp.delete_recorder(recorder_id=recorder.id)
    console.print(f"Deleted run {recorder.id}")


@app.command("recover")
def recover(
    run_id: Annotated[str, typer.Argument(help="Run id of a run whose process died.")],
    journal: Annotated[
        Path | None,
        typer.Option("--journal", help="Journal file (default: the one the run recorded)."),
    ] = None,
    uri: UriOption = None,
) -> None:
    """Ship the metric points a dead process journaled but never stored (no duplicates)."""
    result = _manager(uri).recover(run_id, journal)
    console.print(
        f"Run {result.run_id}: {result.in_journal} points in {result.journal}, "
        f"{result.already_stored} already stored, {result.shipped} shipped now",
        soft_wrap=True,
    )
    if result.marked_killed:
        console.print(f"Run {result.run_id}: its process is dead; marked KILLED", soft_wrap=True)


def _server_backend_uri(uri: str) -> str:
    if is_postgres_uri(uri):
        return sqlalchemy_url(uri)
    return uri


def ui(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 5000,
    workers: Annotated[int, typer.Option(help="Server worker processes.")] = 1,
    uri: UriOption = None,
) -> None:
    """Start the MLflow UI on the configured tracking store."""
    settings = get_settings(tracking_uri=uri) if uri else get_settings()
    tracking = settings.tracking_uri
    if uri_scheme(tracking) in ("http", "https"):
        console.print(f"The tracking store is an MLflow server: open {tracking} in a browser")
        return
    exe = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or shutil.which("mlflow")
    if exe is None:
        raise MissingDependencyError("The 'mlflow' command is not installed; pip install mlflow")
    from alphalab.tracking import get_client

    get_client(tracking)  # create/migrate the store under alphalab's lock first
    command = [
        exe,
        "ui",
        "--backend-store-uri",
        _server_backend_uri(tracking),
        "--default-artifact-root",
        settings.artifact_location,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    console.print(f"MLflow UI on http://{host}:{port} for {tracking} (Ctrl+C to stop)")
    subprocess.run(command, check=False)
