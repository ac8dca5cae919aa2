"""``alphalab worker``: claim and train the tasks of a pool until it is empty (or forever)."""

from __future__ import annotations

from typing import Annotated

import typer

from alphalab.exceptions import ConfigError


def worker(
    pool: Annotated[str, typer.Option("--pool", help="Name of the task pool to work on.")],
    uri: Annotated[
        str | None, typer.Option("--uri", help="Task store URI (default: the task_uri setting).")
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="Worker processes on this machine.")
    ] = 1,
    max_tasks: Annotated[
        int | None,
        typer.Option("--max-tasks", min=1, help="Stop after this many tasks (per process)."),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Keep waiting for new tasks instead of exiting.")
    ] = False,
    experiment: Annotated[
        str | None,
        typer.Option("--experiment", "-e", help="Experiment of the training runs (task_train)."),
    ] = None,
    func: Annotated[
        str,
        typer.Option("--func", help="Task function as package.module:function."),
    ] = "alphalab.tasks:train_task",
    lease: Annotated[
        float, typer.Option("--lease", min=0.1, help="Lease of a claim in seconds (heartbeat).")
    ] = 60.0,
    poll: Annotated[
        float, typer.Option("--poll", min=0.01, help="Seconds between polls with --wait.")
    ] = 1.0,
    phase: Annotated[
        str,
        typer.Option(
            "--phase",
            help="train (default); begin / end: the two phases of DelayTrainerRM pools.",
        ),
    ] = "train",
) -> None:
    """Train tasks of a pool: claim, run (task_train by default), commit the run id."""
    from alphalab.tasks import WorkerOptions, work

    phases = {
        "train": ("waiting", "done", False),
        "begin": ("waiting", "part_done", False),
        "end": ("part_done", "done", True),
    }
    if phase not in phases:
        raise ConfigError(f"--phase must be one of {', '.join(phases)}; got {phase!r}")
    default_func = func == "alphalab.tasks:train_task"
    if phase != "train":
        if not default_func:
            raise ConfigError("--phase begin/end runs DelayTrainerRM's functions; drop --func")
        func = f"alphalab.tasks._trainer:pool_{phase}_train"
    kwargs = {}
    if experiment is not None:
        if not default_func:
            raise ConfigError("--experiment applies to the default task function only")
        kwargs["experiment_name"] = experiment
    before, after, with_record = phases[phase]
    options = WorkerOptions(
        pool=pool,
        uri=uri,
        task_func=func,
        func_kwargs=kwargs,
        max_tasks=max_tasks,
        wait=wait,
        lease_seconds=lease,
        poll_interval=poll,
        before_status=before,
        after_status=after,
        with_record=with_record,
    )
    ran = work(options, concurrency=concurrency)
    typer.echo(f"Worker finished: {ran} task(s) run from pool {pool!r}")
