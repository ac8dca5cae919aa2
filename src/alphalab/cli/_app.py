"""The root ``alphalab`` command: global options, error reporting, and the command groups."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from typer.core import TyperGroup

from alphalab.cli import _config, _data, _exp, _report, _rolling, _run, _tasks, _tune, _worker
from alphalab.exceptions import AlphalabError
from alphalab.logging import ROOT_LOGGER_NAME
from alphalab.version import __version__

err_console = Console(stderr=True)


class _ErrorReportingGroup(TyperGroup):
    """Turn alphalab errors into one clear message and exit code 1 (a traceback with --debug)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except AlphalabError as e:
            if ctx.params.get("debug"):
                raise
            err_console.print(f"[bold red]Error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None


app = typer.Typer(
    name="alphalab",
    cls=_ErrorReportingGroup,
    help="alphalab: Qlib-style quant research workflows, tracked on MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(_config.app, name="config")
app.command("run")(_run.run)
app.command("report")(_report.report)
app.add_typer(_data.app, name="data")
_exp.app.command("compare")(_run.compare)
app.add_typer(_exp.app, name="exp")
app.command("ui")(_exp.ui)
app.add_typer(_tasks.app, name="tasks")
app.command("worker")(_worker.worker)
app.command("rolling")(_rolling.rolling)
app.add_typer(_tune.app, name="tune")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"alphalab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full tracebacks and debug logs.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")] = False,
) -> None:
    """Research workflows for quantitative machine learning."""
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    logger = logging.getLogger(ROOT_LOGGER_NAME)
    logger.setLevel(level)
    if not any(isinstance(h, RichHandler) for h in logger.handlers):
        handler = RichHandler(console=err_console, show_path=False, rich_tracebacks=debug)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)


def main() -> None:
    """Entry point of the ``alphalab`` console script."""
    app()
