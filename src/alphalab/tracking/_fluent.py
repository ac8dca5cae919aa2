"""``R``: the process-wide tracking facade with Qlib's surface.

``R`` is a thin layer over :class:`MlflowExpManager` (like ``mlflow.fluent`` over
``MlflowClient``). The active run lives in a :class:`~contextvars.ContextVar`, so each thread
(and each asyncio task) has its own; nested runs form a stack. Runs started through ``R`` are
ended at interpreter exit (FINISHED, or FAILED after an uncaught exception) and on SIGTERM
(KILLED, after every logged point is stored).
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from alphalab._training import add_default_reporter
from alphalab.config import get_settings, sqlite_path, uri_scheme
from alphalab.exceptions import TrackingError
from alphalab.logging import get_logger
from alphalab.tracking._base import Experiment, Recorder, RecorderStatus
from alphalab.tracking._logger import (
    RecoveryResult,
    close_all,
    install_process_hooks,
    on_terminate,
)
from alphalab.tracking._mlflow import MlflowExperiment, MlflowExpManager, MlflowRecorder

if TYPE_CHECKING:
    import pandas as pd

logger = get_logger(__name__)

_active: contextvars.ContextVar[tuple[MlflowRecorder, ...]] = contextvars.ContextVar(
    "alphalab_active_runs", default=()
)
_uri_override: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "alphalab_tracking_uri", default=None
)


def journal_dir_for(uri: str, cache_dir: str) -> Path:
    """Local folder of metric journals: beside a SQLite store, else beside the cache."""
    db = sqlite_path(uri)
    if db is not None:
        return db.parent / "journal"
    return Path(cache_dir).parent / "journal"


class TrackingFacade:
    """Qlib's ``R``: start runs, log to the active one, find and search runs."""

    def __init__(self) -> None:
        self._managers: dict[tuple[str, ...], MlflowExpManager] = {}
        self._lock = threading.Lock()
        self._default_uri: str | None = None

    def reset(self) -> None:
        """Forget ``set_uri``, cached managers and this context's active runs (for tests)."""
        with self._lock:
            self._managers.clear()
        self._default_uri = None
        _active.set(())

    # ----- stores ----------------------------------------------------------------------------

    def get_uri(self) -> str:
        """The tracking URI in effect: ``uri_context`` > ``set_uri`` > settings."""
        return _uri_override.get() or self._default_uri or get_settings().tracking_uri

    def set_uri(self, uri: str | None) -> None:
        """Use ``uri`` for later calls in this process (None: back to the settings)."""
        self._default_uri = None if uri is None else get_settings(tracking_uri=uri).tracking_uri

    @contextlib.contextmanager
    def uri_context(self, uri: str) -> Iterator[str]:
        """Use ``uri`` inside the ``with`` block (this thread/context only)."""
        token = _uri_override.set(get_settings(tracking_uri=uri).tracking_uri)
        try:
            yield _uri_override.get() or uri
        finally:
            _uri_override.reset(token)

    def get_exp_manager(self, uri: str | None = None) -> MlflowExpManager:
        """The experiment manager of ``uri`` (default: :meth:`get_uri`)."""
        settings = get_settings(tracking_uri=uri) if uri else get_settings()
        resolved = settings.tracking_uri if uri else self.get_uri()
        artifacts = (
            None if uri_scheme(resolved) in ("http", "https") else settings.artifact_location
        )
        journal = journal_dir_for(resolved, settings.cache_dir)
        key = (resolved, str(artifacts), settings.experiment_name, str(journal))
        with self._lock:
            manager = self._managers.get(key)
            if manager is None:
                manager = MlflowExpManager(
                    resolved,
                    artifact_location=artifacts,
                    default_exp_name=settings.experiment_name,
                    journal_dir=journal,
                )
                self._managers[key] = manager
        return manager

    # ----- runs ------------------------------------------------------------------------------

    @property
    def active_recorder(self) -> MlflowRecorder | None:
        """The innermost active run of this context, or None."""
        stack = _active.get()
        return stack[-1] if stack else None

    def start_exp(
        self,
        *,
        experiment_id: str | None = None,
        experiment_name: str | None = None,
        recorder_id: str | None = None,
        recorder_name: str | None = None,
        uri: str | None = None,
        resume: bool = False,
        nested: bool = False,
    ) -> MlflowRecorder:
        """Start a run (pair with :meth:`end_exp`); prefer ``with R.start(...)``.

        Raises:
            TrackingError: if a run is already active and ``nested`` is False.
            NotFoundError: for an unknown ``recorder_id``/``experiment_id``.
        """
        stack = _active.get()
        if stack and not nested:
            raise TrackingError(
                f"Run {stack[-1].id} is already active in this context; end it first, or pass "
                "nested=True to start a child run"
            )
        if nested and not stack:
            raise TrackingError("nested=True needs an active parent run; start one first")
        manager = stack[-1].manager if (stack and uri is None) else self.get_exp_manager(uri)
        recorder: MlflowRecorder
        if nested and recorder_id is None:
            parent = stack[-1]
            if experiment_id is None and experiment_name is None:
                experiment_id = parent.experiment_id
            exp = manager.get_exp(experiment_id=experiment_id, experiment_name=experiment_name)
            recorder = exp.start(recorder_name=recorder_name, parent_id=parent.id)
        else:
            recorder = self._start_in(
                manager, experiment_id, experiment_name, recorder_id, recorder_name, resume
            )
        _active.set((*stack, recorder))
        _hooks.register(recorder)
        return recorder

    @staticmethod
    def _start_in(
        manager: MlflowExpManager,
        experiment_id: str | None,
        experiment_name: str | None,
        recorder_id: str | None,
        recorder_name: str | None,
        resume: bool,
    ) -> MlflowRecorder:
        if recorder_id is None and experiment_id is None and not resume:
            return manager.start_in(experiment_name, recorder_name=recorder_name)
        if recorder_id is not None and experiment_id is None and experiment_name is None:
            experiment_id = manager.get_recorder(recorder_id).experiment_id
        exp = manager.get_exp(experiment_id=experiment_id, experiment_name=experiment_name)
        return exp.start(recorder_id=recorder_id, recorder_name=recorder_name, resume=resume)

    def end_exp(
        self,
        recorder_status: RecorderStatus | str = RecorderStatus.FINISHED,
        error: BaseException | None = None,
    ) -> None:
        """End the innermost active run with ``recorder_status`` (flushing its metrics)."""
        stack = _active.get()
        if not stack:
            raise TrackingError("end_exp: no run is active in this context")
        recorder = stack[-1]
        _active.set(stack[:-1])
        _hooks.unregister(recorder)
        recorder.end_run(recorder_status, error=error)

    @contextlib.contextmanager
    def start(
        self,
        *,
        experiment_id: str | None = None,
        experiment_name: str | None = None,
        recorder_id: str | None = None,
        recorder_name: str | None = None,
        uri: str | None = None,
        resume: bool = False,
        nested: bool = False,
    ) -> Iterator[MlflowRecorder]:
        """Run the ``with`` block inside a run: FINISHED on normal exit, FAILED on exception.

        The exception is re-raised after its traceback is stored (tag ``alphalab.error``,
        artifact ``error/traceback.txt``); KeyboardInterrupt and SystemExit end the run KILLED.
        ``resume=True`` with ``recorder_id`` reattaches to an existing run and keeps appending.
        """
        recorder = self.start_exp(
            experiment_id=experiment_id,
            experiment_name=experiment_name,
            recorder_id=recorder_id,
            recorder_name=recorder_name,
            uri=uri,
            resume=resume,
            nested=nested,
        )
        try:
            yield recorder
        except Exception as e:
            self._end_after_error(recorder, RecorderStatus.FAILED, e)
            raise
        except BaseException as e:
            self._end_after_error(recorder, RecorderStatus.KILLED, e)
            raise
        else:
            self.end_exp(RecorderStatus.FINISHED)

    def _end_after_error(
        self, recorder: MlflowRecorder, status: RecorderStatus, error: BaseException
    ) -> None:
        try:
            if self.active_recorder is recorder:
                self.end_exp(status, error=error)
        except Exception as e:  # never hide the user's exception behind ours
            logger.error("Could not end run %s as %s: %s", recorder.id, status.value, e)

    def _require_active(self) -> MlflowRecorder:
        recorder = self.active_recorder
        if recorder is None:
            raise TrackingError(
                "No run is active in this context; wrap the code in `with R.start(...):` "
                "or get a recorder explicitly with R.get_recorder(recorder_id=...)"
            )
        return recorder

    # ----- logging to the active run -----------------------------------------------------------

    def log_params(self, **kwargs: Any) -> None:
        """Log params on the active run."""
        self._require_active().log_params(**kwargs)

    def log_metrics(self, step: int | None = None, **kwargs: Any) -> None:
        """Log metrics at ``step`` on the active run (batched, asynchronous, never dropped)."""
        self._require_active().log_metrics(step, **kwargs)

    def set_tags(self, **kwargs: Any) -> None:
        """Set tags on the active run."""
        self._require_active().set_tags(**kwargs)

    def delete_tags(self, *keys: str) -> None:
        """Delete tags of the active run."""
        self._require_active().delete_tags(*keys)

    def save_objects(
        self, local_path: str | Path | None = None, artifact_path: str | None = None, **kwargs: Any
    ) -> None:
        """Save objects (pickled, atomically) or a local file/folder into the active run."""
        self._require_active().save_objects(local_path, artifact_path, **kwargs)

    def load_object(self, name: str) -> Any:
        """Load an object from the active run."""
        return self._require_active().load_object(name)

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        """Upload a local file or folder into the active run."""
        self._require_active().log_artifact(local_path, artifact_path)

    def download_artifact(self, path: str, dst_path: str | Path | None = None) -> str:
        """Download an artifact of the active run; returns its local path."""
        return self._require_active().download_artifact(path, dst_path)

    def flush(self) -> None:
        """Store every metric point logged so far on the active run."""
        self._require_active().flush()

    def metric_callback(self) -> Callable[..., None]:
        """A ``callback(step=None, **metrics)`` that logs into the run active now.

        Bound to the run, not to the context, so it keeps working when a model calls it from
        another thread (training loops, data loader workers). Lower layers (``model/``)
        accept such a callback without importing ``tracking``.
        """
        recorder = self._require_active()

        def log_metrics(step: int | None = None, **metrics: Any) -> None:
            recorder.log_metrics(step, **metrics)

        return log_metrics

    # ----- finding things --------------------------------------------------------------------

    def get_exp(
        self,
        *,
        experiment_id: str | None = None,
        experiment_name: str | None = None,
        create: bool = True,
    ) -> MlflowExperiment:
        """An experiment by id or name; with neither, the active run's or the default one."""
        active = self.active_recorder
        if experiment_id is None and experiment_name is None and active is not None:
            return active.manager.get_exp(experiment_id=active.experiment_id, create=False)
        return self.get_exp_manager().get_exp(
            experiment_id=experiment_id, experiment_name=experiment_name, create=create
        )

    def get_recorder(
        self,
        *,
        recorder_id: str | None = None,
        recorder_name: str | None = None,
        experiment_id: str | None = None,
        experiment_name: str | None = None,
    ) -> MlflowRecorder:
        """The active run (no arguments), or a run by id, or by name (latest wins).

        Raises:
            TrackingError: with no arguments and no active run (never an old run instead).
            NotFoundError: when no run matches.
        """
        if recorder_id is None and recorder_name is None:
            return self._require_active()
        if recorder_id is not None and experiment_id is None and experiment_name is None:
            active = self.active_recorder
            manager = active.manager if active is not None else self.get_exp_manager()
            return manager.get_recorder(recorder_id)
        # By name: in the named experiment, else the active run's, else the default one.
        exp = self.get_exp(
            experiment_id=experiment_id, experiment_name=experiment_name, create=False
        )
        return exp.get_recorder(recorder_id, recorder_name, create=False)

    def list_experiments(self) -> dict[str, Experiment]:
        """Every active experiment by name."""
        return self.get_exp_manager().list_experiments()

    def list_recorders(
        self, experiment_id: str | None = None, experiment_name: str | None = None
    ) -> dict[str, Recorder]:
        """Every run of an experiment (default: the active/default one) by id, newest first."""
        exp = self.get_exp(
            experiment_id=experiment_id, experiment_name=experiment_name, create=False
        )
        return cast("dict[str, Recorder]", exp.list_recorders(rtype="dict"))

    def search_records(
        self, experiment_ids: list[str] | None = None, **kwargs: Any
    ) -> pd.DataFrame:
        """Runs matching an MLflow filter as a pandas DataFrame (every page)."""
        return self.get_exp_manager().search_records(experiment_ids, **kwargs)

    def delete_exp(
        self, experiment_id: str | None = None, experiment_name: str | None = None
    ) -> None:
        """Delete an experiment by id or name."""
        self.get_exp_manager().delete_exp(experiment_id, experiment_name)

    def delete_recorder(
        self,
        recorder_id: str | None = None,
        recorder_name: str | None = None,
        *,
        experiment_id: str | None = None,
        experiment_name: str | None = None,
    ) -> None:
        """Delete a run by id, or by name inside an experiment."""
        recorder = self.get_recorder(
            recorder_id=recorder_id,
            recorder_name=recorder_name,
            experiment_id=experiment_id,
            experiment_name=experiment_name,
        )
        exp = recorder.manager.get_exp(experiment_id=recorder.experiment_id, create=False)
        exp.delete_recorder(recorder_id=recorder.id)

    def recover(self, recorder_id: str, journal_path: str | Path | None = None) -> RecoveryResult:
        """Ship what a run's local journal holds and the store lacks (no duplicates)."""
        path = None if journal_path is None else Path(journal_path)
        return self.get_exp_manager().recover(recorder_id, path)

    def __repr__(self) -> str:
        return f"TrackingFacade(uri={self.get_uri()!r}, active={self.active_recorder!r})"


class _ExitHooks:
    """Ends runs started through ``R`` at interpreter exit and on SIGTERM."""

    def __init__(self) -> None:
        self._open: dict[str, MlflowRecorder] = {}
        self._installed_pid: int | None = None
        self._uncaught: BaseException | None = None
        self._previous_excepthook = sys.excepthook

    # No lock here: these run in the main thread and in the SIGTERM clean-up thread, which may
    # interrupt the main thread anywhere; single dict operations are atomic in CPython.
    def register(self, recorder: MlflowRecorder) -> None:
        self._open[recorder.id] = recorder
        if self._installed_pid != os.getpid():
            self._install()

    def unregister(self, recorder: MlflowRecorder) -> None:
        self._open.pop(recorder.id, None)

    def _install(self) -> None:
        self._installed_pid = os.getpid()
        install_process_hooks()  # logger flush at exit and on SIGTERM
        atexit.register(self._at_exit)  # runs before the loggers' (atexit is LIFO)
        on_terminate(self._on_terminate)
        self._previous_excepthook = sys.excepthook
        sys.excepthook = self._excepthook

    def _excepthook(
        self,
        exc_type: type[BaseException],
        exc: BaseException,
        tb: TracebackType | None,
    ) -> None:
        self._uncaught = exc
        self._previous_excepthook(exc_type, exc, tb)

    def _end_open_runs(self, status: RecorderStatus, error: BaseException | None) -> None:
        recorders = []
        while self._open:
            recorders.append(self._open.popitem()[1])
        recorders.reverse()
        for recorder in reversed(recorders):
            try:
                recorder.end_run(status, error=error)
            except Exception as e:
                logger.error("Could not end run %s: %s", recorder.id, e)

    def _at_exit(self) -> None:
        if self._installed_pid != os.getpid():
            return
        error = self._uncaught
        self._end_open_runs(RecorderStatus.FAILED if error else RecorderStatus.FINISHED, error)
        close_all()

    def _on_terminate(self) -> None:
        if self._installed_pid == os.getpid():
            self._end_open_runs(RecorderStatus.KILLED, None)


_hooks = _ExitHooks()

#: The process-wide facade (Qlib's ``R``).
R = TrackingFacade()


def _log_training_to_active_run(step: int, metrics: Mapping[str, float]) -> None:
    """Send a model's training curve (see ``alphalab._training``) into the active run."""
    recorder = R.active_recorder
    if recorder is not None:
        recorder.log_metrics(step, **metrics)


add_default_reporter(_log_training_to_active_run)
