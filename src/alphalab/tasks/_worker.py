"""Workers: processes that claim tasks from a pool and train them (``alphalab worker``)."""

from __future__ import annotations

import importlib
import multiprocessing
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from alphalab.config import get_settings, init
from alphalab.exceptions import ConfigError
from alphalab.logging import get_logger
from alphalab.tasks._manager import TaskManager, run_task
from alphalab.tasks.store import DEFAULT_LEASE_SECONDS, TaskStatus

logger = get_logger(__name__)

#: The task function of ``alphalab worker`` when none is named.
DEFAULT_TASK_FUNC = "alphalab.tasks:train_task"


def train_task(task_def: Mapping[str, Any], experiment_name: str | None = None) -> str:
    """Train one task with :func:`~alphalab.workflow.task_train`; return the run id."""
    from alphalab.workflow import task_train  # imported here: workers of other functions stay light

    name = experiment_name or get_settings().experiment_name
    return task_train(task_def, name).id


def resolve_task_func(spec: str | Callable[..., Any]) -> Callable[..., Any]:
    """Import ``module:function`` (or ``module.function``) and return the function.

    Raises:
        ConfigError: when the module or the attribute does not exist or is not callable.
    """
    if callable(spec):
        return spec
    module_name, sep, attr = spec.partition(":")
    if not sep:
        module_name, _, attr = spec.rpartition(".")
    if not module_name or not attr:
        raise ConfigError(f"A task function is named 'package.module:function'; got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"Cannot import the task function module {module_name!r}: {e}") from e
    func = getattr(module, attr, None)
    if not callable(func):
        raise ConfigError(f"{module_name} has no function {attr!r} (task function {spec!r})")
    return func


@dataclass(frozen=True)
class WorkerOptions:
    """What a worker does: which pool, which function, how many tasks."""

    pool: str
    uri: str | None = None
    task_func: str = DEFAULT_TASK_FUNC
    func_kwargs: Mapping[str, Any] = field(default_factory=dict)
    max_tasks: int | None = None
    wait: bool = False
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    poll_interval: float = 1.0
    before_status: str = TaskStatus.WAITING.value
    after_status: str = TaskStatus.DONE.value
    with_record: bool = False


def _work_once(options: WorkerOptions, stop: threading.Event | None = None) -> int:
    func = resolve_task_func(options.task_func)
    manager = TaskManager(options.pool, options.uri, lease_seconds=options.lease_seconds)
    logger.info("Worker %s on pool %s (%s)", manager.worker_id, options.pool, manager.store.uri)
    ran = run_task(
        func,
        options.pool,
        before_status=options.before_status,
        after_status=options.after_status,
        max_tasks=options.max_tasks,
        wait=options.wait,
        poll_interval=options.poll_interval,
        with_record=options.with_record,
        manager=manager,
        stop=stop,
        **dict(options.func_kwargs),
    )
    logger.info(
        "Worker %s ran %d task(s); pool %s: %s",
        manager.worker_id,
        ran,
        options.pool,
        manager.task_stat(),
    )
    return ran


def _child_main(options: WorkerOptions, settings: dict[str, Any]) -> int:
    init(**settings)
    _terminate_as_interrupt()
    return _work_once(options)


def _terminate_as_interrupt() -> None:
    """Turn SIGTERM into SystemExit so the running task is handed back, not left running."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def work(options: WorkerOptions, concurrency: int = 1) -> int:
    """Run ``concurrency`` worker processes (1: this process) until the pool is done.

    ``max_tasks`` applies to each process. Children start with ``spawn`` and the settings of
    this process (``alphalab.init`` values included). Returns the number of tasks run.
    """
    if concurrency < 1:
        raise ConfigError(f"concurrency must be >= 1; got {concurrency}")
    resolve_task_func(options.task_func)  # fail here, not in every child
    if concurrency == 1:
        _terminate_as_interrupt()
        return _work_once(options)
    settings = asdict(get_settings())
    context = multiprocessing.get_context("spawn")
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=concurrency, mp_context=context) as pool:
        futures = [pool.submit(_child_main, options, settings) for _ in range(concurrency)]
        return sum(f.result() for f in futures)
