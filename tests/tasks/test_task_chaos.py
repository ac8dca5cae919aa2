"""Chaos: worker processes killed with SIGKILL mid-task; every task ends done once or failed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from alphalab.tasks import SqlTaskStore, TaskManager, TaskStatus

N_TASKS = 12
FAILING = ("bad-0", "bad-1")


@pytest.fixture
def pg_chaos_uri(pg_url: str) -> Iterator[str]:
    import psycopg

    schema = f"chaos_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield f"{pg_url}?options=-csearch_path%3D{schema}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


WORKER_CODE = """
import sys
from alphalab.tasks import WorkerOptions, work
work(WorkerOptions(pool="chaos", uri=sys.argv[1], task_func="alphalab.testing._tasks:marker_task",
                   lease_seconds=1.0, poll_interval=0.2))
"""


def _start_worker(uri: str, markers: Path, log: Path) -> subprocess.Popen[bytes]:
    """A worker process running the same loop as ``alphalab worker`` (lighter to start)."""
    env = {**os.environ, "ALPHALAB_TEST_MARKER_DIR": str(markers)}
    args = [sys.executable, "-c", WORKER_CODE, uri]
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=log.open("ab"))


def _wait_for_mid_task(proc: subprocess.Popen[bytes], markers: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for marker in markers.glob("*.started"):
            try:
                if marker.read_text() == str(proc.pid):
                    return
            except FileNotFoundError:  # finished meanwhile
                continue
        time.sleep(0.02)
    pytest.fail(f"worker {proc.pid} never started a task")


def run_chaos(uri: str, tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    log = tmp_path / "workers.log"
    tm = TaskManager("chaos", store=SqlTaskStore(uri), max_attempts=3)
    tasks = [{"key": f"ok-{i}", "sleep": 0.3} for i in range(N_TASKS)]
    tasks += [{"key": key, "sleep": 0.05, "fail": True} for key in FAILING]
    tm.create_task(tasks)

    workers = [_start_worker(uri, markers, log) for _ in range(3)]
    victims = workers[:2]
    for victim in victims:
        _wait_for_mid_task(victim, markers, timeout=60)
        victim.send_signal(signal.SIGKILL)
    workers += [_start_worker(uri, markers, log), _start_worker(uri, markers, log)]
    for proc in workers:
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"worker {proc.pid} did not finish; log:\n{log.read_text()[-3000:]}")
    assert [p.returncode for p in victims] == [-signal.SIGKILL] * 2
    assert [p.returncode for p in workers[2:]] == [0, 0, 0], log.read_text()[-3000:]

    records = {t.task["key"]: t for t in tm.query()}
    assert tm.task_stat() == {"done": N_TASKS, "failed": len(FAILING)}
    finished = Counter(m.name.split(".")[0] for m in markers.glob("*.done"))
    for i in range(N_TASKS):
        record = records[f"ok-{i}"]
        assert record.status is TaskStatus.DONE
        assert finished[f"ok-{i}"] == 1, f"ok-{i} ran to the end {finished[f'ok-{i}']} times"
        assert (markers / f"{record.result}.done").exists()
    for key in FAILING:
        record = records[key]
        assert record.status is TaskStatus.FAILED and record.attempts == 3
        assert record.error == f"RuntimeError: task {key} always fails"
        assert finished[key] == 0
    # The victims died mid-task: their attempts never finished and were retried elsewhere.
    killed = {str(v.pid) for v in victims}
    orphans = [m for m in markers.glob("*.started") if m.read_text() in killed]
    assert len(orphans) == 2


@pytest.mark.slow
def test_chaos_sqlite(tmp_path: Path) -> None:
    run_chaos(f"sqlite:///{tmp_path / 'tasks.db'}", tmp_path)


@pytest.mark.slow
@pytest.mark.postgres
def test_chaos_postgres(pg_chaos_uri: str, tmp_path: Path) -> None:
    run_chaos(pg_chaos_uri, tmp_path)
