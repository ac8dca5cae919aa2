"""``alphalab tune``: run a tuning study from a TUNE.yaml, and show a study's trials."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperGroup

from alphalab._progress import progress_enabled
from alphalab.cli._console import console
from alphalab.tune import TuneResult, load_tune_config, run_tune, study_trials

if TYPE_CHECKING:
    import optuna


class _DefaultRunGroup(TyperGroup):
    """``alphalab tune FILE ...`` means ``alphalab tune run FILE ...``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_DefaultRunGroup,
    help="Tune hyperparameters with Optuna: alphalab tune TUNE.yaml, alphalab tune show STUDY.",
    no_args_is_help=True,
)


class _TrialProgress:
    """A Rich bar per tuner: trials done out of the budget, states and best value."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, Any] = {}

    def __call__(self, tuner: str, study: optuna.Study, budget: int) -> None:
        counts: dict[str, int] = {}
        best = math.nan
        for trial in study.get_trials(deepcopy=False):
            counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
        if counts.get("COMPLETE"):
            best = float(study.best_value)
        done = sum(n for s, n in counts.items() if s in ("COMPLETE", "PRUNED", "FAIL"))
        text = (
            f"{tuner}: {counts.get('COMPLETE', 0)} complete, {counts.get('PRUNED', 0)} pruned, "
            f"{counts.get('FAIL', 0)} failed, {counts.get('RUNNING', 0)} running; best {best:.5g}"
        )
        if tuner not in self.tasks:
            self.tasks[tuner] = self.progress.add_task(text, total=budget)
        self.progress.update(self.tasks[tuner], completed=min(done, budget), description=text)


def _print_result(result: TuneResult) -> None:
    table = Table(title=f"Tune study {result.study_name}", show_header=True)
    for column in ("tuner", "trials", "states", "best value", "best trial", "run"):
        table.add_column(column)
    for tuner in result.tuners:
        best = tuner.best or {}
        states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(tuner.states.items()))
        table.add_row(
            tuner.name,
            str(tuner.n_trials),
            states,
            f"{best.get('best_value', float('nan')):.6g}",
            str(best.get("best_trial", "-")),
            str(best.get("run_id", "-"))[:12],
        )
    console.print(table)
    if result.best is not None:
        console.print("Best params:")
        for key, value in result.best["overrides"].items():
            console.print(f"  {key} = {value!r}", highlight=False)
    console.print(f"Parent run: {result.parent_run_id} (experiment {result.experiment_name})")
    console.print(f"Outputs: {result.output_dir}")
    if result.best_config is not None:
        console.print(f"Re-run the best config with: alphalab run {result.best_config}")


@app.command("run")
def run(
    tune_file: Annotated[Path, typer.Argument(help="The TUNE.yaml file.")],
    n_trials: Annotated[
        int | None,
        typer.Option(
            "--n-trials",
            min=1,
            help="Trials per tuner in total, resumed ones included (overrides the file).",
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", "-w", min=1, help="Worker processes sharing the study.")
    ] = 1,
    storage: Annotated[
        str | None,
        typer.Option("--storage", help="Study database URL (default: the task_uri setting)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an existing study (any machine).")
    ] = False,
) -> None:
    """Run a tuning study: each trial is a child run of the study's run."""
    config = load_tune_config(tune_file)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not progress_enabled(),
    )
    with progress:
        result = run_tune(
            config,
            n_trials=n_trials,
            workers=workers,
            storage=storage,
            resume=resume,
            progress=_TrialProgress(progress),
        )
    _print_result(result)


@app.command("show")
def show(
    study: Annotated[str, typer.Argument(help="Study name (every tuner) or study/tuner.")],
    storage: Annotated[
        str | None,
        typer.Option("--storage", help="Study database URL (default: the task_uri setting)."),
    ] = None,
) -> None:
    """Print a table of the trials of a study."""
    for name, frame in study_trials(study, storage).items():
        table = Table(title=f"Study {name}")
        columns = [str(c) for c in frame.columns]
        for column in columns:
            table.add_column(column.removeprefix("params."), overflow="fold")
        for row in frame.itertuples(index=False):
            table.add_row(*(_cell(v) for v in row))
        console.print(table)
        complete = frame[frame["state"] == "COMPLETE"] if len(frame) else frame
        console.print(f"{len(frame)} trials, {len(complete)} complete")


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
