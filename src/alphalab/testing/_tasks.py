"""Contract tests every task store passes (SQLite and PostgreSQL), plus task functions for tests.

Subclass :class:`TaskStoreContract` in a test module and provide a ``store`` fixture (a
:class:`~alphalab.tasks.TaskStore` that no other test writes to, e.g. its own SQLite file or
its own PostgreSQL schema).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from alphalab.exceptions import NotFoundError, TaskDefinitionError, TaskError, TaskStateError
from alphalab.tasks import TaskFilter, TaskManager, TaskStatus, TaskStore, run_task

POOL = "contract"


def _task(i: int, **extra: Any) -> dict[str, Any]:
    return {"model": {"class": "LGBModel", "kwargs": {"seed": i}}, "n": i, **extra}


class TaskStoreContract:
    """The behaviour of a task store and of TaskManager on top of it, whatever the database."""

    # ----- identity and insertion -------------------------------------------------------------

    def test_insert_deduplicates_by_canonical_json(self, store: TaskStore) -> None:
        first = store.insert(POOL, [{"a": 1, "b": {"x": 1, "y": [1, 2]}}, {"a": 2}])
        assert [r.created for r in first] == [True, True]
        again = store.insert(POOL, [{"b": {"y": [1, 2], "x": 1}, "a": 1}, {"a": 3}])
        assert again[0].id == first[0].id and not again[0].created
        assert again[1].created
        other_pool = store.insert(POOL + "-b", [{"a": 1, "b": {"x": 1, "y": [1, 2]}}])
        assert other_pool[0].created and other_pool[0].id != first[0].id
        assert store.pools() == sorted([POOL, POOL + "-b"])
        assert len(store.find(POOL)) == 3

    def test_dates_are_stored_as_iso_strings(self, store: TaskStore) -> None:
        import datetime as dt

        (res,) = store.insert(POOL, [{"segments": {"test": [dt.date(2020, 1, 2), None]}}])
        record = store.get(res.id)
        assert record.task == {"segments": {"test": ["2020-01-02", None]}}
        assert store.insert(POOL, [{"segments": {"test": ["2020-01-02", None]}}])[0].id == res.id

    def test_objects_are_rejected(self, store: TaskStore) -> None:
        with pytest.raises(TaskDefinitionError, match=r"task\.model is a object.*never pickled"):
            store.insert(POOL, [{"model": object()}])
        with pytest.raises(TaskDefinitionError, match="must be a mapping"):
            store.insert(POOL, [["not", "a", "dict"]])  # type: ignore[list-item]
        with pytest.raises(TaskDefinitionError, match="finite numbers"):
            store.insert(POOL, [{"x": float("nan")}])
        assert store.find(POOL) == []

    # ----- claiming -----------------------------------------------------------------------------

    def test_claim_by_priority_then_age(self, store: TaskStore) -> None:
        ids = [r.id for r in store.insert(POOL, [_task(i) for i in range(3)])]
        store.set_priority(POOL, TaskFilter(ids=(ids[2],)), 5)
        order = [store.claim(POOL, "w") for _ in range(4)]
        assert [t.id if t else None for t in order] == [ids[2], ids[0], ids[1], None]
        first = order[0]
        assert first is not None
        assert first.status is TaskStatus.RUNNING and first.attempts == 1
        assert first.worker_id == "w" and first.claimed_from is TaskStatus.WAITING
        assert first.lease_expires_at is not None and first.started_at is not None
        assert first.priority == 5 and first["_id"] == first.id and first["def"]["n"] == 2

    def test_concurrent_claims_never_share_a_task(self, store: TaskStore) -> None:
        store.insert(POOL, [_task(i) for i in range(40)])
        claimed: list[int] = []
        lock = threading.Lock()

        def work(name: str) -> None:
            while (task := store.claim(POOL, name)) is not None:
                with lock:
                    claimed.append(task.id)
                assert store.complete(task.id, name, worker_id=name)

        threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(claimed) == 40 and len(set(claimed)) == 40
        assert store.count_by_status(POOL) == {"done": 40}

    def test_claim_with_a_field_filter(self, store: TaskStore) -> None:
        store.insert(POOL, [_task(1, tag="a", flag=True), _task(2, tag="b", flag=False)])
        task = store.claim(POOL, "w", where=TaskFilter.from_query({"tag": "b"}))
        assert task is not None and task.task["n"] == 2
        assert store.claim(POOL, "w", where=TaskFilter.from_query({"n": 2})) is None
        found = store.find(POOL, TaskFilter.from_query({"model.kwargs.seed": 1}))
        assert [t.task["tag"] for t in found] == ["a"]
        assert [t.task["n"] for t in store.find(POOL, TaskFilter.from_query({"flag": True}))] == [1]
        with pytest.raises(TaskDefinitionError, match="only string, number and boolean"):
            TaskFilter.from_query({"model": {"class": "x"}})

    # ----- completing and failing ---------------------------------------------------------------

    def test_complete_checks_ownership(self, store: TaskStore) -> None:
        (res,) = store.insert(POOL, [_task(1)])
        task = store.claim(POOL, "w1")
        assert task is not None
        assert not store.complete(task.id, "x", worker_id="w2")
        assert store.complete(task.id, {"run": "abc", "ids": [1, 2]}, worker_id="w1")
        done = store.get(res.id)
        assert done.status is TaskStatus.DONE and done.result == {"run": "abc", "ids": [1, 2]}
        assert done.worker_id is None and done.finished_at is not None
        assert not store.complete(task.id, "again", worker_id="w1")  # no longer running
        with pytest.raises(TaskDefinitionError, match="result must be JSON"):
            store.complete(task.id, object())

    def test_failures_retry_then_fail_with_the_last_error(self, store: TaskStore) -> None:
        (res,) = store.insert(POOL, [_task(1)], max_attempts=2)
        task = store.claim(POOL, "w")
        assert task is not None
        assert store.fail(task.id, "boom 1", "trace 1", worker_id="w") is TaskStatus.WAITING
        assert store.get(res.id).error == "boom 1"
        task = store.claim(POOL, "w")
        assert task is not None and task.attempts == 2
        assert store.fail(task.id, "boom 2", "trace 2", worker_id="other") is None
        assert store.fail(task.id, "boom 2", "trace 2", worker_id="w") is TaskStatus.FAILED
        failed = store.get(res.id)
        assert failed.status is TaskStatus.FAILED and failed.error == "boom 2"
        assert failed.traceback == "trace 2" and failed.attempts == 2
        assert store.claim(POOL, "w") is None

    def test_release_does_not_count_the_attempt(self, store: TaskStore) -> None:
        (res,) = store.insert(POOL, [_task(1)], max_attempts=1)
        task = store.claim(POOL, "w")
        assert task is not None
        assert store.release(task.id, worker_id="w")
        back = store.get(res.id)
        assert back.status is TaskStatus.WAITING and back.attempts == 0
        assert not store.release(task.id, worker_id="w")

    # ----- leases -------------------------------------------------------------------------------

    def test_expired_lease_returns_the_task_then_fails_it(self, store: TaskStore) -> None:
        (res,) = store.insert(POOL, [_task(1)], max_attempts=2)
        task = store.claim(POOL, "dead-1", lease_seconds=0.05)
        assert task is not None
        time.sleep(0.1)
        assert store.expire_leases(POOL) == 1
        back = store.get(res.id)
        assert back.status is TaskStatus.WAITING and back.attempts == 1
        assert back.error is not None and "dead-1" in back.error
        again = store.claim(POOL, "dead-2", lease_seconds=0.05)
        assert again is not None and again.attempts == 2
        assert not store.complete(task.id, "late", worker_id="dead-1")  # lost its claim
        time.sleep(0.1)
        assert store.expire_leases(POOL) == 1
        failed = store.get(res.id)
        assert failed.status is TaskStatus.FAILED and "dead-2" in (failed.error or "")

    def test_heartbeat_keeps_the_lease(self, store: TaskStore) -> None:
        (res,) = store.insert(POOL, [_task(1)])
        task = store.claim(POOL, "w", lease_seconds=0.3)
        assert task is not None
        for _ in range(4):
            time.sleep(0.1)
            assert store.heartbeat(task.id, "w", 0.3)
        assert not store.heartbeat(task.id, "intruder", 0.3)
        assert store.expire_leases(POOL) == 0
        assert store.get(res.id).status is TaskStatus.RUNNING

    def test_claims_expire_leases_automatically(self, store: TaskStore) -> None:
        store.insert(POOL, [_task(1)])
        first = store.claim(POOL, "dead", lease_seconds=0.01)
        assert first is not None
        time.sleep(0.6)  # longer than the store's expiry check interval
        second = store.claim(POOL, "alive")
        assert second is not None and second.id == first.id and second.attempts == 2

    # ----- status management --------------------------------------------------------------------

    def test_transitions_are_enforced(self, store: TaskStore) -> None:
        ids = [r.id for r in store.insert(POOL, [_task(i) for i in range(3)])]
        with pytest.raises(TaskStateError, match="cannot go from 'waiting' to 'done'"):
            store.set_status(POOL, None, TaskStatus.DONE)
        task = store.claim(POOL, "w")
        assert task is not None
        store.complete(task.id, "r", worker_id="w")
        assert store.set_status(POOL, TaskFilter(ids=(ids[0],)), TaskStatus.WAITING) == 1
        reset = store.get(ids[0])
        assert reset.status is TaskStatus.WAITING and reset.attempts == 0
        with pytest.raises(TaskStateError, match="Unknown task status 'finished'"):
            TaskStatus.parse("finished")
        assert TaskStatus.DONE.is_finished() and not TaskStatus.PART_DONE.is_finished()

    def test_part_done_second_phase(self, store: TaskStore) -> None:
        (res,) = store.insert(POOL, [_task(1)])
        task = store.claim(POOL, "w")
        assert task is not None
        assert store.complete(task.id, "rec-1", worker_id="w", status=TaskStatus.PART_DONE)
        assert store.claim(POOL, "w") is None
        second = store.claim(POOL, "w2", status=TaskStatus.PART_DONE, lease_seconds=0.05)
        assert second is not None and second.result == "rec-1"
        assert second.claimed_from is TaskStatus.PART_DONE
        time.sleep(0.1)
        store.expire_leases(POOL)
        assert store.get(res.id).status is TaskStatus.PART_DONE
        third = store.claim(POOL, "w3", status=TaskStatus.PART_DONE)
        assert third is not None
        assert store.complete(third.id, "rec-1", worker_id="w3")
        assert store.get(res.id).status is TaskStatus.DONE

    def test_count_delete_and_missing(self, store: TaskStore) -> None:
        store.insert(POOL, [_task(i, group="g" if i % 2 else "h") for i in range(5)])
        task = store.claim(POOL, "w")
        assert task is not None
        assert store.count_by_status(POOL) == {"waiting": 4, "running": 1}
        assert store.count_by_status(POOL, TaskFilter.from_query({"group": "g"})) == {"waiting": 2}
        assert store.delete(POOL, TaskFilter.from_query({"group": "h"})) == 3
        assert store.delete(POOL) == 2
        assert store.count_by_status(POOL) == {}
        with pytest.raises(NotFoundError, match="No task with id 999999"):
            store.get(999999)

    # ----- TaskManager on top -------------------------------------------------------------------

    def test_manager_operations(self, store: TaskStore) -> None:
        tm = TaskManager(POOL, store=store)
        ids = tm.create_task([_task(i) for i in range(3)])
        assert tm.create_task([_task(1), _task(5)], dry_run=True) == [ids[1], -1]
        assert tm.create_task([_task(0)]) == [ids[0]]
        assert tm.task_stat() == {"waiting": 3}
        tm.prioritize(ids[2], 10)
        task = tm.fetch_task()
        assert task is not None and task.id == ids[2]
        tm.commit_task_res(task, "run-2")
        assert tm.re_query(ids[2]).result == "run-2"
        running = tm.fetch_task()
        assert running is not None
        assert tm.reset_waiting() == 1
        assert tm.task_stat() == {"waiting": 2, "done": 1}
        assert [t.id for t in tm.query({"status": "done"})] == [ids[2]]
        assert tm.reset_status({"_id": {"$in": [ids[2]]}}, "waiting") == 1
        assert tm.remove({"_id": ids[0]}) == 1
        assert tm.task_stat() == {"waiting": 2}
        with pytest.raises(NotFoundError, match="belongs to pool"):
            TaskManager(POOL + "-x", store=store).re_query(ids[1])
        with pytest.raises(TaskDefinitionError, match="takes a list of task dicts"):
            tm.create_task({"a": 1})  # type: ignore[arg-type]

    def test_safe_fetch_task_returns_the_task_on_errors(self, store: TaskStore) -> None:
        tm = TaskManager(POOL, store=store, max_attempts=2)
        (task_id,) = tm.create_task([_task(1)])
        with pytest.raises(RuntimeError, match="boom"), tm.safe_fetch_task() as task:
            assert task is not None
            raise RuntimeError("boom")
        after = tm.re_query(task_id)
        assert after.status is TaskStatus.WAITING and after.attempts == 1
        assert after.error == "RuntimeError: boom" and "raise RuntimeError" in (
            after.traceback or ""
        )
        with pytest.raises(KeyboardInterrupt), tm.safe_fetch_task() as task:
            raise KeyboardInterrupt
        assert tm.re_query(task_id).attempts == 1
        assert tm.re_query(task_id).status is TaskStatus.WAITING

    def test_heartbeat_thread_keeps_a_long_task(self, store: TaskStore) -> None:
        tm = TaskManager(POOL, store=store, lease_seconds=0.3)
        (task_id,) = tm.create_task([_task(1)])
        with tm.safe_fetch_task() as task:
            assert task is not None
            time.sleep(1.0)  # three leases long: only the heartbeat keeps the claim
            assert store.expire_leases(POOL) == 0
            tm.commit_task_res(task, "done-in-time")
        done = tm.re_query(task_id)
        assert done.status is TaskStatus.DONE and done.attempts == 1
        assert done.result == "done-in-time"

    def test_commit_after_losing_the_lease_is_refused(self, store: TaskStore) -> None:
        slow = TaskManager(POOL, store=store, lease_seconds=0.05, worker_id="slow")
        fast = TaskManager(POOL, store=store, worker_id="fast")
        slow.create_task([_task(1)])
        task = slow.fetch_task()
        assert task is not None
        time.sleep(0.1)
        store.expire_leases(POOL)
        stolen = fast.fetch_task()
        assert stolen is not None and stolen.id == task.id
        with pytest.raises(TaskError, match=r"cannot be committed.*held by fast"):
            slow.commit_task_res(task, "late")
        fast.commit_task_res(stolen, "ok")
        assert fast.re_query(task.id).result == "ok"

    def test_run_task_and_wait(self, store: TaskStore) -> None:
        tm = TaskManager(POOL, store=store, max_attempts=2)
        tm.create_task([{"x": i} for i in range(4)] + [{"x": -1}])
        ran = run_task(square_task, POOL, manager=tm)
        assert ran == 4 + 2  # the failing task is tried twice
        stat = tm.wait(timeout=5, progress=False)
        assert stat == {"done": 4, "failed": 1}
        results = sorted(t.result for t in tm.query({"status": "done"}))
        assert results == [0, 1, 4, 9]
        (failed,) = tm.query({"status": "failed"})
        assert failed.error == "ValueError: negative input -1"
        assert tm.retry_failed() == 1 and tm.task_stat() == {"done": 4, "waiting": 1}
        with pytest.raises(TaskError, match=r"Timed out after 0\.2s"):
            tm.wait(timeout=0.2, poll_interval=0.05, progress=False)


# ----- task functions for pool tests (importable by worker processes) -----------------------


def square_task(task: dict[str, Any], **_: Any) -> int:
    """Return ``task["x"] ** 2``; raise for a negative ``x`` (to exercise retries)."""
    x = int(task["x"])
    if x < 0:
        raise ValueError(f"negative input {x}")
    return x * x


def marker_task(task: dict[str, Any], marker_dir: str | None = None, **_: Any) -> str:
    """Sleep ``task["sleep"]`` seconds between a "started" and a "finished" marker file.

    The markers (``<key>.<token>.started`` then renamed ``.done``) let a chaos test see which
    attempts ran to the end; ``task["fail"]`` makes every attempt raise. Returns the token.
    """
    import uuid

    folder = Path(marker_dir or os.environ["ALPHALAB_TEST_MARKER_DIR"])
    token = f"{task['key']}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    started = folder / f"{token}.started"
    started.write_text(str(os.getpid()))
    time.sleep(float(task.get("sleep", 0.0)))
    if task.get("fail"):
        raise RuntimeError(f"task {task['key']} always fails")
    started.rename(folder / f"{token}.done")
    return token


def noop_task(task: dict[str, Any], **_: Any) -> int:
    """Return the task's ``i`` at once (for throughput benchmarks)."""
    return int(task.get("i", 0))


def spin_task(task: dict[str, Any], **_: Any) -> float:
    """Burn CPU for about ``task["seconds"]`` seconds (for scaling benchmarks)."""
    deadline = time.perf_counter() + float(task.get("seconds", 0.1))
    x = 0.0
    while time.perf_counter() < deadline:
        for i in range(1000):
            x += i * 0.5
    return x


def tiny_task(
    train: tuple[str, str] = ("2019-03-01", "2019-12-31"),
    valid: tuple[str, str] = ("2020-01-01", "2020-03-31"),
    test: tuple[str, str | None] = ("2020-04-01", "2020-06-30"),
    *,
    seed: int = 0,
    records: bool = True,
) -> dict[str, Any]:
    """A task dict that trains in about a second on the small simulated market.

    Three cheap features, a 2-day forward return label, LightGBM with 10 rounds; records
    ``SignalRecord`` (pred.pkl/label.pkl) when ``records``.
    """
    fields = ["$close/Ref($close,1)-1", "Mean($close,5)/$close", "Std($close,10)/$close"]
    handler = {
        "class": "DataHandlerLP",
        "module_path": "alphalab.data",
        "kwargs": {
            "instruments": "csi300",
            "start_time": train[0],
            "end_time": test[1],
            "fit_start_time": train[0],
            "fit_end_time": train[1],
            "data_loader": {
                "class": "QlibDataLoader",
                "module_path": "alphalab.data",
                "kwargs": {
                    "config": {
                        "feature": [fields, ["RET1", "MA5", "STD10"]],
                        "label": [["Ref($close,-2)/Ref($close,-1)-1"], ["LABEL0"]],
                    }
                },
            },
            "learn_processors": [{"class": "DropnaLabel", "module_path": "alphalab.data"}],
        },
    }
    task: dict[str, Any] = {
        "model": {
            "class": "LGBModel",
            "module_path": "alphalab.model",
            "kwargs": {"num_boost_round": 10, "num_leaves": 8, "num_threads": 1, "seed": seed},
        },
        "dataset": {
            "class": "DatasetH",
            "module_path": "alphalab.data",
            "kwargs": {
                "handler": handler,
                "segments": {"train": list(train), "valid": list(valid), "test": list(test)},
            },
        },
    }
    if records:
        task["record"] = [{"class": "SignalRecord", "module_path": "alphalab.workflow"}]
    return task


def pid_task(task: dict[str, Any], **_: Any) -> int:
    """Return the id of the process that ran the task."""
    return os.getpid()
