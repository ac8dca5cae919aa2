"""The tracking model on MLflow's client API (one ``MlflowClient`` per store, no fluent state)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import os
import pickle
import re
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlsplit

from alphalab.exceptions import InvalidMetricError, NotFoundError, TrackingError
from alphalab.logging import get_logger
from alphalab.tracking._artifacts import (
    TMP_PREFIX,
    atomic_write_bytes,
    check_artifact_path,
    dump_object,
    join_artifact_path,
    load_object_file,
)
from alphalab.tracking._base import (
    DEFAULT_RECORDER_NAME,
    Experiment,
    ExpManager,
    Recorder,
    RecorderStatus,
)
from alphalab.tracking._logger import (
    AsyncMetricLogger,
    MetricJournal,
    RecoveryResult,
    make_points,
    now_ms,
    recover_run,
)
from alphalab.tracking._provenance import (
    PARAM_ARGV,
    TAG_DATA_FINGERPRINT,
    TAG_ERROR,
    TAG_JOURNAL,
    TAG_PARENT,
    data_fingerprint,
    process_liveness,
    run_start_artifacts,
    run_start_tags,
)
from alphalab.tracking._sqlfast import SqlFastPath, fast_path_for
from alphalab.tracking._store import get_client, retried

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities import Run

logger = get_logger(__name__)

#: MLflow's limits on one param / tag value.
MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 8000
_MAX_PARAMS_PER_BATCH = 100
_SEARCH_PAGE = 50_000


@contextlib.contextmanager
def _mlflow_errors(what: str) -> Iterator[None]:
    """Turn MLflow errors into alphalab errors with what was being done."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as e:
        if e.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise NotFoundError(f"{what}: {e.message}") from e
        if e.error_code == "INVALID_PARAMETER_VALUE":
            raise InvalidMetricError(f"{what}: {e.message}") from e
        raise TrackingError(f"{what}: {e.message}") from e


def _local_path(uri: str) -> Path | None:
    """Local folder of an artifact URI, or None for remote stores."""
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if parts.scheme == "" or (len(parts.scheme) == 1 and uri[1] == ":"):
        return Path(uri)
    return None


def _to_datetime(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def _safe_folder_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "experiment"


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class _BackgroundWrites:
    """Artifact writes that need not delay starting a run, per run id, on one worker thread.

    The provenance files (package versions, git diff/status) are written here, so starting a
    run costs one store call; the run's tags (host, pid, git commit) are set at creation, so a
    process killed right after starting still leaves the essential provenance. Whoever reads
    the run's artifacts, and ending the run, waits for its pending writes first. The worker is
    not a daemon: the interpreter finishes pending writes before exiting.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._pid: int | None = None
        self._pending: dict[str, list[concurrent.futures.Future[None]]] = {}

    def submit(self, run_id: str, write: Callable[[], None]) -> None:
        with self._lock:
            if self._executor is None or self._pid != os.getpid():  # new, or forked since
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="alphalab-artifacts"
                )
                self._pid = os.getpid()
                self._pending.clear()
            try:
                future = self._executor.submit(write)
            except RuntimeError:  # interpreter shutting down: no new threads, write now
                future = concurrent.futures.Future()
                try:
                    write()
                    future.set_result(None)
                except Exception as e:
                    future.set_exception(e)
            self._pending.setdefault(run_id, []).append(future)

    def wait(self, run_id: str) -> None:
        """Wait for the pending writes of ``run_id``; a failed one is logged, not raised."""
        if run_id not in self._pending:
            return
        with self._lock:
            futures = self._pending.pop(run_id, [])
        for future in futures:
            error = future.exception()
            if error is not None:
                logger.error("Could not write the provenance files of run %s: %s", run_id, error)


_background = _BackgroundWrites()


class MlflowRecorder(Recorder):
    """A run in an MLflow tracking store."""

    def __init__(self, manager: MlflowExpManager, run: Run) -> None:
        self._manager = manager
        self._client = manager.client
        self._run = run
        self._stale = False  # the store changed the run since self._run was read
        self._started = False  # this handle started the run (so it knows it is RUNNING)
        self._logger: AsyncMetricLogger | None = None

    # ----- identity and status -------------------------------------------------------------

    @property
    def id(self) -> str:
        return str(self._run.info.run_id)

    @property
    def name(self) -> str:
        return str(self._run.info.run_name or "")

    @property
    def experiment_id(self) -> str:
        return str(self._run.info.experiment_id)

    @property
    def manager(self) -> MlflowExpManager:
        """The experiment manager (store) of this run."""
        return self._manager

    def refresh(self) -> MlflowRecorder:
        """Re-read the run from the store."""
        with _mlflow_errors(f"Cannot read run {self.id}"):
            self._run = self._client.get_run(self.id)
        self._stale = False
        return self

    def _current(self) -> Run:
        if self._stale:
            self.refresh()
        return self._run

    @property
    def status(self) -> RecorderStatus:
        self.refresh()
        return RecorderStatus(self._run.info.status)

    @property
    def start_time(self) -> datetime | None:
        return _to_datetime(self._current().info.start_time)

    @property
    def end_time(self) -> datetime | None:
        info = self._current().info
        if info.status == RecorderStatus.RUNNING.value:
            return None
        return _to_datetime(info.end_time)

    @property
    def parent_id(self) -> str | None:
        return self._current().data.tags.get(TAG_PARENT)

    @property
    def process_state(self) -> str:
        """Whether the process that last ran this run is ``alive``, ``dead`` or ``unknown``.

        A RUNNING run whose process is dead was killed (``alphalab exp recover`` ships what
        its journal holds); only processes on this host can be checked.
        """
        return process_liveness(self.list_tags())

    @property
    def info(self) -> dict[str, Any]:
        """Qlib's ``recorder.info``: id, name, experiment id, status and times."""
        return {
            "id": self.id,
            "name": self.name,
            "experiment_id": self.experiment_id,
            "status": self._current().info.status,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "artifact_uri": self._run.info.artifact_uri,
        }

    @property
    def journal_path(self) -> Path:
        """Where this process journals the run's metric points."""
        return self._manager.journal_dir / f"{self.id}.jsonl"

    # ----- lifecycle -----------------------------------------------------------------------

    def _attach(self, *, resumed: bool) -> None:
        """Record this process' provenance (host, pid, git, packages) on the run.

        A new run already got the provenance tags when it was created (in the same store
        call); a resumed run gets this process' host/pid. The command line is a tag; the
        ``cmd-sys.argv`` param is logged with the workflow config by :meth:`log_provenance`.
        The provenance files (packages, git diff/status) are written in the background.
        """
        if resumed:
            self.set_tags(**self._manager.start_tags())
        files = run_start_artifacts()

        def write() -> None:
            for path, text in files.items():
                self._write_bytes(path, text.encode("utf-8"), durable=False)

        _background.submit(self.id, write)

    def _open_logger(self) -> AsyncMetricLogger:
        if self._logger is None:
            journal = MetricJournal(self.journal_path) if self._manager.journal else None
            self._logger = AsyncMetricLogger(
                self._client, self.id, journal, fast=self._manager.fast
            )
        return self._logger

    def start_run(self, *, resume: bool = False) -> MlflowRecorder:
        current = self.status
        if current is RecorderStatus.RUNNING and not resume:
            raise TrackingError(
                f"Run {self.id} is already RUNNING; pass resume=True to reattach to it"
            )
        if current.is_finished() and not resume:
            raise TrackingError(
                f"Run {self.id} ({self.name!r}) has ended with status {current.value}; "
                "pass resume=True to append to it"
            )
        if current is not RecorderStatus.RUNNING:
            current.check_transition(RecorderStatus.RUNNING)
            with _mlflow_errors(f"Cannot start run {self.id}"):
                retried(self._client.update_run)(self.id, status=RecorderStatus.RUNNING.value)
        if resume and self._manager.journal and self.journal_path.exists():
            result = self.recover()
            if result.shipped:
                logger.info("Shipped %d journaled points of run %s", result.shipped, self.id)
        self._attach(resumed=resume)
        self.refresh()
        self._started = True
        return self

    def recover(self, journal_path: Path | None = None) -> RecoveryResult:
        """Ship the points of this run's journal that the store lacks (no duplicates)."""
        if journal_path is None:
            folder = self.list_tags().get(TAG_JOURNAL)
            journal_path = Path(folder) / f"{self.id}.jsonl" if folder else self.journal_path
        path = journal_path
        with _mlflow_errors(f"Cannot recover run {self.id}"):
            return recover_run(self._client, self.id, path, self._manager.fast)

    def flush(self) -> None:
        if self._logger is not None:
            self._logger.flush()

    def end_run(
        self,
        status: RecorderStatus | str = RecorderStatus.FINISHED,
        error: BaseException | None = None,
    ) -> None:
        target = RecorderStatus(status)
        problem: BaseException | None = None
        if self._logger is not None:
            try:
                self._logger.close()
            except TrackingError as e:
                problem = e
            self._logger = None
        if error is not None:
            self._record_error(error)
        _background.wait(self.id)
        current = RecorderStatus(self._current().info.status) if self._started else self.status
        current.check_transition(target)
        fast = self._manager.fast
        with _mlflow_errors(f"Cannot end run {self.id}"):
            # The fast path updates an active run in one statement; for anything else (a
            # deleted run, a server store) the client does it or raises MLflow's error.
            if fast is None or not retried(fast.set_terminated)(self.id, target.value, now_ms()):
                retried(self._client.set_terminated)(self.id, status=target.value)
        self._started = False
        self._stale = True
        if problem is not None:
            raise problem

    def _record_error(self, error: BaseException) -> None:
        text = "".join(traceback.format_exception(error))
        summary = f"{type(error).__name__}: {error}"
        try:
            self.set_tags(**{TAG_ERROR: summary})
            self._write_bytes("error/traceback.txt", text.encode("utf-8"))
        except Exception as e:  # recording the error must not hide it
            logger.error("Could not record the error of run %s: %s", self.id, e)

    # ----- params, metrics, tags -----------------------------------------------------------

    def log_params(self, **kwargs: Any) -> None:
        from mlflow.entities import Param

        params = []
        for key, value in kwargs.items():
            text = str(value)
            if len(text) > MAX_PARAM_LENGTH:
                where = join_artifact_path("params", f"{key}.txt")
                self._write_bytes(where, text.encode("utf-8"))
                note = f" ...[truncated; full value in artifact '{where}']"
                text = text[: MAX_PARAM_LENGTH - len(note)] + note
                logger.warning(
                    "Param %r is longer than %d characters; the full value is in artifact %r",
                    key,
                    MAX_PARAM_LENGTH,
                    where,
                )
            params.append(Param(key, text))
        for start in range(0, len(params), _MAX_PARAMS_PER_BATCH):
            with _mlflow_errors(f"Cannot log params of run {self.id}"):
                retried(self._client.log_batch)(
                    self.id, params=params[start : start + _MAX_PARAMS_PER_BATCH]
                )

    def log_metrics(self, step: int | None = None, **kwargs: Any) -> None:
        if not kwargs:
            return
        points = make_points(kwargs, step, now_ms())
        self._open_logger().log(points)

    def set_tags(self, **kwargs: Any) -> None:
        from mlflow.entities import RunTag

        tags = []
        for key, value in kwargs.items():
            text = str(value)
            if len(text) > MAX_TAG_LENGTH:
                note = " ...[truncated]"
                logger.warning(
                    "Tag %r is longer than %d characters; truncated", key, MAX_TAG_LENGTH
                )
                text = text[: MAX_TAG_LENGTH - len(note)] + note
            tags.append(RunTag(key, text))
        for start in range(0, len(tags), _MAX_PARAMS_PER_BATCH):
            with _mlflow_errors(f"Cannot set tags of run {self.id}"):
                retried(self._client.log_batch)(
                    self.id, tags=tags[start : start + _MAX_PARAMS_PER_BATCH]
                )

    def delete_tags(self, *keys: str) -> None:
        for key in keys:
            with _mlflow_errors(f"Cannot delete tag {key!r} of run {self.id}"):
                retried(self._client.delete_tag)(self.id, key)

    def list_metrics(self) -> dict[str, float]:
        self.flush()
        return dict(self.refresh()._run.data.metrics)

    def list_params(self) -> dict[str, str]:
        return dict(self.refresh()._run.data.params)

    def list_tags(self) -> dict[str, str]:
        return dict(self.refresh()._run.data.tags)

    def metric_history(self, key: str) -> pd.DataFrame:
        import pandas as pd

        self.flush()
        with _mlflow_errors(f"Cannot read metric {key!r} of run {self.id}"):
            history = self._client.get_metric_history(self.id, key)
        frame = pd.DataFrame(
            {
                "step": [m.step for m in history],
                "timestamp": [m.timestamp for m in history],
                "value": [m.value for m in history],
            }
        )
        return frame.sort_values(["step", "timestamp"], kind="stable").reset_index(drop=True)

    get_metric_history = metric_history

    def log_provenance(
        self,
        *,
        config: Mapping[str, Any] | None = None,
        config_file: str | Path | None = None,
        dataset: Any = None,
    ) -> None:
        """Log what a workflow run was made from (Qlib's params, plus more).

        Logs the flattened config as params (dotted keys) together with ``cmd-sys.argv`` in
        one store call, keeps the full config as the ``config`` artifact (params longer than
        MLflow's limit are also kept in full as artifacts), the config file itself, and the
        fingerprint of ``dataset`` as the ``alphalab.data_fingerprint`` tag.
        """
        from alphalab.config import flatten_dict

        params: dict[str, Any] = {PARAM_ARGV: " ".join(sys.argv)}
        if config is not None:
            params.update(flatten_dict(config))
            self.save_objects(config=dict(config))
        self.log_params(**params)
        if config_file is not None:
            self.log_artifact(config_file)
        if dataset is not None:
            self.set_tags(**{TAG_DATA_FINGERPRINT: data_fingerprint(dataset)})

    # ----- artifacts -----------------------------------------------------------------------

    def _artifact_root(self) -> Path | None:
        return _local_path(self._run.info.artifact_uri)

    def get_artifact_uri(self) -> str:
        """URI of the run's artifact folder (Qlib's ``get_artifact_uri``)."""
        return str(self._current().info.artifact_uri)

    def get_local_dir(self) -> str:
        root = self._artifact_root()
        if root is None:
            raise TrackingError(
                f"The artifacts of run {self.id} are remote ({self._run.info.artifact_uri}); "
                "use download_artifact(path) to get a local copy"
            )
        _background.wait(self.id)
        root.mkdir(parents=True, exist_ok=True)
        return str(root)

    def _write_bytes(self, path: str, data: bytes, *, durable: bool = True) -> None:
        path = check_artifact_path(path)
        root = self._artifact_root()
        if root is not None:
            atomic_write_bytes(root / path, data, durable=durable)
            return
        folder, _, filename = path.rpartition("/")
        with tempfile.TemporaryDirectory(prefix="alphalab-") as tmp:
            local = Path(tmp) / filename
            local.write_bytes(data)
            with _mlflow_errors(f"Cannot upload artifact {path!r} of run {self.id}"):
                self._client.log_artifact(self.id, str(local), artifact_path=folder or None)

    def save_objects(
        self, local_path: str | Path | None = None, artifact_path: str | None = None, **kwargs: Any
    ) -> None:
        if local_path is not None:
            self.log_artifact(local_path, artifact_path)
        for name, obj in kwargs.items():
            self._write_bytes(join_artifact_path(artifact_path, name), dump_object(obj))

    def load_object(self, name: str, unpickler: type[pickle.Unpickler] = pickle.Unpickler) -> Any:
        path = check_artifact_path(name)
        _background.wait(self.id)
        root = self._artifact_root()
        if root is not None:
            file = root / path
            if not file.is_file():
                self._raise_missing(path)
            return load_object_file(file, unpickler)
        folder = path.rpartition("/")[0]
        if path not in self.list_artifacts(folder or None):
            self._raise_missing(path)
        with tempfile.TemporaryDirectory(prefix="alphalab-") as tmp:
            local = self.download_artifact(path, tmp)
            return load_object_file(Path(local), unpickler)

    def _raise_missing(self, path: str) -> None:
        raise NotFoundError(
            f"Run {self.id} has no artifact {path!r}; it has: "
            f"{', '.join(self.list_artifacts()) or 'none'}"
        )

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        source = Path(local_path)
        if not source.exists():
            raise NotFoundError(f"Cannot log artifact: {source} does not exist")
        folder = check_artifact_path(artifact_path or "", allow_empty=True)
        root = self._artifact_root()
        if root is None:
            with _mlflow_errors(f"Cannot upload {source} to run {self.id}"):
                if source.is_dir():
                    self._client.log_artifacts(self.id, str(source), folder or None)
                else:
                    self._client.log_artifact(self.id, str(source), folder or None)
            return
        target = root / folder if folder else root
        if source.is_dir():
            base = target / source.name
            for file in sorted(p for p in source.rglob("*") if p.is_file()):
                atomic_write_bytes(base / file.relative_to(source), file.read_bytes())
        else:
            atomic_write_bytes(target / source.name, source.read_bytes())

    def list_artifacts(self, artifact_path: str | None = None) -> list[str]:
        folder = check_artifact_path(artifact_path or "", allow_empty=True)
        _background.wait(self.id)
        with _mlflow_errors(f"Cannot list artifacts of run {self.id}"):
            infos = self._client.list_artifacts(self.id, folder or None)
        return [
            f"{i.path}/" if i.is_dir else i.path
            for i in infos
            if not i.path.rsplit("/", 1)[-1].startswith(TMP_PREFIX)
        ]

    def download_artifact(self, path: str, dst_path: str | Path | None = None) -> str:
        path = check_artifact_path(path)
        if dst_path is None:
            dst_path = tempfile.mkdtemp(prefix="alphalab-artifact-")
        Path(dst_path).mkdir(parents=True, exist_ok=True)
        _background.wait(self.id)
        with _mlflow_errors(f"Cannot download artifact {path!r} of run {self.id}"):
            return str(self._client.download_artifacts(self.id, path, str(dst_path)))

    # ----- nested runs ---------------------------------------------------------------------

    def start_child(self, recorder_name: str | None = None) -> MlflowRecorder:
        exp = self._manager.get_exp(experiment_id=self.experiment_id, create=False)
        return exp.start(recorder_name=recorder_name, parent_id=self.id)

    def list_children(self) -> list[Recorder]:
        runs = self._manager._search_runs(
            [self.experiment_id], filter_string=f"tags.{TAG_PARENT} = {_quote(self.id)}"
        )
        return [MlflowRecorder(self._manager, run) for run in runs]

    @property
    def child_count(self) -> int:
        return len(self.list_children())


class MlflowExperiment(Experiment):
    """An experiment in an MLflow tracking store."""

    def __init__(self, manager: MlflowExpManager, experiment_id: str, name: str) -> None:
        self._manager = manager
        self._client = manager.client
        self._id = experiment_id
        self._name = name

    @property
    def id(self) -> str:
        return self._id

    @property
    def name(self) -> str:
        return self._name

    def _create_run(
        self,
        recorder_name: str | None,
        *,
        status: RecorderStatus,
        parent_id: str | None = None,
    ) -> MlflowRecorder:
        tags = self._manager.start_tags() if status is RecorderStatus.RUNNING else {}
        if parent_id:
            tags[TAG_PARENT] = parent_id
        name = recorder_name or DEFAULT_RECORDER_NAME
        fast = self._manager.fast
        with _mlflow_errors(f"Cannot create a run in experiment {self.name!r}"):
            created = None
            if fast is not None:  # one transaction: the run, its status and every tag
                created = retried(fast.create_run)(
                    self.id, run_name=name, tags=tags, start_time=now_ms(), status=status.value
                )
            if created is None:
                created = retried(self._client.create_run)(self.id, run_name=name, tags=tags)
                if status is not RecorderStatus.RUNNING:
                    run_id = created.info.run_id
                    retried(self._client.update_run)(run_id, status=status.value)
                    created = self._client.get_run(run_id)
        return MlflowRecorder(self._manager, created)

    def start(
        self,
        *,
        recorder_id: str | None = None,
        recorder_name: str | None = None,
        resume: bool = False,
        parent_id: str | None = None,
    ) -> MlflowRecorder:
        if recorder_id is not None or (resume and recorder_name is not None):
            recorder = self.get_recorder(recorder_id, recorder_name, create=False)
            if recorder.status is RecorderStatus.SCHEDULED:
                return recorder.start_run()
            return recorder.start_run(resume=resume)
        recorder = self._create_run(
            recorder_name, status=RecorderStatus.RUNNING, parent_id=parent_id
        )
        recorder._attach(resumed=False)
        recorder._started = True
        return recorder

    def create_recorder(self, recorder_name: str | None = None) -> MlflowRecorder:
        return self._create_run(recorder_name, status=RecorderStatus.SCHEDULED)

    def get_recorder(
        self,
        recorder_id: str | None = None,
        recorder_name: str | None = None,
        create: bool = True,
        start: bool = False,
    ) -> MlflowRecorder:
        if recorder_id is not None:
            recorder = self._manager.get_recorder(recorder_id)
            if recorder.experiment_id != self.id:
                raise NotFoundError(
                    f"Run {recorder_id} belongs to experiment {recorder.experiment_id}, not to "
                    f"{self.name!r} ({self.id})"
                )
            return recorder
        if recorder_name is not None:
            runs = self._manager._search_runs(
                [self.id],
                filter_string=f"attributes.run_name = {_quote(recorder_name)}",
                order_by=["attributes.start_time DESC"],
                max_results=1,
            )
            if runs:
                return MlflowRecorder(self._manager, runs[0])
        if not create:
            what = f"named {recorder_name!r}" if recorder_name else "(no id or name given)"
            raise NotFoundError(f"Experiment {self.name!r} has no run {what}")
        if start:
            return self.start(recorder_name=recorder_name)
        return self.create_recorder(recorder_name)

    def list_recorders(
        self, rtype: Literal["dict", "list"] = "dict", status: str | None = None
    ) -> dict[str, Recorder] | list[Recorder]:
        filter_string = f"attributes.status = {_quote(str(status))}" if status else ""
        runs = self._manager._search_runs(
            [self.id], filter_string=filter_string, order_by=["attributes.start_time DESC"]
        )
        recorders: list[Recorder] = [MlflowRecorder(self._manager, r) for r in runs]
        if rtype == "list":
            return recorders
        if rtype != "dict":
            raise TrackingError(f"list_recorders: rtype must be 'dict' or 'list'; got {rtype!r}")
        return {r.id: r for r in recorders}

    def search_records(self, **kwargs: Any) -> pd.DataFrame:
        return self._manager.search_records([self.id], **kwargs)

    def delete_recorder(
        self, recorder_id: str | None = None, recorder_name: str | None = None
    ) -> None:
        if recorder_id is None and recorder_name is None:
            raise TrackingError("delete_recorder needs a recorder_id or a recorder_name")
        recorder = self.get_recorder(recorder_id, recorder_name, create=False)
        with _mlflow_errors(f"Cannot delete run {recorder.id}"):
            retried(self._client.delete_run)(recorder.id)


class MlflowExpManager(ExpManager):
    """Every experiment of one MLflow tracking store.

    Args:
        uri: Tracking URI (``sqlite:///``, ``postgresql://`` or ``http(s)://``).
        artifact_location: Root folder/URI for the artifacts of experiments created here;
            None lets the store decide (an MLflow server's artifact root).
        default_exp_name: Experiment used when none is named.
        journal_dir: Local folder of the metric journals.
        journal: Whether to journal metric points (the no-loss guarantee needs it).
        sql_fast_path: Whether to write metric batches and run start/end straight into the
            tables of a SQLite/PostgreSQL store (see ``_sqlfast``); False always uses
            MLflow's client calls.
    """

    def __init__(
        self,
        uri: str,
        *,
        artifact_location: str | None,
        default_exp_name: str = "Experiment",
        journal_dir: str | Path,
        journal: bool = True,
        sql_fast_path: bool = True,
    ) -> None:
        self._uri = uri
        self._artifact_location = artifact_location
        self._default_exp_name = default_exp_name
        self.journal_dir = Path(journal_dir)
        self.journal = journal
        self._client: MlflowClient | None = None
        self._recent: dict[str, tuple[MlflowExperiment, float]] = {}
        self._use_fast_path = sql_fast_path
        self._fast: SqlFastPath | None = None
        self._fast_checked = False

    @property
    def uri(self) -> str:
        return self._uri

    @property
    def default_exp_name(self) -> str:
        return self._default_exp_name

    @property
    def client(self) -> MlflowClient:
        """The MlflowClient of the store (created, and the store migrated, on first use)."""
        if self._client is None:
            self._client = get_client(self._uri)
        return self._client

    @property
    def fast(self) -> SqlFastPath | None:
        """Direct SQL writes for this store, or None (server stores, other schemas, disabled)."""
        if not self._fast_checked:
            self._fast = fast_path_for(self.client) if self._use_fast_path else None
            self._fast_checked = True
        return self._fast

    def start_tags(self) -> dict[str, str]:
        """Provenance tags of a run started by this process (host, pid, git, journal)."""
        tags = run_start_tags()
        tags[TAG_JOURNAL] = str(self.journal_dir)
        return tags

    def _artifact_location_for(self, name: str) -> str | None:
        if self._artifact_location is None:
            return None
        root = self._artifact_location.rstrip("/")
        return f"{root}/{_safe_folder_name(name)}"

    def create_exp(self, experiment_name: str | None = None) -> MlflowExperiment:
        from mlflow.exceptions import MlflowException

        name = experiment_name or self._default_exp_name
        existing = self._find_by_name(name)
        if existing is not None:
            return existing
        try:
            experiment_id = retried(self.client.create_experiment)(
                name, artifact_location=self._artifact_location_for(name)
            )
        except MlflowException as e:
            # Another process created it between our lookup and our insert: use theirs.
            existing = self._find_by_name(name)
            if existing is not None:
                return existing
            raise TrackingError(f"Cannot create experiment {name!r}: {e.message}") from e
        return MlflowExperiment(self, str(experiment_id), name)

    #: How long :meth:`start_in` trusts an experiment it looked up by name (seconds).
    NAME_CACHE_SECONDS = 10.0

    def start_in(
        self,
        experiment_name: str | None,
        *,
        recorder_name: str | None = None,
        parent_id: str | None = None,
    ) -> MlflowRecorder:
        """Start a new run in the named experiment (get-or-create), saving a lookup per run.

        The experiment found by name is reused for a few seconds; if it was deleted
        meanwhile (by another process), the run is started after a fresh lookup.
        """
        name = experiment_name or self._default_exp_name
        cached = self._recent.get(name)
        if cached is not None and time.monotonic() - cached[1] < self.NAME_CACHE_SECONDS:
            try:
                return cached[0].start(recorder_name=recorder_name, parent_id=parent_id)
            except (TrackingError, NotFoundError):
                self._recent.pop(name, None)
        exp = self.get_exp(experiment_name=name)
        self._recent[name] = (exp, time.monotonic())
        return exp.start(recorder_name=recorder_name, parent_id=parent_id)

    def _find_by_name(self, name: str) -> MlflowExperiment | None:
        with _mlflow_errors(f"Cannot read experiment {name!r}"):
            exp = self.client.get_experiment_by_name(name)
        if exp is None:
            return None
        if exp.lifecycle_stage != "active":
            raise TrackingError(
                f"Experiment {name!r} ({exp.experiment_id}) is deleted but still holds its "
                "name; restore it with MlflowClient.restore_experiment or choose another name"
            )
        return MlflowExperiment(self, str(exp.experiment_id), str(exp.name))

    def get_exp(
        self,
        *,
        experiment_id: str | None = None,
        experiment_name: str | None = None,
        create: bool = True,
    ) -> MlflowExperiment:
        if experiment_id is not None:
            with _mlflow_errors(f"No experiment with id {experiment_id!r}"):
                exp = self.client.get_experiment(str(experiment_id))
            if exp.lifecycle_stage != "active":
                raise NotFoundError(f"Experiment {experiment_id!r} ({exp.name!r}) is deleted")
            if experiment_name is not None and exp.name != experiment_name:
                raise NotFoundError(
                    f"Experiment {experiment_id!r} is named {exp.name!r}, not {experiment_name!r}"
                )
            return MlflowExperiment(self, str(exp.experiment_id), str(exp.name))
        name = experiment_name or self._default_exp_name
        found = self._find_by_name(name)
        if found is not None:
            return found
        if not create:
            names = ", ".join(sorted(self.list_experiments())) or "none"
            raise NotFoundError(f"No experiment named {name!r}; existing experiments: {names}")
        return self.create_exp(name)

    def list_experiments(self) -> dict[str, Experiment]:
        from mlflow.entities import ViewType

        out: dict[str, Experiment] = {}
        token: str | None = None
        while True:
            with _mlflow_errors("Cannot list experiments"):
                page = self.client.search_experiments(
                    view_type=ViewType.ACTIVE_ONLY, max_results=50_000, page_token=token
                )
            for exp in page:
                out[str(exp.name)] = MlflowExperiment(self, str(exp.experiment_id), str(exp.name))
            token = page.token
            if not token:
                return out

    def delete_exp(
        self, experiment_id: str | None = None, experiment_name: str | None = None
    ) -> None:
        if experiment_id is None and experiment_name is None:
            raise TrackingError("delete_exp needs an experiment_id or an experiment_name")
        exp = self.get_exp(
            experiment_id=experiment_id, experiment_name=experiment_name, create=False
        )
        self._recent.pop(exp.name, None)
        with _mlflow_errors(f"Cannot delete experiment {exp.name!r}"):
            # Free the name first: MLflow keeps names of deleted experiments reserved.
            retried(self.client.rename_experiment)(exp.id, f"{exp.name}.deleted-{exp.id}")
            retried(self.client.delete_experiment)(exp.id)

    def get_recorder(self, recorder_id: str) -> MlflowRecorder:
        with _mlflow_errors(f"No run with id {recorder_id!r}"):
            run = self.client.get_run(recorder_id)
        if run.info.lifecycle_stage != "active":
            raise NotFoundError(f"Run {recorder_id} is deleted")
        return MlflowRecorder(self, run)

    def _search_runs(
        self,
        experiment_ids: list[str],
        *,
        filter_string: str = "",
        order_by: list[str] | None = None,
        max_results: int | None = None,
        run_view_type: int | None = None,
    ) -> list[Run]:
        """Every matching run, following pages (Qlib's one-page bug is not repeated)."""
        from mlflow.entities import ViewType

        runs: list[Run] = []
        token: str | None = None
        while True:
            page_size = _SEARCH_PAGE if max_results is None else min(max_results, _SEARCH_PAGE)
            with _mlflow_errors(f"Cannot search runs (filter {filter_string!r})"):
                page = self.client.search_runs(
                    experiment_ids,
                    filter_string=filter_string,
                    run_view_type=ViewType.ACTIVE_ONLY if run_view_type is None else run_view_type,
                    max_results=page_size,
                    order_by=order_by,
                    page_token=token,
                )
            runs.extend(page)
            token = page.token
            if not token or (max_results is not None and len(runs) >= max_results):
                return runs if max_results is None else runs[:max_results]

    def search_records(
        self, experiment_ids: list[str] | None = None, **kwargs: Any
    ) -> pd.DataFrame:
        """Runs as a DataFrame, one row each (like ``mlflow.search_runs``).

        Args:
            experiment_ids: Experiments to search; None means every active experiment.
            **kwargs: ``filter_string`` (MLflow filter syntax, e.g.
                ``"metrics.IC > 0.03 and params.model = 'LGBModel'"``), ``order_by``,
                ``max_results`` (None = all), ``run_view_type``.

        Columns: ``run_id``, ``experiment_id``, ``run_name``, ``status``, ``start_time``,
        ``end_time``, ``artifact_uri``, then ``metrics.*``, ``params.*``, ``tags.*``.
        """
        import pandas as pd

        unknown = set(kwargs) - {"filter_string", "order_by", "max_results", "run_view_type"}
        if unknown:
            raise TrackingError(
                f"search_records got unknown arguments {sorted(unknown)}; expected "
                "filter_string, order_by, max_results, run_view_type"
            )
        if experiment_ids is None:
            experiment_ids = [e.id for e in self.list_experiments().values()]
        runs = self._search_runs([str(i) for i in experiment_ids], **kwargs)
        rows = []
        for run in runs:
            row: dict[str, Any] = {
                "run_id": run.info.run_id,
                "experiment_id": run.info.experiment_id,
                "run_name": run.info.run_name,
                "status": run.info.status,
                "start_time": run.info.start_time,
                "end_time": run.info.end_time,
                "artifact_uri": run.info.artifact_uri,
            }
            row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
            row.update({f"params.{k}": v for k, v in run.data.params.items()})
            row.update({f"tags.{k}": v for k, v in run.data.tags.items()})
            rows.append(row)
        base = ["run_id", "experiment_id", "run_name", "status", "start_time", "end_time"]
        frame = pd.DataFrame(rows, columns=None if rows else [*base, "artifact_uri"])
        for column in ("start_time", "end_time"):
            frame[column] = pd.to_datetime(frame[column], unit="ms", utc=True)
        return frame

    def recover(self, recorder_id: str, journal_path: Path | None = None) -> RecoveryResult:
        """Ship what a run's journal holds and the store lacks (``alphalab exp recover``).

        A run left RUNNING by a process that is now dead is then marked KILLED (a run found
        dead), with the ``alphalab.killed`` tag saying why.
        """
        recorder = self.get_recorder(recorder_id)
        result = recorder.recover(journal_path)
        if recorder.status is RecorderStatus.RUNNING and recorder.process_state == "dead":
            tags = recorder.list_tags()
            where = f"{tags.get('hostname', '?')}:{tags.get('alphalab.pid', '?')}"
            recorder.set_tags(**{"alphalab.killed": f"process {where} found dead by recover"})
            recorder.end_run(RecorderStatus.KILLED)
            result = dataclasses.replace(result, marked_killed=True)
        return result
