"""Experiment tracking: ExpManager -> Experiment -> Recorder on MLflow, and the ``R`` facade.

``with R.start(experiment_name="exp"):`` opens a run; inside it ``R.log_params``,
``R.log_metrics(step=..., **metrics)``, ``R.save_objects(**objects)`` record into it. Metrics go
through a batched asynchronous logger backed by a local journal, so no logged point is lost
even if the process is killed (``alphalab exp recover RUN_ID`` ships what a dead process left).
"""

from alphalab.tracking._artifacts import check_artifact_path
from alphalab.tracking._base import (
    DEFAULT_RECORDER_NAME,
    Experiment,
    ExpManager,
    Recorder,
    RecorderStatus,
)
from alphalab.tracking._fluent import R, TrackingFacade
from alphalab.tracking._logger import AsyncMetricLogger, MetricJournal, RecoveryResult
from alphalab.tracking._mlflow import MlflowExperiment, MlflowExpManager, MlflowRecorder
from alphalab.tracking._provenance import data_fingerprint, process_liveness
from alphalab.tracking._store import get_client, normalize_tracking_uri

__all__ = [
    "DEFAULT_RECORDER_NAME",
    "AsyncMetricLogger",
    "ExpManager",
    "Experiment",
    "MetricJournal",
    "MlflowExpManager",
    "MlflowExperiment",
    "MlflowRecorder",
    "R",
    "Recorder",
    "RecorderStatus",
    "RecoveryResult",
    "TrackingFacade",
    "check_artifact_path",
    "data_fingerprint",
    "get_client",
    "normalize_tracking_uri",
    "process_liveness",
]
