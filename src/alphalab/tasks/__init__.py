"""Task pools, workers, trainers, rolling task generation, collectors and ensembles.

The pool side (stores, :class:`TaskManager`, workers) imports lightly, so worker processes
start fast; trainers, generators and collectors load the training stack on first use.
"""

from typing import TYPE_CHECKING, Any

from alphalab.tasks._manager import Heartbeat, TaskManager, new_worker_id, result_value, run_task
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

if TYPE_CHECKING:
    from alphalab.tasks._collect import (
        AverageEnsemble,
        Collector,
        Ensemble,
        Group,
        RecorderCollector,
        RollingEnsemble,
        RollingGroup,
        SingleKeyEnsemble,
        default_rec_key,
    )
    from alphalab.tasks._gen import (
        MultiHorizonGenBase,
        RollingGen,
        TaskGen,
        TradingCalendar,
        handler_mod,
        task_generator,
        trunc_segments,
    )
    from alphalab.tasks._rolling import RollingOptions, RollingSummary, run_rolling
    from alphalab.tasks._trainer import (
        DelayTrainerR,
        DelayTrainerRM,
        Trainer,
        TrainerR,
        TrainerRM,
        begin_task_train,
        end_task_train,
    )

#: Public names defined in modules that import the training stack, loaded on first access.
_LAZY = {
    "alphalab.tasks._rolling": ("RollingOptions", "RollingSummary", "run_rolling"),
    "alphalab.tasks._collect": (
        "AverageEnsemble",
        "Collector",
        "Ensemble",
        "Group",
        "RecorderCollector",
        "RollingEnsemble",
        "RollingGroup",
        "SingleKeyEnsemble",
        "default_rec_key",
    ),
    "alphalab.tasks._gen": (
        "MultiHorizonGenBase",
        "RollingGen",
        "TaskGen",
        "TradingCalendar",
        "handler_mod",
        "task_generator",
        "trunc_segments",
    ),
    "alphalab.tasks._trainer": (
        "DelayTrainerR",
        "DelayTrainerRM",
        "Trainer",
        "TrainerR",
        "TrainerRM",
        "begin_task_train",
        "end_task_train",
    ),
}
_LAZY_NAMES = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'alphalab.tasks' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_TASK_FUNC",
    "TRANSITIONS",
    "AverageEnsemble",
    "Collector",
    "DelayTrainerR",
    "DelayTrainerRM",
    "Ensemble",
    "Group",
    "Heartbeat",
    "MultiHorizonGenBase",
    "RecorderCollector",
    "RollingEnsemble",
    "RollingGen",
    "RollingGroup",
    "RollingOptions",
    "RollingSummary",
    "SingleKeyEnsemble",
    "SqlTaskStore",
    "TaskFilter",
    "TaskGen",
    "TaskManager",
    "TaskRecord",
    "TaskStatus",
    "TaskStore",
    "TradingCalendar",
    "Trainer",
    "TrainerR",
    "TrainerRM",
    "WorkerOptions",
    "begin_task_train",
    "canonical_json",
    "default_rec_key",
    "end_task_train",
    "get_task_store",
    "handler_mod",
    "new_worker_id",
    "resolve_task_func",
    "result_value",
    "run_rolling",
    "run_task",
    "task_generator",
    "task_hash",
    "train_task",
    "trunc_segments",
    "work",
]
