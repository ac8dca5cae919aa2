"""``alphalab tasks`` and ``alphalab worker`` on a SQLite pool."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from alphalab.cli import app
from alphalab.tasks import TaskManager

runner = CliRunner()
ENV = {"COLUMNS": "200"}


def _pool(uri: str) -> TaskManager:
    tm = TaskManager("cli", uri, max_attempts=1)
    tm.create_task([{"x": 1}, {"x": 2}, {"x": -3}])
    return tm


def test_worker_then_tasks_commands(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'tasks.db'}"
    tm = _pool(uri)
    args = ["worker", "--pool", "cli", "--uri", uri, "--func"]
    result = runner.invoke(app, [*args, "alphalab.testing._tasks:square_task", "--max-tasks", "2"])
    assert result.exit_code == 0, result.output
    assert "2 task(s) run from pool 'cli'" in result.output
    assert tm.task_stat() == {"done": 2, "waiting": 1}
    result = runner.invoke(app, [*args, "alphalab.testing._tasks:square_task"])
    assert result.exit_code == 0 and "1 task(s) run" in result.output
    assert tm.task_stat() == {"done": 2, "failed": 1}

    listing = runner.invoke(app, ["tasks", "list", "--uri", uri], env=ENV)
    assert listing.exit_code == 0 and "cli" in listing.output
    stat = runner.invoke(app, ["tasks", "stat", "--pool", "cli", "--uri", uri], env=ENV)
    assert "done" in stat.output and "ValueError: negative input -3" in stat.output
    (failed,) = tm.query({"status": "failed"})
    show = runner.invoke(app, ["tasks", "show", str(failed.id), "--uri", uri], env=ENV)
    assert show.exit_code == 0 and "1 of 1" in show.output and "Traceback" in show.output

    retry = runner.invoke(app, ["tasks", "retry-failed", "--pool", "cli", "--uri", uri])
    assert "1 failed task(s)" in retry.output
    assert tm.task_stat() == {"done": 2, "waiting": 1}
    reset = runner.invoke(
        app, ["tasks", "reset", "--pool", "cli", "--uri", uri, "--status", "done"]
    )
    assert reset.exit_code == 0 and "2 task(s)" in reset.output
    assert tm.task_stat() == {"waiting": 3}
    bad = runner.invoke(
        app,
        ["tasks", "reset", "--pool", "cli", "--uri", uri, "--status", "waiting", "--to", "done"],
    )
    assert bad.exit_code == 1 and "cannot go from 'waiting' to 'done'" in bad.output
    remove = runner.invoke(app, ["tasks", "remove", "--pool", "cli", "--uri", uri, "--yes"])
    assert "3 task(s) removed" in remove.output
    assert tm.task_stat() == {}


def test_worker_errors_are_actionable(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'tasks.db'}"
    result = runner.invoke(
        app, ["worker", "--pool", "p", "--uri", uri, "--func", "alphalab.testing._tasks:nope"]
    )
    assert result.exit_code == 1 and "has no function 'nope'" in result.output
    missing = runner.invoke(app, ["tasks", "show", "12345", "--uri", uri])
    assert missing.exit_code == 1 and "No task with id 12345" in missing.output


def test_worker_concurrency_spawns_processes(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'tasks.db'}"
    tm = TaskManager("conc", uri)
    tm.create_task([{"x": i} for i in range(6)])
    args = ["worker", "--pool", "conc", "--uri", uri, "-c", "2", "--poll", "0.05"]
    result = runner.invoke(app, [*args, "--func", "alphalab.testing._tasks:square_task"])
    assert result.exit_code == 0, result.output
    assert "6 task(s) run" in result.output
    done = list(tm.query())
    assert sorted(t.result for t in done) == [0, 1, 4, 9, 16, 25]
    assert all(t.attempts == 1 for t in done)


def test_qlib_module_paths_resolve_to_alphalab_tasks() -> None:
    from alphalab.config import resolve_class
    from alphalab.tasks import RollingGen, TaskManager, TrainerRM

    assert resolve_class("RollingGen", "qlib.workflow.task.gen") is RollingGen
    assert resolve_class("TaskManager", "qlib.workflow.task.manage") is TaskManager
    assert resolve_class("TrainerRM", "qlib.model.trainer") is TrainerRM


def test_force_release_runs_each_task_in_a_fresh_process(tmp_path: Path) -> None:
    import os

    from alphalab.exceptions import TaskDefinitionError
    from alphalab.tasks import run_task
    from alphalab.testing._tasks import pid_task

    uri = f"sqlite:///{tmp_path / 'tasks.db'}"
    tm = TaskManager("fresh", uri)
    tm.create_task([{"x": 1}])
    assert run_task(pid_task, "fresh", uri=uri, force_release=True) == 1
    (done,) = tm.query()
    assert isinstance(done.result, int) and done.result != os.getpid()

    def local(task: dict) -> int:
        return 0

    with pytest.raises(TaskDefinitionError, match="must be a module-level function"):
        run_task(local, "fresh", uri=uri, force_release=True)
