"""The async logger: no point lost or duplicated, errors surface, killed processes recover."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from alphalab.cli import app
from alphalab.exceptions import NotFoundError, TrackingError
from alphalab.tracking import AsyncMetricLogger, MetricJournal, R, RecorderStatus, get_client
from alphalab.tracking._logger import make_points, now_ms, recover_run


class FlakyClient:
    """A real MlflowClient whose next ``failures`` log_batch calls fail (fault injection)."""

    def __init__(self, real: Any, failures: int) -> None:
        self.real = real
        self.failures = failures

    def log_batch(self, run_id: str, **kwargs: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("store is down")
        self.real.log_batch(run_id, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _steps(run_id: str, key: str = "loss") -> list[int]:
    return list(R.get_recorder(recorder_id=run_id).metric_history(key)["step"])


def test_backend_error_surfaces_at_flush_and_nothing_is_dropped(
    tracking_uri: str, tmp_path: Path
) -> None:
    with R.start(experiment_name="flaky") as rec:
        client = FlakyClient(get_client(tracking_uri), failures=2)
        log = AsyncMetricLogger(client, rec.id, MetricJournal(tmp_path / "j.jsonl"))  # type: ignore[arg-type]
        for step in range(1500):
            log.log(make_points({"loss": float(step)}, step, now_ms()))
        deadline = time.monotonic() + 10
        while client.failures == 2 and time.monotonic() < deadline:
            time.sleep(0.01)  # the background thread meets the first failure and pauses
        assert client.failures == 1
        with pytest.raises(TrackingError, match=r"Could not store \d+ metric points"):
            log.flush()
        log.flush()  # the store is back: the retry ships everything
        log.close()
        assert _steps(rec.id) == list(range(1500))
        assert not (tmp_path / "j.jsonl").exists()  # fully stored -> journal removed


def test_bounded_buffer_waits_instead_of_dropping(tracking_uri: str) -> None:
    with R.start() as rec:
        log = AsyncMetricLogger(get_client(tracking_uri), rec.id, None, max_pending=10)
        for step in range(300):
            log.log(make_points({"loss": float(step)}, step, now_ms()))
            assert log.pending <= 10 + 1
        log.close()
        assert _steps(rec.id) == list(range(300))


def test_journal_ignores_a_torn_last_line(tmp_path: Path) -> None:
    journal = MetricJournal(tmp_path / "run.jsonl")
    journal.append(make_points({"a": 1.0, "b": float("nan")}, 3, 1000))
    journal.close()
    with open(tmp_path / "run.jsonl", "a") as f:
        f.write('["a", 2.0, 10')
    points = MetricJournal.read(tmp_path / "run.jsonl")
    assert [(p[0], p[2], p[3]) for p in points] == [("a", 1000, 3), ("b", 1000, 3)]


def test_recover_ships_only_what_is_missing(tracking_uri: str, tmp_path: Path) -> None:
    with R.start() as rec:
        path = tmp_path / "j.jsonl"
        journal = MetricJournal(path)
        points = [p for s in range(20) for p in make_points({"x": s * 1.5}, s, 1000 + s)]
        journal.append(points)
        journal.close()
        client = get_client(tracking_uri)
        from mlflow.entities import Metric

        client.log_batch(rec.id, metrics=[Metric("x", v, t, s) for _, v, t, s in points[:7]])
        first = recover_run(client, rec.id, path)
        assert (first.in_journal, first.already_stored, first.shipped) == (20, 7, 13)
        second = recover_run(client, rec.id, path)
        assert (second.already_stored, second.shipped) == (20, 0)
        assert _steps(rec.id, "x") == list(range(20))
        with pytest.raises(NotFoundError, match="No metric journal"):
            recover_run(client, rec.id, tmp_path / "none.jsonl")


CHILD = textwrap.dedent(
    """
    import os, sys
    from alphalab.tracking import R

    side = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    rec = R.start_exp(experiment_name="victims", recorder_name="victim")
    print(rec.id, flush=True)
    step = 0
    while True:
        R.log_metrics(step=step, loss=float(step))
        os.write(side, b"%d\\n" % step)  # written only after log_metrics returned
        step += 1
    """
)


def _run_child_until(tmp_path: Path, sig: int, min_steps: int) -> tuple[str, int]:
    """Start a child logging forever, kill it with ``sig``; return (run id, last logged step)."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    side = tmp_path / "logged.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPHALAB_")}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(side)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        assert len(run_id) == 32, proc.stderr.read() if proc.stderr else ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if side.exists() and len(side.read_bytes().splitlines()) >= min_steps:
                break
            time.sleep(0.02)
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -sig, proc.stderr.read() if proc.stderr else ""
    last = int(side.read_bytes().splitlines()[-1])
    return run_id, last


def _assert_exactly_once_up_to(run_id: str, last: int) -> None:
    steps = _steps(run_id)
    assert len(steps) >= last + 1
    assert steps == list(range(len(steps)))  # each point once, in order, no gap


@pytest.mark.slow
def test_sigterm_loses_nothing(tracking_uri: str, tmp_path: Path) -> None:
    run_id, last = _run_child_until(tmp_path, signal.SIGTERM, min_steps=3000)
    _assert_exactly_once_up_to(run_id, last)
    rec = R.get_recorder(recorder_id=run_id)
    assert rec.status is RecorderStatus.KILLED
    assert not list((tmp_path / "alphalab-runs" / "journal").glob("*.jsonl"))


@pytest.mark.slow
def test_sigkill_then_cli_recover_ships_each_point_once(tracking_uri: str, tmp_path: Path) -> None:
    from alphalab.tracking import process_liveness

    run_id, last = _run_child_until(tmp_path, signal.SIGKILL, min_steps=3000)
    rec = R.get_recorder(recorder_id=run_id)
    assert rec.status is RecorderStatus.RUNNING
    assert process_liveness(rec.list_tags()) == "dead"
    runner = CliRunner()
    shown = runner.invoke(app, ["exp", "runs", "victims"], env={"COLUMNS": "250"})
    assert "process dead" in shown.output
    result = runner.invoke(app, ["exp", "recover", run_id], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "shipped now" in result.output
    assert "marked KILLED" in result.output
    assert rec.status is RecorderStatus.KILLED
    assert "found dead" in rec.list_tags()["alphalab.killed"]
    _assert_exactly_once_up_to(run_id, last)
    again = runner.invoke(app, ["exp", "recover", run_id], env={"COLUMNS": "200"})
    assert again.exit_code == 0, again.output
    assert ", 0 shipped now" in again.output
    _assert_exactly_once_up_to(run_id, last)


@pytest.mark.slow
def test_sigkill_then_resume_ships_the_journal_first(tracking_uri: str, tmp_path: Path) -> None:
    run_id, last = _run_child_until(tmp_path, signal.SIGKILL, min_steps=2000)
    with R.start(recorder_id=run_id, resume=True):
        R.log_metrics(step=10**6, loss=-1.0)
    steps = _steps(run_id)
    assert steps[-1] == 10**6
    assert steps[:-1] == list(range(len(steps) - 1))
    assert len(steps) >= last + 2


@given(
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=20),
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(min_value=0, max_value=2**62),
            st.integers(min_value=-(2**62), max_value=2**62),
        ),
        max_size=20,
    )
)
@settings(max_examples=50, deadline=None)
def test_journal_round_trips_any_point(points: list[tuple[str, float, int, int]]) -> None:
    import math
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        journal = MetricJournal(Path(folder) / "j.jsonl")
        journal.append(points)
        journal.close()
        read = MetricJournal.read(Path(folder) / "j.jsonl")
    assert len(read) == len(points)
    for got, want in zip(read, points, strict=True):
        assert (got[0], got[2], got[3]) == (want[0], want[2], want[3])
        assert got[1] == want[1] or (math.isnan(got[1]) and math.isnan(want[1]))
