"""Task pools, workers, trainers, rolling task generation, collectors and ensembles."""

from alphalab.tasks._manager import Heartbeat, TaskManager, new_worker_id, run_task
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
    "TRANSITIONS",
    "Heartbeat",
    "SqlTaskStore",
    "TaskFilter",
    "TaskManager",
    "TaskRecord",
    "TaskStatus",
    "TaskStore",
    "canonical_json",
    "get_task_store",
    "new_worker_id",
    "run_task",
    "task_hash",
]
