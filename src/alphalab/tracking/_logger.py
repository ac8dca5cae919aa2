"""The batched asynchronous metric logger and its local journal.

Every metric point goes first into an append-only journal file (one ``write`` per call, no
fsync: the page cache survives the death of the process), then into an in-memory buffer that a
background thread ships to the store: with one bulk insert per batch into MLflow's SQL stores
(see ``_sqlfast``), else with ``log_batch`` (at most 1000 metrics per batch, as MLflow allows).
The buffer is bounded: a producer that outruns the store waits instead of dropping points. One
thread per run ships in order, so per-key order is kept.

A failed batch keeps its points at the front of the buffer; the error is raised to the
user at the next :meth:`AsyncMetricLogger.flush` (which retries first). If the process dies
before shipping, :func:`recover_run` replays the journal and ships only the points the store
lacks.
"""

from __future__ import annotations

import atexit
import collections
import json
import math
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from alphalab.exceptions import InvalidMetricError, NotFoundError, TrackingError
from alphalab.logging import get_logger
from alphalab.tracking._store import retried

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from alphalab.tracking._sqlfast import SqlFastPath

logger = get_logger(__name__)

#: MLflow's per-request limit on metrics in one ``log_batch``.
MAX_METRICS_PER_BATCH = 1000

#: Points per transaction when batches go straight into a SQL store (no request limit there).
SQL_METRICS_PER_BATCH = 5000

#: A metric point: (key, value, timestamp in ms, step).
Point = tuple[str, float, int, int]


def now_ms() -> int:
    """Current time in milliseconds since the epoch, as MLflow stores timestamps."""
    return time.time_ns() // 1_000_000


def make_points(metrics: Mapping[str, Any], step: int | None, timestamp: int) -> list[Point]:
    """Validate ``metrics`` and turn them into points.

    Raises:
        InvalidMetricError: for a non-string key or a value that is not a real number.
    """
    if step is None:
        step = 0
    elif isinstance(step, bool) or not isinstance(step, int):
        try:
            step = int(step)  # numpy integers
        except (TypeError, ValueError):
            raise InvalidMetricError(f"A metric step must be an integer; got {step!r}") from None
    points: list[Point] = []
    for key, value in metrics.items():
        if not isinstance(key, str) or not key:
            raise InvalidMetricError(f"A metric name must be a non-empty string; got {key!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidMetricError(
                f"The value of metric {key!r} must be a real number; got {value!r} "
                f"({type(value).__name__})"
            ) from None
        points.append((key, number, timestamp, step))
    return points


#: JSON spellings of the non-finite floats (``json.loads`` reads them back).
_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


class MetricJournal:
    """Append-only file of metric points, one JSON array per line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._keys: dict[str, str] = {}  # JSON encoding of each metric name, computed once

    def append(self, points: Iterable[Point]) -> None:
        """Append points with one ``write`` call."""
        if self._fd is None:
            raise TrackingError(f"The metric journal {self.path} is closed")
        keys = self._keys
        lines = []
        for key, value, timestamp, step in points:
            encoded = keys.get(key)
            if encoded is None:
                encoded = keys[key] = json.dumps(key)
            number = repr(value) if math.isfinite(value) else _NON_FINITE[repr(value)]
            lines.append(f"[{encoded},{number},{timestamp},{step}]\n")
        data = "".join(lines).encode("utf-8")
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def close(self, *, delete: bool = False) -> None:
        """Close the file; ``delete`` removes it (everything in it is stored)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if delete:
            self.path.unlink(missing_ok=True)

    @staticmethod
    def read(path: Path) -> list[Point]:
        """Every point in the journal at ``path``; a torn last line is ignored."""
        points: list[Point] = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    key, value, timestamp, step = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a crash
                points.append((str(key), float(value), int(timestamp), int(step)))
        return points


def _to_entities(points: Iterable[Point]) -> list[Any]:
    from mlflow.entities import Metric

    return [Metric(key=k, value=v, timestamp=t, step=s) for k, v, t, s in points]


def ship_points(
    client: MlflowClient, fast: SqlFastPath | None, run_id: str, points: list[Point]
) -> None:
    """Store one batch of points (retried on transient lock errors); duplicates are skipped."""
    if fast is not None:
        retried(fast.log_metrics)(run_id, points)
    else:
        retried(client.log_batch)(run_id, metrics=_to_entities(points))


class AsyncMetricLogger:
    """Ships the points of one run to the store from a background thread."""

    def __init__(
        self,
        client: MlflowClient,
        run_id: str,
        journal: MetricJournal | None,
        *,
        max_pending: int = 100_000,
        batch_size: int | None = None,
        fast: SqlFastPath | None = None,
        max_delay: float = 1.0,
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.journal = journal
        self.max_pending = max_pending
        self.fast = fast  # bulk inserts into a SQL store; None: the client's log_batch
        limit = MAX_METRICS_PER_BATCH if fast is None else SQL_METRICS_PER_BATCH
        self.batch_size = limit if batch_size is None else min(batch_size, limit)
        # The thread ships once a full batch is waiting or the oldest point waited max_delay
        # seconds: few large transactions, and little contention with a fast logging loop.
        self.max_delay = max_delay
        self._ship_at = min(self.batch_size, max_pending)
        self._oldest = 0.0  # when the oldest point in the buffer was logged (monotonic)
        self._buffer: collections.deque[Point] = collections.deque()
        self._ship_lock = threading.RLock()
        self._stop = False
        self._paused = False  # set after a backend error until the next flush
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self.shipped = 0
        _live_loggers.add(self)

    @property
    def pending(self) -> int:
        """Points logged but not yet stored."""
        return len(self._buffer)

    def log(self, points: list[Point]) -> None:
        """Journal ``points`` and queue them for shipping (waits while the buffer is full)."""
        if self._stop:
            raise TrackingError(
                f"The metric logger of run {self.run_id} is closed; start or resume the run "
                "before logging"
            )
        if self.journal is not None:
            self.journal.append(points)
        while len(self._buffer) >= self.max_pending and not self._paused:
            time.sleep(0.001)
        if not self._buffer:
            self._oldest = time.monotonic()
        self._buffer.extend(points)
        if self._thread is None:
            install_process_hooks()
            self._thread = threading.Thread(
                target=self._run, name=f"alphalab-metrics-{self.run_id[:8]}", daemon=True
            )
            self._thread.start()

    def _take_batch(self) -> list[Point]:
        batch: list[Point] = []
        popleft = self._buffer.popleft
        try:
            while len(batch) < self.batch_size:
                batch.append(popleft())
        except IndexError:
            pass
        return batch

    def _ship_one(self) -> bool:
        """Ship one batch; return False if there was nothing to ship. Holds the ship lock."""
        with self._ship_lock:
            batch = self._take_batch()
            if not batch:
                return False
            try:
                ship_points(self.client, self.fast, self.run_id, batch)
            except BaseException:
                self._buffer.extendleft(reversed(batch))
                raise
            self.shipped += len(batch)
            return True

    def _run(self) -> None:
        # The thread polls instead of being woken: the logging (main) thread then never takes
        # a lock that a signal handler interrupting it could need (see install_process_hooks).
        while not self._stop:
            time.sleep(0.01)
            if (
                len(self._buffer) < self._ship_at
                and time.monotonic() - self._oldest < self.max_delay
            ):
                continue
            while self._buffer and not self._paused and not self._stop:
                try:
                    self._ship_one()
                except Exception as e:
                    self._error = e
                    self._paused = True
                    logger.warning(
                        "Could not store metrics of run %s (%s); %d points are kept and will "
                        "be retried at the next flush",
                        self.run_id,
                        e,
                        len(self._buffer),
                    )

    def flush(self, timeout: float | None = None) -> None:
        """Ship everything logged so far, in this thread.

        Raises:
            TrackingError: if the store rejects a batch; the points stay pending (and in the
                journal) and the next flush retries them.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._ship_lock.acquire(timeout=-1 if timeout is None else timeout):
            raise TrackingError(f"Timed out flushing metrics of run {self.run_id}")
        try:
            self._paused = False
            self._error = None
            while self._buffer:
                if deadline is not None and time.monotonic() > deadline:
                    raise TrackingError(f"Timed out flushing metrics of run {self.run_id}")
                try:
                    self._ship_one()
                except Exception as e:
                    self._paused = True
                    where = f" (journal: {self.journal.path})" if self.journal else ""
                    raise TrackingError(
                        f"Could not store {len(self._buffer)} metric points of run "
                        f"{self.run_id}: {e}. They are kept{where}; retry with recorder.flush() "
                        f"or `alphalab exp recover {self.run_id}`"
                    ) from e
        finally:
            self._ship_lock.release()

    def close(self) -> None:
        """Flush, stop the thread and close (and delete) the journal once all is stored."""
        try:
            self.flush()
        finally:
            self._stop = True
            if self._thread is not None and self._thread is not threading.current_thread():
                self._thread.join(timeout=5)
            _live_loggers.discard(self)
            if self.journal is not None:
                self.journal.close(delete=not self._buffer)


#: Loggers with a running thread, flushed at interpreter exit and on SIGTERM.
_live_loggers: weakref.WeakSet[AsyncMetricLogger] = weakref.WeakSet()


def flush_all(timeout: float | None = 30.0) -> None:
    """Best-effort flush of every live logger (exit and signal handlers)."""
    for log in list(_live_loggers):
        try:
            log.flush(timeout=timeout)
        except Exception as e:
            logger.error("Metrics of run %s were not all stored: %s", log.run_id, e)


_terminate_callbacks: list[Callable[[], None]] = []
_hooks_pid: int | None = None


def on_terminate(callback: Callable[[], None]) -> None:
    """Run ``callback`` on SIGTERM after every logger is flushed (e.g. to mark runs KILLED)."""
    if callback not in _terminate_callbacks:
        _terminate_callbacks.append(callback)


def install_process_hooks() -> None:
    """Flush every logger at interpreter exit and on SIGTERM (once per process).

    The SIGTERM handler ships what is pending, runs the :func:`on_terminate` callbacks, then
    hands the signal to the previous handler (or dies of it, as without alphalab). It is only
    installed from the main thread, and not when the application ignores SIGTERM.
    """
    global _hooks_pid
    if _hooks_pid == os.getpid():
        return
    _hooks_pid = os.getpid()
    atexit.register(close_all)
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_IGN or getattr(previous, "_alphalab_handler", False):
        return

    def clean_up() -> None:
        flush_all(timeout=30)
        for callback in list(_terminate_callbacks):
            try:
                callback()
            except Exception as e:
                logger.error("SIGTERM clean-up failed: %s", e)
        close_all()

    def handler(signum: int, frame: FrameType | None) -> None:
        # The handler interrupts the main thread anywhere, possibly holding a lock (a database
        # pool's, a logger's). The clean-up runs in a thread of its own and is given a bounded
        # time, so such a lock can delay it but never hang the process; whatever it could not
        # ship stays in the journal for `alphalab exp recover`.
        helper = threading.Thread(target=clean_up, name="alphalab-sigterm", daemon=True)
        helper.start()
        helper.join(timeout=60)
        if callable(previous):
            previous(signum, frame)
            return
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    handler._alphalab_handler = True  # type: ignore[attr-defined]
    signal.signal(signal.SIGTERM, handler)


def close_all() -> None:
    """Flush and close every live logger (interpreter exit)."""
    for log in list(_live_loggers):
        try:
            log.close()
        except Exception as e:
            logger.error("Metrics of run %s were not all stored: %s", log.run_id, e)


def _identity(key: str, value: float, timestamp: int, step: int) -> tuple[Any, ...]:
    return (key, "nan" if math.isnan(value) else value, timestamp, step)


@dataclass(frozen=True)
class RecoveryResult:
    """Outcome of :func:`recover_run`."""

    run_id: str
    journal: Path
    in_journal: int
    already_stored: int
    shipped: int
    marked_killed: bool = False  # the run was RUNNING but its process is dead: now KILLED


def missing_points(client: MlflowClient, run_id: str, points: list[Point]) -> list[Point]:
    """The journal points that the store does not hold yet (multiset difference)."""
    stored: collections.Counter[tuple[Any, ...]] = collections.Counter()
    for key in sorted({p[0] for p in points}):
        for m in client.get_metric_history(run_id, key):
            stored[_identity(m.key, m.value, m.timestamp, m.step)] += 1
    missing: list[Point] = []
    for point in points:
        ident = _identity(*point)
        if stored[ident] > 0:
            stored[ident] -= 1
        else:
            missing.append(point)
    return missing


def recover_run(
    client: MlflowClient, run_id: str, journal_path: Path, fast: SqlFastPath | None = None
) -> RecoveryResult:
    """Ship the points of a run's journal that the store lacks, without duplicates.

    Raises:
        NotFoundError: if the journal file does not exist.
    """
    if not journal_path.exists():
        raise NotFoundError(
            f"No metric journal for run {run_id} at {journal_path}; recover must run on the "
            "machine (and with the same settings) where the run was logged"
        )
    points = MetricJournal.read(journal_path)
    missing = missing_points(client, run_id, points)
    size = MAX_METRICS_PER_BATCH if fast is None else SQL_METRICS_PER_BATCH
    for start in range(0, len(missing), size):
        ship_points(client, fast, run_id, missing[start : start + size])
    return RecoveryResult(
        run_id=run_id,
        journal=journal_path,
        in_journal=len(points),
        already_stored=len(points) - len(missing),
        shipped=len(missing),
    )
