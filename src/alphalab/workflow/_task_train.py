"""Train one task (model + dataset + records) inside a tracked run: Qlib's ``task_train``."""

from __future__ import annotations

import inspect
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from alphalab.config import (
    fill_placeholders,
    flatten_dict,
    get_callable_kwargs,
    init_instance_by_config,
)
from alphalab.data import DatasetH
from alphalab.exceptions import ConfigError
from alphalab.logging import get_logger
from alphalab.model import BaseModel, Model
from alphalab.tracking import R, Recorder
from alphalab.workflow.records import RecordTemp

logger = get_logger(__name__)

#: Placeholders filled while a task runs; ``<PRED>`` is resolved by the records themselves.
RUNTIME_PLACEHOLDERS = ("MODEL", "DATASET", "PRED")

_RECORD_MODULE = "alphalab.workflow"


@dataclass
class TaskOutcome:
    """What running a task produced: the fitted model, the dataset and phase timings."""

    model: BaseModel
    dataset: DatasetH
    phases: dict[str, float] = field(default_factory=dict)


@contextmanager
def _timed(phases: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        phases[name] = phases.get(name, 0.0) + time.perf_counter() - started


def resolve_task(task: Mapping[str, Any]) -> dict[str, Any]:
    """Resolve dotted self-references (``<dataset.kwargs.segments.train.0>``) in a task."""
    if not isinstance(task, Mapping) or "model" not in task or "dataset" not in task:
        raise ConfigError("A task needs 'model' and 'dataset' components (and may list 'record')")
    resolved: dict[str, Any] = fill_placeholders(
        dict(task), root=task, allow_unresolved=RUNTIME_PLACEHOLDERS
    )
    return resolved


def build_record(
    config: Any, recorder: Recorder, model: BaseModel, dataset: DatasetH
) -> RecordTemp:
    """Instantiate a record config with ``<MODEL>``/``<DATASET>`` filled and the run injected.

    Records that take ``model``/``dataset`` but do not name them get the task's (as Qlib).
    """
    factory, kwargs = get_callable_kwargs(config, _RECORD_MODULE)
    try:
        accepted = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        accepted = {}  # type: ignore[assignment]
    extra: dict[str, Any] = {"recorder": recorder}
    if "model" in accepted and "model" not in kwargs:
        extra["model"] = model
    if "dataset" in accepted and "dataset" not in kwargs:
        extra["dataset"] = dataset
    record = init_instance_by_config(
        config,
        _RECORD_MODULE,
        placeholders={"MODEL": model, "DATASET": dataset},
        allow_unresolved=["PRED"],
        **extra,
    )
    if not isinstance(record, RecordTemp):
        raise ConfigError(f"A record must be a RecordTemp; {type(record).__name__} is not")
    return record


def log_task_info(recorder: Recorder, task: Mapping[str, Any]) -> None:
    """Log the task as flattened params, as an artifact, and the host and command line."""
    params = {k: v for k, v in flatten_dict(task).items() if not _is_runtime_object(v)}
    params["cmd-sys.argv"] = " ".join(sys.argv)
    recorder.log_params(**params)
    recorder.save_objects(task=dict(task))
    recorder.set_tags(hostname=socket.gethostname())


def _is_runtime_object(value: Any) -> bool:
    return not isinstance(value, str | int | float | bool | list | tuple | dict | type(None))


class BuiltTask:
    """A task's model, dataset and record configs, built before its run opens.

    With ``load_in_background`` the dataset's features are computed in a daemon thread from
    construction on, so a workflow's start-up (importing the model's library, opening the
    run, logging its provenance) overlaps with them; :meth:`load` waits for them.
    """

    def __init__(self, task: Mapping[str, Any], *, load_in_background: bool = False) -> None:
        task = resolve_task(task)
        dataset = init_instance_by_config(task["dataset"], "alphalab.data", accept_types=DatasetH)
        if not isinstance(dataset, DatasetH):
            raise ConfigError(f"task.dataset must build a DatasetH; got {type(dataset).__name__}")
        self.dataset: DatasetH = dataset
        self._loader: threading.Thread | None = None
        self._load_error: BaseException | None = None
        self._load_seconds = 0.0
        if load_in_background:  # before the model: building it may import its library
            self._loader = threading.Thread(
                target=self._load, name="alphalab-features", daemon=True
            )
            self._loader.start()
        model = init_instance_by_config(task["model"], "alphalab.model", accept_types=BaseModel)
        if not isinstance(model, Model):
            raise ConfigError(f"task.model must build a Model; got {type(model).__name__}")
        self.model: Model = model
        records = task.get("record") or []
        self.records: list[Any] = [records] if isinstance(records, str | Mapping) else records

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            self.dataset.setup_data()
        except BaseException as e:  # re-raised in the caller's thread by load()
            self._load_error = e
        finally:
            self._load_seconds = time.perf_counter() - started

    def load(self) -> float:
        """Compute the features (or wait for the background load); return their seconds."""
        if self._loader is None:
            self._load()
        else:
            self._loader.join()
        if self._load_error is not None:
            raise self._load_error
        return self._load_seconds


def run_task(
    task: Mapping[str, Any] | BuiltTask,
    recorder: Recorder,
    *,
    on_phase: Callable[[str], None] | None = None,
) -> TaskOutcome:
    """Build, fit and record one task into ``recorder`` (which must be the running run)."""
    built = task if isinstance(task, BuiltTask) else BuiltTask(task)
    model, dataset = built.model, built.dataset
    phases: dict[str, float] = {}

    def announce(name: str) -> None:
        logger.info("%s...", name)
        if on_phase is not None:
            on_phase(name)

    announce("features")
    phases["features"] = built.load()  # the computation's own time, even when it overlapped
    recorder.set_tags(data_fingerprint=dataset.handler.data_fingerprint)
    announce("fit")
    with _timed(phases, "fit"):
        model.fit(dataset)
    artifacts: dict[str, Any] = {"params.pkl": model, "dataset": dataset}
    recorder.save_objects(**artifacts)
    for config in built.records:
        record = build_record(config, recorder, model, dataset)
        name = type(record).__name__
        announce(name)
        with _timed(phases, name):
            record.generate()
    return TaskOutcome(model=model, dataset=dataset, phases=phases)


def task_train(
    task_config: Mapping[str, Any],
    experiment_name: str,
    recorder_name: str | None = None,
) -> Recorder:
    """Train ``task_config`` in a new run of ``experiment_name`` and return its recorder.

    The run ends FINISHED, or FAILED with the error recorded when anything raises.
    """
    with R.start(experiment_name=experiment_name, recorder_name=recorder_name):
        recorder = R.get_recorder()
        recorder.set_tags(train_status="begin_task_train")
        log_task_info(recorder, task_config)
        run_task(task_config, recorder)
        recorder.set_tags(train_status="end_task_train")
    return recorder
