"""The task store interface: statuses, the frozen task record, canonical task identity."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from alphalab.exceptions import TaskDefinitionError, TaskStateError

#: Default number of claims a task gets before it is marked failed.
DEFAULT_MAX_ATTEMPTS = 3
#: Default lease a worker holds on a claimed task (renewed by its heartbeat).
DEFAULT_LEASE_SECONDS = 60.0


class TaskStatus(enum.StrEnum):
    """Status of a task in the pool; the values are the strings stored in the database."""

    WAITING = "waiting"
    RUNNING = "running"
    PART_DONE = "part_done"
    DONE = "done"
    FAILED = "failed"

    def is_finished(self) -> bool:
        """Whether nothing more happens to the task unless someone resets it."""
        return self in (TaskStatus.DONE, TaskStatus.FAILED)

    def can_become(self, target: TaskStatus) -> bool:
        """Whether the allowed-transition table lets a task move to ``target``."""
        return target in TRANSITIONS[self]

    def check_transition(self, target: TaskStatus) -> None:
        """Raise :class:`TaskStateError` unless a task may move from this status to ``target``."""
        if not self.can_become(target):
            allowed = ", ".join(s.value for s in TRANSITIONS[self]) or "none"
            raise TaskStateError(
                f"A task cannot go from {self.value!r} to {target.value!r} (allowed from "
                f"{self.value!r}: {allowed})"
            )

    @classmethod
    def parse(cls, value: TaskStatus | str) -> TaskStatus:
        """Return the status named by ``value`` (case-insensitive)."""
        if isinstance(value, TaskStatus):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise TaskStateError(
                f"Unknown task status {value!r}; expected one of: {names}"
            ) from None


#: The one table of allowed status changes, enforced by every store.
#: waiting -> running (claimed); running -> done/part_done (committed), waiting (returned,
#: lease expired, retry), failed (attempts exhausted); part_done -> running (second phase),
#: waiting or done; done/failed -> waiting (reset by a user).
TRANSITIONS: Mapping[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.WAITING: frozenset({TaskStatus.RUNNING}),
    TaskStatus.RUNNING: frozenset(
        {TaskStatus.WAITING, TaskStatus.PART_DONE, TaskStatus.DONE, TaskStatus.FAILED}
    ),
    TaskStatus.PART_DONE: frozenset({TaskStatus.RUNNING, TaskStatus.WAITING, TaskStatus.DONE}),
    TaskStatus.DONE: frozenset({TaskStatus.WAITING}),
    TaskStatus.FAILED: frozenset({TaskStatus.WAITING}),
}


def _to_json_value(value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TaskDefinitionError(f"{where} is {value!r}; task definitions need finite numbers")
        return value
    if isinstance(value, dt.datetime | dt.date):
        # pandas Timestamps are datetimes; midnight datetimes become plain dates.
        if isinstance(value, dt.datetime) and value.time() == dt.time(0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TaskDefinitionError(
                    f"{where} has the non-string key {key!r}; task definitions are JSON objects"
                )
            out[key] = _to_json_value(item, f"{where}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [_to_json_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise TaskDefinitionError(
        f"{where} is a {type(value).__name__}, which the task pool cannot store: task "
        "definitions are JSON (strings, numbers, lists, mappings, dates), never pickled "
        "objects; describe the object as a {class, module_path, kwargs} component instead"
    )


def normalize_task(task: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``task`` as plain JSON data (dates as ISO strings, tuples as lists).

    Raises:
        TaskDefinitionError: for a value JSON cannot hold (an object, NaN, a non-string key).
    """
    if not isinstance(task, Mapping):
        raise TaskDefinitionError(f"A task definition must be a mapping; got {type(task).__name__}")
    result: dict[str, Any] = _to_json_value(task, "task")
    return result


def canonical_json(value: Any) -> str:
    """The canonical JSON text of ``value``: sorted keys, no spaces, so order never matters."""
    return json.dumps(
        _to_json_value(value, "value"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def task_hash(task: Mapping[str, Any]) -> str:
    """The identity of a task: SHA-256 of its canonical JSON (key order does not matter)."""
    return hashlib.sha256(canonical_json(normalize_task(task)).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TaskRecord:
    """One task of a pool as read from the store (a frozen snapshot, never a live row)."""

    id: int
    pool: str
    task: dict[str, Any]
    task_hash: str
    status: TaskStatus
    priority: int
    attempts: int
    max_attempts: int
    worker_id: str | None
    lease_expires_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    error: str | None
    traceback: str | None
    result: Any
    #: The status the task had when it was claimed (what ``return_task`` restores).
    claimed_from: TaskStatus | None = None

    def __getitem__(self, key: str) -> Any:
        """Qlib-style access to ``def``, ``_id``, ``status`` and ``res``."""
        aliases = {
            "def": self.task,
            "_id": self.id,
            "status": self.status.value,
            "res": self.result,
        }
        if key in aliases:
            return aliases[key]
        raise KeyError(f"{key!r}; a task record has 'def', '_id', 'status' and 'res'")


@dataclass(frozen=True)
class TaskFilter:
    """Which tasks an operation applies to: all conditions must hold.

    Attributes:
        ids: Only these task ids (None: any).
        statuses: Only tasks in these statuses (None: any).
        fields: Dotted paths into the task definition and the value each must equal (strings,
            numbers and booleans).
    """

    ids: tuple[int, ...] | None = None
    statuses: tuple[TaskStatus, ...] | None = None
    fields: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def from_query(
        cls, query: Mapping[str, Any] | None, status: Iterable[TaskStatus | str] | None = None
    ) -> TaskFilter:
        """Build a filter from a Qlib-style query dict.

        ``{"_id": 3}``, ``{"_id": [1, 2]}`` or ``{"_id": {"$in": [1, 2]}}`` select ids;
        ``{"status": "waiting"}`` selects a status; any other key is a dotted path into the
        task definition compared for equality (``{"model.class": "LGBModel"}``).
        """
        ids: tuple[int, ...] | None = None
        statuses = None if status is None else tuple(TaskStatus.parse(s) for s in status)
        fields: list[tuple[str, Any]] = []
        for key, value in (query or {}).items():
            if key in ("_id", "id"):
                ids = _as_ids(value)
            elif key == "status":
                values: Any = value.get("$in") if isinstance(value, Mapping) else value
                items = values if isinstance(values, list | tuple) else [values]
                wanted = tuple(TaskStatus.parse(v) for v in items)
                statuses = wanted if statuses is None else tuple(s for s in statuses if s in wanted)
            else:
                if not isinstance(value, str | int | float | bool):
                    raise TaskDefinitionError(
                        f"Query key {key!r}: only string, number and boolean values can be "
                        f"matched; got {value!r}"
                    )
                path = key[len("def.") :] if key.startswith("def.") else key
                fields.append((path, value))
        return cls(ids=ids, statuses=statuses, fields=tuple(fields))


def _as_ids(value: Any) -> tuple[int, ...]:
    if isinstance(value, Mapping):
        if set(value) != {"$in"}:
            raise TaskDefinitionError(f"An '_id' query supports only '$in'; got {dict(value)!r}")
        value = value["$in"]
    items = value if isinstance(value, list | tuple | set | frozenset) else [value]
    try:
        return tuple(int(v) for v in items)
    except (TypeError, ValueError):
        raise TaskDefinitionError(f"Task ids are integers; got {value!r}") from None


@dataclass(frozen=True)
class InsertResult:
    """Outcome of inserting one task: its id and whether it was new."""

    id: int
    created: bool


class TaskStore(ABC):
    """Persistent task pools. Every method is atomic; races come back as return values."""

    @property
    @abstractmethod
    def uri(self) -> str:
        """Where the store lives."""

    @abstractmethod
    def insert(
        self,
        pool: str,
        tasks: Sequence[Mapping[str, Any]],
        *,
        priority: int = 0,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> list[InsertResult]:
        """Insert tasks; a task already in ``pool`` (same canonical JSON) keeps its row."""

    @abstractmethod
    def claim(
        self,
        pool: str,
        worker_id: str,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        where: TaskFilter | None = None,
        status: TaskStatus = TaskStatus.WAITING,
    ) -> TaskRecord | None:
        """Atomically move the highest-priority task in ``status`` to running for ``worker_id``.

        Counts one attempt; returns None when no task is available.
        """

    @abstractmethod
    def heartbeat(self, task_id: int, worker_id: str, lease_seconds: float) -> bool:
        """Renew the lease of a running task; False when ``worker_id`` no longer holds it."""

    @abstractmethod
    def complete(
        self,
        task_id: int,
        result: Any,
        *,
        worker_id: str | None = None,
        status: TaskStatus = TaskStatus.DONE,
    ) -> bool:
        """Store the result of a running task and move it to ``status``.

        With ``worker_id`` the task must still be held by that worker (else False: the lease
        was lost and someone else owns it). Without, any running task can be completed.
        """

    @abstractmethod
    def fail(
        self,
        task_id: int,
        error: str,
        traceback: str | None = None,
        *,
        worker_id: str | None = None,
        retry_status: TaskStatus | None = None,
    ) -> TaskStatus | None:
        """Record an error of a running task; back to its previous status or ``failed``.

        Returns the new status (``failed`` once attempts reach max_attempts), or None when
        ``worker_id`` no longer holds the task.
        """

    @abstractmethod
    def release(
        self, task_id: int, *, worker_id: str | None = None, status: TaskStatus | None = None
    ) -> bool:
        """Give a running task back without counting the attempt (e.g. on Ctrl-C)."""

    @abstractmethod
    def expire_leases(self, pool: str | None = None) -> int:
        """Return running tasks whose lease ended to the pool (or fail them); count them."""

    @abstractmethod
    def get(self, task_id: int) -> TaskRecord:
        """One task by id (raises NotFoundError)."""

    @abstractmethod
    def find(
        self, pool: str, where: TaskFilter | None = None, *, limit: int | None = None
    ) -> list[TaskRecord]:
        """Tasks of ``pool`` matching ``where``, by id."""

    @abstractmethod
    def count_by_status(self, pool: str, where: TaskFilter | None = None) -> dict[str, int]:
        """Number of tasks per status (computed in the database); statuses with none omitted."""

    @abstractmethod
    def set_status(self, pool: str, where: TaskFilter | None, status: TaskStatus) -> int:
        """Move matching tasks to ``status`` (checked against the transition table).

        Tasks already in ``status`` are left alone. Moving to waiting resets attempts, the
        worker and the lease. Raises TaskStateError if a matching task may not move.
        """

    @abstractmethod
    def set_priority(self, pool: str, where: TaskFilter | None, priority: int) -> int:
        """Set the priority of matching tasks; return how many."""

    @abstractmethod
    def delete(self, pool: str, where: TaskFilter | None = None) -> int:
        """Delete matching tasks; return how many."""

    @abstractmethod
    def pools(self) -> list[str]:
        """Names of the pools holding at least one task."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release connections."""
