"""Trainers (Qlib's names): train task dicts into tracked runs, directly or through a task pool.

* :class:`TrainerR` trains each task now, in this process (or a fresh one per task).
* :class:`DelayTrainerR` only records each task in a run (``train_status=begin_task_train``);
  :meth:`~DelayTrainerR.end_train` fits them later into the same runs.
* :class:`TrainerRM` queues the tasks in a pool, trains some in this process unless told not
  to, waits until workers (``alphalab worker``) finished the rest, and returns the runs; the
  task results are the run ids, so training the same tasks again returns the stored runs.
* :class:`DelayTrainerRM` is the pool version of the delayed trainer.

Every run carries the tag ``train_status``: ``begin_task_train`` then ``end_task_train``.
"""

from __future__ import annotations

import multiprocessing
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from typing import Any

from alphalab.config import flatten_dict, get_settings, init
from alphalab.exceptions import TaskError
from alphalab.logging import get_logger
from alphalab.tasks._manager import TaskManager, result_value, run_task
from alphalab.tasks.store import TaskRecord, TaskStatus
from alphalab.tracking import R, Recorder
from alphalab.workflow import run_task as fit_task_into
from alphalab.workflow import task_train

logger = get_logger(__name__)

STATUS_KEY = "train_status"
STATUS_BEGIN = "begin_task_train"
STATUS_END = "end_task_train"

TrainFunc = Callable[..., Recorder]


def begin_task_train(
    task_config: Mapping[str, Any], experiment_name: str, recorder_name: str | None = None
) -> Recorder:
    """Record a task in a new run without training it (the first half of a delayed train)."""
    with R.start(experiment_name=experiment_name, recorder_name=recorder_name):
        recorder = R.get_recorder()
        recorder.set_tags(**{STATUS_KEY: STATUS_BEGIN})
        params = flatten_dict(dict(task_config))
        recorder.log_params(**{k: v for k, v in params.items() if not callable(v)})
        recorder.save_objects(task=dict(task_config))
    return recorder


def end_task_train(recorder: Recorder, experiment_name: str | None = None) -> Recorder:
    """Fit the task recorded in ``recorder`` into that same run (the second half)."""
    if recorder.list_tags().get(STATUS_KEY) == STATUS_END:
        return recorder
    task = recorder.load_object("task")
    del experiment_name  # the run already belongs to its experiment
    with R.start(recorder_id=recorder.id, resume=True):
        run = R.get_recorder()
        fit_task_into(task, run)
        run.set_tags(**{STATUS_KEY: STATUS_END})
    return R.get_recorder(recorder_id=recorder.id)


def _get_recorder(recorder_id: str) -> Recorder:
    return R.get_recorder(recorder_id=recorder_id)


def _subprocess_train(
    train_func: TrainFunc,
    task: Mapping[str, Any],
    experiment_name: str,
    recorder_name: str | None,
    settings: dict[str, Any],
    kwargs: dict[str, Any],
) -> str:
    init(**settings)
    recorder = train_func(task, experiment_name, recorder_name=recorder_name, **kwargs)
    return recorder.id


class Trainer(ABC):
    """Base of the trainers: ``train`` tasks into models (runs), then ``end_train`` them."""

    @abstractmethod
    def train(self, tasks: Sequence[Mapping[str, Any]], **kwargs: Any) -> list[Recorder]:
        """Train (or start training) every task; return one run per task."""

    def end_train(self, models: Sequence[Recorder], **kwargs: Any) -> list[Recorder]:
        """Finish training the runs returned by :meth:`train`."""
        return list(models)

    def is_delay(self) -> bool:
        """Whether :meth:`train` leaves the fitting to :meth:`end_train`."""
        return False

    def has_worker(self) -> bool:
        """Whether :meth:`worker` can train queued tasks."""
        return False

    def worker(self) -> None:
        """Train queued tasks until none is left (pool trainers only)."""
        raise TaskError(f"{type(self).__name__} has no task pool to work on; use TrainerRM")

    def __call__(self, tasks: Sequence[Mapping[str, Any]], **kwargs: Any) -> list[Recorder]:
        return self.end_train(self.train(tasks, **kwargs))


class TrainerR(Trainer):
    """Train each task now with ``train_func`` (default :func:`task_train`).

    Args:
        experiment_name: Experiment of the runs (default: the ``experiment_name`` setting).
        train_func: ``train_func(task, experiment_name, recorder_name=None) -> Recorder``.
        call_in_subproc: Train each task in a fresh process (frees memory between tasks);
            ``train_func`` must then be a module-level function.
        default_rec_name: Name of each run.
    """

    def __init__(
        self,
        experiment_name: str | None = None,
        train_func: TrainFunc = task_train,
        call_in_subproc: bool = False,
        default_rec_name: str | None = None,
    ) -> None:
        self.experiment_name = experiment_name
        self.train_func = train_func
        self.call_in_subproc = call_in_subproc
        self.default_rec_name = default_rec_name

    def _experiment(self, experiment_name: str | None) -> str:
        return experiment_name or self.experiment_name or get_settings().experiment_name

    def train(
        self,
        tasks: Sequence[Mapping[str, Any]],
        train_func: TrainFunc | None = None,
        experiment_name: str | None = None,
        **kwargs: Any,
    ) -> list[Recorder]:
        """Train every task in order; return their runs."""
        if isinstance(tasks, Mapping):
            tasks = [tasks]
        func = train_func or self.train_func
        name = self._experiment(experiment_name)
        recorders: list[Recorder] = []
        for task in tasks:
            if self.call_in_subproc:
                settings = {**asdict(get_settings()), "tracking_uri": R.get_uri()}
                context = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                    future = pool.submit(
                        _subprocess_train,
                        func,
                        task,
                        name,
                        self.default_rec_name,
                        settings,
                        kwargs,
                    )
                    recorder = _get_recorder(future.result())
            else:
                recorder = func(task, name, recorder_name=self.default_rec_name, **kwargs)
            recorders.append(recorder)
        return recorders

    def end_train(self, models: Sequence[Recorder], **kwargs: Any) -> list[Recorder]:
        """Mark the runs trained (``train_status=end_task_train``)."""
        for recorder in models:
            if recorder.list_tags().get(STATUS_KEY) != STATUS_END:
                recorder.set_tags(**{STATUS_KEY: STATUS_END})
        return list(models)


class DelayTrainerR(TrainerR):
    """Record tasks now (``begin_task_train``) and fit them in :meth:`end_train`."""

    def __init__(
        self,
        experiment_name: str | None = None,
        train_func: TrainFunc = begin_task_train,
        end_train_func: Callable[..., Recorder] = end_task_train,
        **kwargs: Any,
    ) -> None:
        super().__init__(experiment_name, train_func, **kwargs)
        self.end_train_func = end_train_func

    def end_train(
        self,
        models: Sequence[Recorder],
        end_train_func: Callable[..., Recorder] | None = None,
        experiment_name: str | None = None,
        **kwargs: Any,
    ) -> list[Recorder]:
        """Fit every run still at ``begin_task_train``; return the (refreshed) runs."""
        func = end_train_func or self.end_train_func
        name = self._experiment(experiment_name)
        return [func(recorder, name, **kwargs) for recorder in models]

    def is_delay(self) -> bool:
        return True


# ----- pool trainers ----------------------------------------------------------------------


def pool_train(
    task_def: Mapping[str, Any],
    experiment_name: str,
    train_func: TrainFunc = task_train,
    **kwargs: Any,
) -> Any:
    """Task function of :class:`TrainerRM`: train one task, return its run id."""
    return result_value(train_func(task_def, experiment_name, **kwargs))


def pool_begin_train(task_def: Mapping[str, Any], experiment_name: str | None = None) -> str:
    """Task function of :class:`DelayTrainerRM`'s first phase: record the task in a run."""
    name = experiment_name or get_settings().experiment_name
    return begin_task_train(task_def, name).id


def pool_end_train(record: TaskRecord, experiment_name: str | None = None) -> str:
    """Task function of :class:`DelayTrainerRM`'s second phase: fit the recorded run."""
    if not isinstance(record.result, str):
        raise TaskError(f"Task {record.id} has no run id to finish (result {record.result!r})")
    return end_task_train(_get_recorder(record.result), experiment_name).id


class TrainerRM(Trainer):
    """Queue tasks in a pool, train them (here and on workers), return their runs.

    Args:
        experiment_name: Experiment of the runs (default: the ``experiment_name`` setting).
        task_pool: Pool name (default: the experiment name).
        train_func: ``train_func(task, experiment_name) -> Recorder`` run for each task in
            this process (workers started with ``alphalab worker`` use ``task_train``).
        skip_run_task: Only queue and wait: leave all training to workers.
        uri: Task store URI (default: the ``task_uri`` setting).
        poll_interval: Seconds between checks while waiting for workers.
        timeout: Give up waiting after this many seconds (None: wait forever).
        progress: Show a progress bar while waiting.
    """

    def __init__(
        self,
        experiment_name: str | None = None,
        task_pool: str | None = None,
        train_func: TrainFunc = task_train,
        skip_run_task: bool = False,
        *,
        uri: str | None = None,
        poll_interval: float = 1.0,
        timeout: float | None = None,
        progress: bool = True,
    ) -> None:
        self.experiment_name = experiment_name
        self.task_pool = task_pool
        self.train_func = train_func
        self.skip_run_task = skip_run_task
        self.uri = uri
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.progress = progress

    def _experiment(self, experiment_name: str | None) -> str:
        return experiment_name or self.experiment_name or get_settings().experiment_name

    def _manager(self, experiment_name: str) -> TaskManager:
        return TaskManager(self.task_pool or experiment_name, self.uri)

    def _run_and_collect(
        self,
        tm: TaskManager,
        ids: list[int],
        func: Callable[..., Any],
        before: TaskStatus,
        after: TaskStatus,
        with_record: bool,
        **kwargs: Any,
    ) -> list[Recorder]:
        query = {"_id": ids}
        if not self.skip_run_task:
            run_task(
                func,
                tm.task_pool,
                query=query,
                before_status=before,
                after_status=after,
                manager=tm,
                with_record=with_record,
                poll_interval=self.poll_interval,
                **kwargs,
            )
        tm.wait(
            query,
            poll_interval=self.poll_interval,
            timeout=self.timeout,
            progress=self.progress,
            pending=(before, TaskStatus.RUNNING),
        )
        recorders = []
        failed = []
        for task_id in ids:
            record = tm.re_query(task_id)
            if record.status is TaskStatus.FAILED or not isinstance(record.result, str):
                failed.append(f"task {task_id}: {record.error or record.status.value}")
                continue
            recorders.append(_get_recorder(record.result))
        if failed:
            logger.error(
                "%d task(s) of pool %s failed: %s (inspect with `alphalab tasks show ID`, "
                "retry with `alphalab tasks retry-failed --pool %s`)",
                len(failed),
                tm.task_pool,
                "; ".join(failed),
                tm.task_pool,
            )
        return recorders

    def train(
        self,
        tasks: Sequence[Mapping[str, Any]],
        train_func: TrainFunc | None = None,
        experiment_name: str | None = None,
        before_status: TaskStatus | str = TaskStatus.WAITING,
        after_status: TaskStatus | str = TaskStatus.DONE,
        **kwargs: Any,
    ) -> list[Recorder]:
        """Queue the tasks (existing ones are reused), train, wait; return the runs.

        Tasks that failed after their attempts are left out (and logged).
        """
        if isinstance(tasks, Mapping):
            tasks = [tasks]
        name = self._experiment(experiment_name)
        tm = self._manager(name)
        ids = tm.create_task(list(tasks))
        return self._run_and_collect(
            tm,
            ids,
            pool_train,
            TaskStatus.parse(before_status),
            TaskStatus.parse(after_status),
            False,
            experiment_name=name,
            train_func=train_func or self.train_func,
            **kwargs,
        )

    def end_train(self, models: Sequence[Recorder], **kwargs: Any) -> list[Recorder]:
        """Mark the runs trained (``train_status=end_task_train``)."""
        for recorder in models:
            if recorder.list_tags().get(STATUS_KEY) != STATUS_END:
                recorder.set_tags(**{STATUS_KEY: STATUS_END})
        return list(models)

    def has_worker(self) -> bool:
        return True

    def worker(
        self, train_func: TrainFunc | None = None, experiment_name: str | None = None
    ) -> None:
        """Train queued tasks of the pool in this process until none is left."""
        name = self._experiment(experiment_name)
        run_task(
            pool_train,
            self.task_pool or name,
            uri=self.uri,
            experiment_name=name,
            train_func=train_func or self.train_func,
        )


class DelayTrainerRM(TrainerRM):
    """Pool version of :class:`DelayTrainerR`: record via the pool now, fit in ``end_train``."""

    def train(  # type: ignore[override]
        self,
        tasks: Sequence[Mapping[str, Any]],
        experiment_name: str | None = None,
        **kwargs: Any,
    ) -> list[Recorder]:
        """Queue the tasks and record each in a run (tasks end ``part_done``)."""
        if isinstance(tasks, Mapping):
            tasks = [tasks]
        name = self._experiment(experiment_name)
        tm = self._manager(name)
        ids = tm.create_task(list(tasks))
        return self._run_and_collect(
            tm,
            ids,
            pool_begin_train,
            TaskStatus.WAITING,
            TaskStatus.PART_DONE,
            False,
            experiment_name=name,
        )

    def end_train(
        self, models: Sequence[Recorder], experiment_name: str | None = None, **kwargs: Any
    ) -> list[Recorder]:
        """Fit the recorded runs through the pool (``part_done`` -> ``done``)."""
        name = self._experiment(experiment_name)
        tm = self._manager(name)
        wanted = {m.id for m in models}
        ids = [
            t.id
            for t in tm.query({"status": [TaskStatus.PART_DONE.value, TaskStatus.DONE.value]})
            if t.result in wanted
        ]
        return self._run_and_collect(
            tm,
            ids,
            pool_end_train,
            TaskStatus.PART_DONE,
            TaskStatus.DONE,
            True,
            experiment_name=name,
        )

    def is_delay(self) -> bool:
        return True

    def worker(  # type: ignore[override]
        self, end: bool = False, experiment_name: str | None = None
    ) -> None:
        """Work on the pool: record tasks, or with ``end`` fit recorded ones."""
        name = self._experiment(experiment_name)
        pool = self.task_pool or name
        if end:
            run_task(
                pool_end_train,
                pool,
                uri=self.uri,
                before_status=TaskStatus.PART_DONE,
                with_record=True,
                experiment_name=name,
            )
        else:
            run_task(
                pool_begin_train,
                pool,
                uri=self.uri,
                after_status=TaskStatus.PART_DONE,
                experiment_name=name,
            )
