"""Task pools, workers, trainers, rolling task generation, collectors and ensembles."""

from alphalab.tasks._manager import Heartbeat, TaskManager, new_worker_id, run_task
from alphalab.tasks._worker import (
    DEFAULT_TASK_FUNC,
    WorkerOptions,
    resolve_task_func,
    train_task,
    work,
)
from alphalab.tasks.store import (
    TRANSITIONS,
    SqlTaskStore,
    TaskFilter,
    TaskRecord,
    TaskStatus,
    TaskStore,
    canonical_json,
    get_task_store,
    task_hash,
)

__all__ = [
    "DEFAULT_TASK_FUNC",
    "TRANSITIONS",
    "Heartbeat",
    "SqlTaskStore",
    "TaskFilter",
    "TaskManager",
    "TaskRecord",
    "TaskStatus",
    "TaskStore",
    "WorkerOptions",
    "canonical_json",
    "get_task_store",
    "new_worker_id",
    "resolve_task_func",
    "run_task",
    "task_hash",
    "train_task",
    "work",
]
