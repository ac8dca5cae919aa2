"""``alphalab config``: show the resolved settings and validate workflow files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from alphalab.cli._console import console
from alphalab.config import ENV_VARS, load_workflow, resolve_class, resolve_settings

app = typer.Typer(help="Show settings and validate workflow files.", no_args_is_help=True)


@app.command("show")
def show() -> None:
    """Show every setting, its value and where it came from."""
    report = resolve_settings()
    table = Table(title="alphalab settings")
    table.add_column("setting")
    table.add_column("value", overflow="fold")
    table.add_column("source")
    table.add_column("environment variable")
    for name, value in vars(report.settings).items():
        shown = "(simulated market)" if name == "provider_uri" and value is None else str(value)
        table.add_row(name, shown, report.sources[name], ENV_VARS[name])
    console.print(table)


@app.command("validate")
def validate(
    workflow: Annotated[Path, typer.Argument(help="Workflow YAML file.")],
) -> None:
    """Check a workflow file's shape and that every class it names can be found."""
    _raw, config = load_workflow(workflow)
    components = [
        ("task.model", config.task.model),
        ("task.dataset", config.task.dataset),
        *((f"task.record.{i}", rec) for i, rec in enumerate(config.task.record)),
    ]
    table = Table(title=f"{workflow}: valid")
    table.add_column("key")
    table.add_column("class")
    table.add_column("resolves to")
    for key, component in components:
        target = resolve_class(component.class_, component.module_path)
        table.add_row(key, component.class_, f"{target.__module__}.{target.__qualname__}")
    console.print(table)
