"""``TaskManager``: Qlib's task pool operations over a SQL task store, and ``run_task``."""

from __future__ import annotations

import contextlib
import inspect
import os
import socket
import sys
import threading
import time
import traceback as tb
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from alphalab.exceptions import NotFoundError, TaskDefinitionError, TaskError
from alphalab.logging import get_logger
from alphalab.tasks.store import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    TaskFilter,
    TaskRecord,
    TaskStatus,
    TaskStore,
    get_task_store,
    task_hash,
)

logger = get_logger(__name__)

Query = Mapping[str, Any] | None


def result_value(res: Any) -> Any:
    """What the pool stores for a task function's return value: a Recorder becomes its run id."""
    tracking = sys.modules.get("alphalab.tracking")  # not imported: res cannot be a Recorder
    if tracking is not None and isinstance(res, tracking.Recorder):
        return res.id
    return res


def new_worker_id() -> str:
    """A worker id that says where the worker runs: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Heartbeat:
    """Renew the leases of the tasks a worker holds, from one background thread.

    The thread starts with the first tracked task and ends at the first beat with no task
    held, so claiming many short tasks costs no thread start or join per task.
    :meth:`lost` says whether the store refused a renewal (the lease expired and another
    worker took the task); the worker must then not commit a result.
    """

    def __init__(self, store: TaskStore, worker_id: str, lease_seconds: float) -> None:
        self._store = store
        self._worker_id = worker_id
        self._lease = lease_seconds
        self._tasks: dict[int, bool] = {}  # task id -> lost
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def track(self, task_id: int) -> None:
        """Start renewing the lease of ``task_id``."""
        with self._lock:
            self._tasks[task_id] = False
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"alphalab-heartbeat-{self._worker_id}", daemon=True
                )
                self._thread.start()

    def untrack(self, task_id: int) -> bool:
        """Stop renewing ``task_id``; return whether its lease was lost meanwhile."""
        with self._lock:
            return self._tasks.pop(task_id, False)

    def lost(self, task_id: int) -> bool:
        """Whether the store refused to renew the lease of ``task_id``."""
        with self._lock:
            return self._tasks.get(task_id, False)

    def _run(self) -> None:
        interval = max(self._lease / 3.0, 0.05)
        while True:
            time.sleep(interval)
            with self._lock:
                if not self._tasks:  # idle: end; the next track() starts a new thread
                    self._thread = None
                    return
                held = [task_id for task_id, lost in self._tasks.items() if not lost]
            for task_id in held:
                try:
                    renewed = self._store.heartbeat(task_id, self._worker_id, self._lease)
                except Exception as e:  # a transient database error: try again next beat
                    logger.warning("Heartbeat of task %s failed: %s", task_id, e)
                    continue
                if renewed:
                    continue
                with self._lock:
                    if task_id not in self._tasks:
                        continue  # finished meanwhile: nothing was lost
                    self._tasks[task_id] = True
                logger.warning(
                    "Lost the lease on task %s (worker %s); its result will be discarded",
                    task_id,
                    self._worker_id,
                )


class TaskManager:
    """One task pool in a task store (Qlib's ``TaskManager``, on SQL instead of MongoDB).

    Args:
        task_pool: Name of the pool (Qlib's collection name).
        uri: Task store URI (default: the ``task_uri`` setting: SQLite under
            ``./alphalab-runs/tasks.db``; PostgreSQL for several machines).
        lease_seconds: How long a claim lasts without a heartbeat.
        max_attempts: Claims a new task gets before it is marked failed.
        worker_id: Identity used for claims (default: ``host:pid:random``).
        store: A task store to use instead of opening ``uri``.
    """

    STATUS_WAITING = TaskStatus.WAITING
    STATUS_RUNNING = TaskStatus.RUNNING
    STATUS_PART_DONE = TaskStatus.PART_DONE
    STATUS_DONE = TaskStatus.DONE
    STATUS_FAILED = TaskStatus.FAILED

    def __init__(
        self,
        task_pool: str,
        uri: str | None = None,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        worker_id: str | None = None,
        store: TaskStore | None = None,
    ) -> None:
        if not task_pool or not isinstance(task_pool, str):
            raise TaskDefinitionError(f"A task pool needs a non-empty name; got {task_pool!r}")
        if lease_seconds <= 0:
            raise TaskDefinitionError(f"lease_seconds must be > 0; got {lease_seconds}")
        self.task_pool = task_pool
        self.store = store if store is not None else get_task_store(uri)
        self.lease_seconds = float(lease_seconds)
        self.max_attempts = int(max_attempts)
        self.worker_id = worker_id or new_worker_id()
        self._heartbeat = Heartbeat(self.store, self.worker_id, self.lease_seconds)

    # ----- creating ---------------------------------------------------------------------------

    def create_task(
        self,
        task_def_l: Sequence[Mapping[str, Any]],
        dry_run: bool = False,
        print_nt: bool = False,
        *,
        priority: int = 0,
        max_attempts: int | None = None,
    ) -> list[int]:
        """Queue task definitions; a task already in the pool is not added twice.

        Returns the id of every task in order (existing ones included). With ``dry_run`` nothing
        is written and the ids of new tasks are -1; ``print_nt`` logs the new tasks.
        """
        if isinstance(task_def_l, Mapping):
            raise TaskDefinitionError("create_task takes a list of task dicts; got one dict")
        tasks = list(task_def_l)
        if dry_run:
            existing = {r.task_hash: r.id for r in self.store.find(self.task_pool)}
            ids = [existing.get(task_hash(t), -1) for t in tasks]
            if print_nt:
                for task, task_id in zip(tasks, ids, strict=True):
                    if task_id == -1:
                        logger.info("New task (dry run): %s", task)
            return ids
        results = self.store.insert(
            self.task_pool,
            tasks,
            priority=priority,
            max_attempts=self.max_attempts if max_attempts is None else max_attempts,
        )
        created = sum(r.created for r in results)
        logger.info(
            "Task pool %s: %d new task(s), %d already queued",
            self.task_pool,
            created,
            len(results) - created,
        )
        if print_nt:
            for task, result in zip(tasks, results, strict=True):
                if result.created:
                    logger.info("New task %d: %s", result.id, task)
        return [r.id for r in results]

    def insert_task_def(self, task_def: Mapping[str, Any]) -> int:
        """Queue one task definition and return its id."""
        return self.create_task([task_def])[0]

    # ----- claiming ---------------------------------------------------------------------------

    def fetch_task(
        self, query: Query = None, status: TaskStatus | str = TaskStatus.WAITING
    ) -> TaskRecord | None:
        """Claim one task in ``status`` (atomically) and return it running, or None."""
        where = TaskFilter.from_query(query)
        return self.store.claim(
            self.task_pool,
            self.worker_id,
            lease_seconds=self.lease_seconds,
            where=where,
            status=TaskStatus.parse(status),
        )

    @contextlib.contextmanager
    def safe_fetch_task(
        self, query: Query = None, status: TaskStatus | str = TaskStatus.WAITING
    ) -> Iterator[TaskRecord | None]:
        """Claim a task for the ``with`` block, keeping its lease alive meanwhile.

        On an exception the error is recorded and the task goes back to its previous status
        (or ``failed`` once it used up its attempts); on KeyboardInterrupt/SystemExit it goes
        back without counting the attempt. The block must commit the result itself.
        """
        task = self.fetch_task(query, status)
        if task is None:
            yield None
            return
        self._heartbeat.track(task.id)
        try:
            yield task
        except Exception as e:
            self._heartbeat.untrack(task.id)
            new = self.store.fail(
                task.id, f"{type(e).__name__}: {e}", tb.format_exc(), worker_id=self.worker_id
            )
            logger.error("Task %d failed (%s); now %s", task.id, e, new or "owned by another")
            raise
        except BaseException:
            self._heartbeat.untrack(task.id)
            self.store.release(task.id, worker_id=self.worker_id)
            logger.warning("Task %d returned to the pool (interrupted)", task.id)
            raise
        finally:
            self._heartbeat.untrack(task.id)

    def task_fetcher_iter(self, query: Query = None) -> Iterator[TaskRecord]:
        """Claim tasks one by one until none is left (each inside ``safe_fetch_task``)."""
        while True:
            with self.safe_fetch_task(query) as task:
                if task is None:
                    return
                yield task

    # ----- reading ----------------------------------------------------------------------------

    def query(self, query: Query = None, decode: bool = True) -> Iterator[TaskRecord]:
        """Every task of the pool matching ``query`` (see :meth:`TaskFilter.from_query`)."""
        del decode  # tasks are JSON: there is nothing to decode
        yield from self.store.find(self.task_pool, TaskFilter.from_query(query))

    def re_query(self, _id: int) -> TaskRecord:
        """The current state of one task of this pool."""
        record = self.store.get(int(_id))
        if record.pool != self.task_pool:
            raise NotFoundError(
                f"Task {_id} belongs to pool {record.pool!r}, not {self.task_pool!r}"
            )
        return record

    def task_stat(self, query: Query = None) -> dict[str, int]:
        """Number of tasks per status (counted in the database)."""
        return self.store.count_by_status(self.task_pool, TaskFilter.from_query(query))

    # ----- writing ----------------------------------------------------------------------------

    def commit_task_res(
        self, task: TaskRecord, res: Any, status: TaskStatus | str = TaskStatus.DONE
    ) -> None:
        """Store the result of a running task (a Recorder is stored as its run id).

        Raises:
            TaskError: when the task is no longer held by this manager's worker (its lease
                expired and it was claimed again).
        """
        res = result_value(res)
        owner = task.worker_id if task.worker_id == self.worker_id else None
        if not self.store.complete(task.id, res, worker_id=owner, status=TaskStatus.parse(status)):
            current = self.store.get(task.id)
            raise TaskError(
                f"Task {task.id} cannot be committed: it is {current.status.value} and held by "
                f"{current.worker_id or 'no worker'}, not running for {self.worker_id} (its "
                "lease may have expired; raise lease_seconds for long tasks)"
            )

    def return_task(self, task: TaskRecord, status: TaskStatus | str | None = None) -> None:
        """Give a running task back (to ``status``, default: where it was claimed from)."""
        target = None if status is None else TaskStatus.parse(status)
        if not self.store.release(task.id, status=target):
            raise TaskError(f"Task {task.id} is not running; nothing to return")

    def remove(self, query: Query = None) -> int:
        """Delete matching tasks (every task of the pool with no query); return how many."""
        return self.store.delete(self.task_pool, TaskFilter.from_query(query))

    def reset_waiting(self, query: Query = None) -> int:
        """Send running tasks back to waiting (e.g. after all workers were stopped)."""
        where = TaskFilter.from_query(query, status=[TaskStatus.RUNNING])
        return self.store.set_status(self.task_pool, where, TaskStatus.WAITING)

    def reset_status(self, query: Query, status: TaskStatus | str) -> int:
        """Move matching tasks to ``status`` (allowed transitions only); return how many."""
        return self.store.set_status(
            self.task_pool, TaskFilter.from_query(query), TaskStatus.parse(status)
        )

    def retry_failed(self, query: Query = None) -> int:
        """Give failed tasks a fresh set of attempts."""
        where = TaskFilter.from_query(query, status=[TaskStatus.FAILED])
        return self.store.set_status(self.task_pool, where, TaskStatus.WAITING)

    def prioritize(self, task: TaskRecord | int, priority: int) -> None:
        """Set a task's priority (higher is claimed first)."""
        task_id = task if isinstance(task, int) else task.id
        if not self.store.set_priority(self.task_pool, TaskFilter(ids=(task_id,)), priority):
            raise NotFoundError(f"No task {task_id} in pool {self.task_pool!r}")

    # ----- waiting ----------------------------------------------------------------------------

    def wait(
        self,
        query: Query = None,
        *,
        poll_interval: float = 1.0,
        timeout: float | None = None,
        progress: bool = True,
        pending: Iterable[TaskStatus | str] = (TaskStatus.WAITING, TaskStatus.RUNNING),
    ) -> dict[str, int]:
        """Block until no matching task is waiting or running; return the final counts.

        ``pending`` names the statuses that count as unfinished (e.g. ``part_done`` and
        ``running`` while a second phase runs).

        Polls one ``GROUP BY`` count per ``poll_interval`` seconds (cheap at any pool size) and
        shows a Rich progress bar of finished tasks.

        Raises:
            TaskError: when ``timeout`` seconds pass first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        busy_statuses = [TaskStatus.parse(s).value for s in pending]
        stat = self.task_stat(query)
        with _progress(progress, f"pool {self.task_pool}") as bar:
            while True:
                total = sum(stat.values())
                busy = sum(stat.get(s, 0) for s in busy_statuses)
                bar(total - busy, total)
                if busy == 0:
                    return stat
                if deadline is not None and time.monotonic() > deadline:
                    raise TaskError(
                        f"Timed out after {timeout}s waiting for pool {self.task_pool!r}: "
                        f"{stat}; are workers running (`alphalab worker --pool "
                        f"{self.task_pool}`)?"
                    )
                time.sleep(poll_interval)
                stat = self.task_stat(query)

    @staticmethod
    def list(uri: str | None = None) -> list[str]:
        """Names of the pools in the task store at ``uri``."""
        return get_task_store(uri).pools()

    def __repr__(self) -> str:
        return f"TaskManager(task_pool={self.task_pool!r}, uri={self.store.uri!r})"


@contextlib.contextmanager
def _progress(enabled: bool, label: str) -> Iterator[Callable[[int, int], None]]:
    if not enabled:
        yield lambda done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        f"[bold]{label}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True
    ) as progress:
        bar = progress.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            progress.update(bar, completed=done, total=total)

        yield update


def _call(task_func: Callable[..., Any], task: TaskRecord, with_record: bool, kwargs: Any) -> Any:
    return task_func(task if with_record else task.task, **kwargs)


def run_task(
    task_func: Callable[..., Any],
    task_pool: str,
    query: Query = None,
    force_release: bool = False,
    before_status: TaskStatus | str = TaskStatus.WAITING,
    after_status: TaskStatus | str = TaskStatus.DONE,
    *,
    uri: str | None = None,
    max_tasks: int | None = None,
    wait: bool = False,
    poll_interval: float = 1.0,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    with_record: bool = False,
    manager: TaskManager | None = None,
    stop: threading.Event | None = None,
    **kwargs: Any,
) -> int:
    """Claim tasks of ``task_pool`` and run ``task_func(task_def, **kwargs)`` on each.

    The return value is committed as the task's result (a Recorder becomes its run id). A
    raised exception is recorded on the task, which is retried until it used its attempts.

    Args:
        task_func: Called as ``task_func(task_def, **kwargs)`` for each claimed task.
        task_pool: Name of the pool.
        query: Only claim tasks matching this query (see :meth:`TaskFilter.from_query`).
        force_release: Run each task in a fresh process (frees GPU/memory after each task);
            ``task_func`` must then be importable (a module-level function).
        before_status: Claim tasks in this status.
        after_status: Commit finished tasks with this status.
        max_tasks: Stop after this many tasks (None: until the pool is empty).
        wait: Keep polling for new tasks forever. Without it the loop ends once no matching
            task is waiting or running (running ones are waited for: a dead worker's task
            comes back when its lease expires).
        with_record: Pass the :class:`TaskRecord` instead of the task definition.
        stop: An event that ends the loop between tasks.
        uri: Task store URI (default: the ``task_uri`` setting).
        poll_interval: Seconds between polls of an empty pool with ``wait``.
        lease_seconds: Lease of each claim (renewed by a heartbeat while the task runs).
        manager: A TaskManager to claim through (instead of one built from the above).
        **kwargs: Passed on to ``task_func``.

    Returns:
        How many tasks this call ran (successfully or not).
    """
    tm = manager or TaskManager(task_pool, uri, lease_seconds=lease_seconds)
    before, after = TaskStatus.parse(before_status), TaskStatus.parse(after_status)
    if not callable(task_func):
        raise TaskDefinitionError(f"task_func must be callable; got {task_func!r}")
    if force_release and (inspect.isfunction(task_func) and "<locals>" in task_func.__qualname__):
        raise TaskDefinitionError(
            "force_release runs tasks in a fresh process, so task_func must be a module-level "
            f"function; {task_func.__qualname__} is local"
        )
    ran = 0
    while max_tasks is None or ran < max_tasks:
        if stop is not None and stop.is_set():
            break
        try:
            with tm.safe_fetch_task(query, status=before) as task:
                if task is None:
                    if not wait and not _others_running(tm, query):
                        break
                    time.sleep(poll_interval)
                    continue
                ran += 1
                logger.info("Worker %s runs task %d of pool %s", tm.worker_id, task.id, task_pool)
                started = time.perf_counter()
                if force_release:
                    result = _run_in_subprocess(task_func, task, with_record, kwargs)
                else:
                    result = _call(task_func, task, with_record, kwargs)
                tm.commit_task_res(task, result, status=after)
                elapsed = time.perf_counter() - started
                logger.info("Task %d %s in %.1fs", task.id, after.value, elapsed)
        except Exception as e:  # recorded on the task by safe_fetch_task; go on with the next
            logger.debug("Task failed: %s", e)
    return ran


def _others_running(tm: TaskManager, query: Query) -> bool:
    """Whether matching tasks are still running elsewhere (they may come back on failure)."""
    return tm.task_stat(query).get(TaskStatus.RUNNING.value, 0) > 0


def _run_in_subprocess(
    task_func: Callable[..., Any], task: TaskRecord, with_record: bool, kwargs: Any
) -> Any:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as executor:
        result = executor.submit(_call_for_result, task_func, task, with_record, kwargs).result()
    return result


def _call_for_result(
    task_func: Callable[..., Any], task: TaskRecord, with_record: bool, kwargs: Any
) -> Any:
    return result_value(_call(task_func, task, with_record, kwargs))


def pending_ids(tm: TaskManager, ids: Iterable[int]) -> list[int]:
    """The ids among ``ids`` that are still waiting or running."""
    where = {"_id": list(ids)}
    busy = (TaskStatus.WAITING, TaskStatus.RUNNING)
    return [t.id for t in tm.query(where) if t.status in busy]
