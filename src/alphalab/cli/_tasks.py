"""``alphalab tasks``: list pools, count, show, reset, retry and remove tasks."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Inspect and manage task pools (list, stat, show, reset, retry, remove).")

UriOption = Annotated[
    str | None, typer.Option("--uri", help="Task store URI (default: the task_uri setting).")
]
PoolOption = Annotated[str, typer.Option("--pool", help="Name of the task pool.")]
StatusOption = Annotated[
    list[str] | None,
    typer.Option("--status", help="Only tasks in this status (repeatable)."),
]
IdOption = Annotated[list[int] | None, typer.Option("--id", help="Only this task (repeatable).")]


def _console() -> Console:
    columns = os.environ.get("COLUMNS", "")
    return Console(width=int(columns) if columns.isdigit() else None)


def _manager(pool: str, uri: str | None) -> Any:
    from alphalab.tasks import TaskManager

    return TaskManager(pool, uri)


def _query(ids: list[int] | None, statuses: list[str] | None) -> dict[str, Any]:
    query: dict[str, Any] = {}
    if ids:
        query["_id"] = list(ids)
    if statuses:
        query["status"] = list(statuses)
    return query


@app.command("list")
def list_pools(uri: UriOption = None) -> None:
    """List the pools of the task store with their counts by status."""
    from alphalab.tasks import TaskStatus, get_task_store

    store = get_task_store(uri)
    table = Table(title=f"Task pools in {store.uri}")
    table.add_column("pool")
    for status in TaskStatus:
        table.add_column(status.value, justify="right")
    for pool in store.pools():
        stat = store.count_by_status(pool)
        table.add_row(pool, *(str(stat.get(s.value, 0)) for s in TaskStatus))
    _console().print(table)


@app.command("stat")
def stat(pool: PoolOption, uri: UriOption = None) -> None:
    """Count the tasks of a pool by status, then list the failed ones with their errors."""
    tm = _manager(pool, uri)
    counts = tm.task_stat()
    table = Table(title=f"Pool {pool}")
    table.add_column("status")
    table.add_column("tasks", justify="right")
    for status, count in sorted(counts.items()):
        table.add_row(status, str(count))
    table.add_row("total", str(sum(counts.values())), style="bold")
    console = _console()
    console.print(table)
    failed = list(tm.query({"status": "failed"}))
    for task in failed[:20]:
        console.print(f"[red]failed[/] task {task.id} ({task.attempts} attempts): {task.error}")


@app.command("show")
def show(task_id: Annotated[int, typer.Argument(help="Task id.")], uri: UriOption = None) -> None:
    """Show one task: status, attempts, lease, result, last error and definition."""
    from alphalab.tasks import get_task_store

    task = get_task_store(uri).get(task_id)
    table = Table(title=f"Task {task.id}", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    rows = {
        "pool": task.pool,
        "status": task.status.value,
        "priority": task.priority,
        "attempts": f"{task.attempts} of {task.max_attempts}",
        "worker": task.worker_id or "",
        "lease until": task.lease_expires_at or "",
        "created": task.created_at,
        "started": task.started_at or "",
        "finished": task.finished_at or "",
        "result": json.dumps(task.result),
        "error": task.error or "",
        "hash": task.task_hash,
    }
    for key, value in rows.items():
        table.add_row(key, str(value))
    console = _console()
    console.print(table)
    console.print_json(json.dumps(task.task))
    if task.traceback:
        console.print(task.traceback, highlight=False)


@app.command("reset")
def reset(
    pool: PoolOption,
    uri: UriOption = None,
    status: StatusOption = None,
    task_id: IdOption = None,
    to: Annotated[str, typer.Option("--to", help="Target status.")] = "waiting",
) -> None:
    """Move tasks (default: running ones, e.g. after stopping every worker) to --to."""
    tm = _manager(pool, uri)
    count = tm.reset_status(_query(task_id, status or ["running"]), to)
    typer.echo(f"{count} task(s) of pool {pool!r} moved to {to}")


@app.command("retry-failed")
def retry_failed(pool: PoolOption, uri: UriOption = None, task_id: IdOption = None) -> None:
    """Give failed tasks a fresh set of attempts (back to waiting)."""
    count = _manager(pool, uri).retry_failed(_query(task_id, None))
    typer.echo(f"{count} failed task(s) of pool {pool!r} back to waiting")


@app.command("remove")
def remove(
    pool: PoolOption,
    uri: UriOption = None,
    status: StatusOption = None,
    task_id: IdOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete tasks of a pool (all of them unless --status/--id narrow it down)."""
    tm = _manager(pool, uri)
    query = _query(task_id, status)
    if not yes:
        count = sum(tm.task_stat(query).values())
        typer.confirm(f"Delete {count} task(s) from pool {pool!r}?", abort=True)
    typer.echo(f"{tm.remove(query)} task(s) removed from pool {pool!r}")
