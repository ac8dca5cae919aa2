"""Task stores: the interface and the SQL implementation (SQLite / PostgreSQL)."""

from alphalab.tasks.store._base import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    TRANSITIONS,
    InsertResult,
    TaskFilter,
    TaskRecord,
    TaskStatus,
    TaskStore,
    canonical_json,
    normalize_task,
    task_hash,
)
from alphalab.tasks.store._sql import (
    SUPPORTED_TASK_SCHEMES,
    SqlTaskStore,
    clear_store_cache,
    get_task_store,
)

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "DEFAULT_MAX_ATTEMPTS",
    "SUPPORTED_TASK_SCHEMES",
    "TRANSITIONS",
    "InsertResult",
    "SqlTaskStore",
    "TaskFilter",
    "TaskRecord",
    "TaskStatus",
    "TaskStore",
    "canonical_json",
    "clear_store_cache",
    "get_task_store",
    "normalize_task",
    "task_hash",
]
