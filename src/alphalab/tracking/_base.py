"""The abstract tracking model: ExpManager -> Experiment -> Recorder (Qlib's names).

A :class:`Recorder` is one tracked run; an :class:`Experiment` groups runs; an
:class:`ExpManager` owns the experiments of one tracking store. Implementations hold a client
and ids only, so several runs can be live in one process without sharing hidden state.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from alphalab.exceptions import TrackingError

if TYPE_CHECKING:
    import pandas as pd

#: Name of the run created when none is named (Qlib's default).
DEFAULT_RECORDER_NAME = "mlflow_recorder"


class RecorderStatus(enum.StrEnum):
    """Status of a run; the values are MLflow's run status strings."""

    SCHEDULED = "SCHEDULED"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    def is_finished(self) -> bool:
        """Whether the run has ended (successfully or not)."""
        return self in (RecorderStatus.FINISHED, RecorderStatus.FAILED, RecorderStatus.KILLED)

    def check_transition(self, target: RecorderStatus) -> None:
        """Raise :class:`TrackingError` unless a run may move from this status to ``target``."""
        if target not in _TRANSITIONS[self]:
            allowed = ", ".join(s.value for s in _TRANSITIONS[self]) or "none"
            raise TrackingError(
                f"A run cannot go from {self.value} to {target.value} (allowed from "
                f"{self.value}: {allowed}); resume an ended run with "
                "R.start(recorder_id=..., resume=True)"
            )


_ENDED = frozenset({RecorderStatus.FINISHED, RecorderStatus.FAILED, RecorderStatus.KILLED})

#: The one table of allowed status changes. Ended runs may only be resumed (-> RUNNING).
_TRANSITIONS: Mapping[RecorderStatus, frozenset[RecorderStatus]] = {
    RecorderStatus.SCHEDULED: frozenset({RecorderStatus.RUNNING, *_ENDED}),
    RecorderStatus.RUNNING: _ENDED,
    RecorderStatus.FINISHED: frozenset({RecorderStatus.RUNNING}),
    RecorderStatus.FAILED: frozenset({RecorderStatus.RUNNING}),
    RecorderStatus.KILLED: frozenset({RecorderStatus.RUNNING}),
}


class Recorder(ABC):
    """One tracked run: params, metrics, tags and artifacts (Qlib's ``Recorder``)."""

    # Qlib's status constants, for code written against Qlib.
    STATUS_S = RecorderStatus.SCHEDULED.value
    STATUS_R = RecorderStatus.RUNNING.value
    STATUS_FI = RecorderStatus.FINISHED.value
    STATUS_FA = RecorderStatus.FAILED.value

    @property
    @abstractmethod
    def id(self) -> str:
        """The 32-hex run id."""

    @property
    @abstractmethod
    def name(self) -> str:
        """The run name (names may repeat inside an experiment)."""

    @property
    @abstractmethod
    def experiment_id(self) -> str:
        """Id of the experiment holding this run."""

    @property
    @abstractmethod
    def status(self) -> RecorderStatus:
        """Current status, read from the store."""

    @property
    @abstractmethod
    def start_time(self) -> datetime | None:
        """When the run started (UTC), or None if it never started."""

    @property
    @abstractmethod
    def end_time(self) -> datetime | None:
        """When the run ended (UTC), or None while it runs."""

    @property
    @abstractmethod
    def parent_id(self) -> str | None:
        """Id of the parent run of a nested run, else None."""

    @abstractmethod
    def start_run(self, *, resume: bool = False) -> Recorder:
        """Mark the run RUNNING (resuming an ended run needs ``resume=True``)."""

    @abstractmethod
    def end_run(self, status: RecorderStatus | str = RecorderStatus.FINISHED) -> None:
        """Flush pending metrics and mark the run ended with ``status``."""

    @abstractmethod
    def flush(self) -> None:
        """Ship every metric logged so far; raise the last backend error, if any."""

    @abstractmethod
    def log_params(self, **kwargs: Any) -> None:
        """Log parameters (values are stored as strings)."""

    @abstractmethod
    def log_metrics(self, step: int | None = None, **kwargs: float) -> None:
        """Log metric values at ``step`` (asynchronously, never dropped)."""

    @abstractmethod
    def set_tags(self, **kwargs: Any) -> None:
        """Set tags (values are stored as strings)."""

    @abstractmethod
    def delete_tags(self, *keys: str) -> None:
        """Delete tags by key."""

    @abstractmethod
    def save_objects(
        self, local_path: str | Path | None = None, artifact_path: str | None = None, **kwargs: Any
    ) -> None:
        """Pickle ``kwargs`` as artifacts named by their keys, or upload ``local_path``."""

    @abstractmethod
    def load_object(self, name: str) -> Any:
        """Load an object saved with :meth:`save_objects`."""

    @abstractmethod
    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        """Upload a local file or folder under ``artifact_path``."""

    @abstractmethod
    def list_artifacts(self, artifact_path: str | None = None) -> list[str]:
        """Artifact paths directly under ``artifact_path`` (folders end with ``/``)."""

    @abstractmethod
    def download_artifact(self, path: str, dst_path: str | Path | None = None) -> str:
        """Download an artifact and return its local path."""

    @abstractmethod
    def list_metrics(self) -> dict[str, float]:
        """Latest value of every metric."""

    @abstractmethod
    def list_params(self) -> dict[str, str]:
        """Every param."""

    @abstractmethod
    def list_tags(self) -> dict[str, str]:
        """Every tag."""

    @abstractmethod
    def get_local_dir(self) -> str:
        """Local folder holding the run's artifacts (raises for remote artifact stores)."""

    @abstractmethod
    def metric_history(self, key: str) -> pd.DataFrame:
        """Every logged point of ``key``: columns ``step``, ``timestamp``, ``value``."""

    @abstractmethod
    def start_child(self, recorder_name: str | None = None) -> Recorder:
        """Create and start a nested run whose parent is this run."""

    @abstractmethod
    def list_children(self) -> list[Recorder]:
        """The nested runs whose parent is this run."""

    @property
    def child_count(self) -> int:
        """How many nested runs this run has."""
        return len(self.list_children())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, name={self.name!r})"


class Experiment(ABC):
    """A named group of runs (Qlib's ``Experiment``)."""

    # Qlib's return-type constants of list_recorders.
    RT_D = "dict"
    RT_L = "list"

    @property
    @abstractmethod
    def id(self) -> str:
        """The experiment id."""

    @property
    @abstractmethod
    def name(self) -> str:
        """The unique experiment name."""

    @abstractmethod
    def start(
        self,
        *,
        recorder_id: str | None = None,
        recorder_name: str | None = None,
        resume: bool = False,
    ) -> Recorder:
        """Start (or with ``resume``, reattach to) a run and return it."""

    @abstractmethod
    def create_recorder(self, recorder_name: str | None = None) -> Recorder:
        """Create a new SCHEDULED run."""

    @abstractmethod
    def get_recorder(
        self,
        recorder_id: str | None = None,
        recorder_name: str | None = None,
        create: bool = True,
        start: bool = False,
    ) -> Recorder:
        """Return a run by id or name (latest wins), creating it if asked."""

    @abstractmethod
    def list_recorders(
        self, rtype: Literal["dict", "list"] = "dict", status: str | None = None
    ) -> dict[str, Recorder] | list[Recorder]:
        """Every run of the experiment, newest first, optionally only those with ``status``."""

    @abstractmethod
    def search_records(self, **kwargs: Any) -> pd.DataFrame:
        """Runs matching an MLflow filter, one row each (see ``ExpManager.search_records``)."""

    @abstractmethod
    def delete_recorder(
        self, recorder_id: str | None = None, recorder_name: str | None = None
    ) -> None:
        """Delete a run by id or name."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, name={self.name!r})"


class ExpManager(ABC):
    """Every experiment of one tracking store (Qlib's ``ExpManager``)."""

    @property
    @abstractmethod
    def uri(self) -> str:
        """The tracking URI of the store."""

    @property
    @abstractmethod
    def default_exp_name(self) -> str:
        """Experiment used when none is named."""

    @abstractmethod
    def create_exp(self, experiment_name: str | None = None) -> Experiment:
        """Create an experiment (or return the existing one of that name: idempotent)."""

    @abstractmethod
    def get_exp(
        self,
        *,
        experiment_id: str | None = None,
        experiment_name: str | None = None,
        create: bool = True,
    ) -> Experiment:
        """Return an experiment by id or name (default experiment if neither is given)."""

    @abstractmethod
    def list_experiments(self) -> dict[str, Experiment]:
        """Every active experiment by name."""

    @abstractmethod
    def delete_exp(
        self, experiment_id: str | None = None, experiment_name: str | None = None
    ) -> None:
        """Delete an experiment; its name becomes free again."""

    @abstractmethod
    def search_records(
        self, experiment_ids: list[str] | None = None, **kwargs: Any
    ) -> pd.DataFrame:
        """Runs matching an MLflow filter as a DataFrame (all pages, not one)."""

    @abstractmethod
    def get_recorder(self, recorder_id: str) -> Recorder:
        """Return any run of the store by id."""

    def start_exp(
        self,
        *,
        experiment_id: str | None = None,
        experiment_name: str | None = None,
        recorder_id: str | None = None,
        recorder_name: str | None = None,
        resume: bool = False,
    ) -> Recorder:
        """Get or create the experiment, then start a run in it and return the run."""
        if recorder_id is not None and experiment_id is None and experiment_name is None:
            recorder = self.get_recorder(recorder_id)
            experiment_id = recorder.experiment_id
        exp = self.get_exp(experiment_id=experiment_id, experiment_name=experiment_name)
        return exp.start(recorder_id=recorder_id, recorder_name=recorder_name, resume=resume)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(uri={self.uri!r})"
