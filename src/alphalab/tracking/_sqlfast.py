"""Direct SQL for the hot paths of MLflow's SQL stores (SQLite, PostgreSQL).

MLflow's ``SqlAlchemyStore`` builds an ORM object per metric point and reads the run back after
creating or ending it; that costs ~0.1 ms a point and several queries per run. For the three
operations alphalab does most — shipping a batch of metric points, creating a run with its
provenance tags, ending a run — this module writes the same rows into MLflow's own tables with
SQLAlchemy Core, through the store's own engine and managed sessions (so SQLite gets MLflow's
pragmas and errors become the ``MlflowException`` MLflow would raise).

The semantics are MLflow's ``log_batch``/``create_run``/``set_terminated``:

* a point is stored once: the ``metrics`` primary key covers every column, so an identical
  point sent again (a retried batch, a journal replay) is skipped (``ON CONFLICT DO NOTHING``);
* NaN is stored as ``value=0, is_nan=true`` and +-inf as the largest finite double;
* ``latest_metrics`` keeps, per key, the point that is greatest by (step, timestamp, value),
  updated with an upsert in the same transaction;
* metric names are checked with MLflow's own validation; the run must exist and be active.

It is used only when the store is exactly MLflow's ``SqlAlchemyStore`` on SQLite or PostgreSQL
and its tables have the columns and keys checked below; otherwise :func:`fast_path_for` returns
None and callers use the ``MlflowClient`` as before (e.g. for ``http(s)://`` servers).
"""

from __future__ import annotations

import math
import threading
import uuid
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from alphalab.logging import get_logger

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

logger = get_logger(__name__)

#: A metric point: (key, value, timestamp in ms, step) — as in ``alphalab.tracking._logger``.
Point = tuple[str, float, int, int]

#: MLflow stores +-inf as the largest finite double (SQL has no infinity).
_MAX_DOUBLE = 1.7976931348623157e308

#: The columns and primary keys the fast path writes; anything else means "use the client".
_EXPECTED_COLUMNS = {
    "metrics": {"key", "value", "timestamp", "step", "is_nan", "run_uuid"},
    "latest_metrics": {"key", "value", "timestamp", "step", "is_nan", "run_uuid"},
    "tags": {"key", "value", "run_uuid"},
    "runs": {
        "run_uuid",
        "name",
        "source_type",
        "source_name",
        "entry_point_name",
        "user_id",
        "status",
        "start_time",
        "end_time",
        "deleted_time",
        "source_version",
        "lifecycle_stage",
        "artifact_uri",
        "experiment_id",
    },
    "experiments": {"experiment_id", "artifact_location", "lifecycle_stage"},
}
_EXPECTED_KEYS = {
    "metrics": {"key", "timestamp", "step", "run_uuid", "value", "is_nan"},
    "latest_metrics": {"key", "run_uuid"},
    "tags": {"key", "run_uuid"},
    "runs": {"run_uuid"},
}


def metric_insert_sql(dialect: str, paramstyle: str) -> tuple[str, bool] | None:
    """The driver-level statement inserting metric rows, and whether it takes columns.

    SQLAlchemy's per-row parameter processing would cost more than the insert itself, so the
    rows go to the driver directly: SQLite's ``executemany`` of plain tuples, and on
    PostgreSQL one statement over six arrays (``unnest``), not a round trip per row. None for
    another dialect or driver.
    """
    columns = '"key", "value", "timestamp", "step", "is_nan", "run_uuid"'
    if dialect == "sqlite" and paramstyle == "qmark":
        sql = f"INSERT INTO metrics ({columns}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
        return sql, False
    if dialect == "postgresql" and paramstyle in ("format", "pyformat"):
        sql = (
            f"INSERT INTO metrics ({columns}) SELECT * FROM unnest(%s::varchar[], "
            "%s::double precision[], %s::bigint[], %s::bigint[], %s::boolean[], "
            "%s::varchar[]) ON CONFLICT DO NOTHING"
        )
        return sql, True
    return None


def sanitize_metric_value(value: float) -> tuple[bool, float]:
    """``(is_nan, stored value)`` exactly as MLflow's SQL store stores a metric value."""
    if math.isnan(value):
        return True, 0.0
    if math.isinf(value):
        return False, _MAX_DOUBLE if value > 0 else -_MAX_DOUBLE
    return False, value


class SqlFastPath:
    """Bulk metric inserts and one-statement run start/end on one MLflow SQL store.

    Build it with :func:`fast_path_for`, which checks that the store and its schema are the
    ones this class was written against.
    """

    def __init__(self, store: Any) -> None:
        from mlflow.store.tracking.dbmodels.models import (
            SqlExperiment,
            SqlLatestMetric,
            SqlMetric,
            SqlRun,
            SqlTag,
        )

        self._store = store
        self.dialect: str = store.engine.dialect.name
        self._metrics = SqlMetric.__table__
        self._latest = SqlLatestMetric.__table__
        self._runs = SqlRun.__table__
        self._tags = SqlTag.__table__
        self._experiments = SqlExperiment.__table__
        self._valid_keys: set[str] = set()
        statement = metric_insert_sql(self.dialect, store.engine.dialect.paramstyle)
        if statement is None:
            raise ValueError(f"No bulk metric insert for {self.dialect} with this driver")
        self._insert_metrics_sql, self._columnar = statement
        upsert = self._dialect_insert(self._latest)
        new, old = upsert.excluded, self._latest.c
        newer = (new.step > old.step) | (
            (new.step == old.step)
            & (
                (new.timestamp > old.timestamp)
                | ((new.timestamp == old.timestamp) & (new.value > old.value))
            )
        )
        self._upsert_latest = upsert.on_conflict_do_update(
            index_elements=[old.key, old.run_uuid],
            set_={
                "value": new.value,
                "timestamp": new.timestamp,
                "step": new.step,
                "is_nan": new.is_nan,
            },
            where=newer,
        )

    def _dialect_insert(self, table: Any) -> Any:
        if self.dialect == "postgresql":
            from sqlalchemy.dialects import postgresql

            return postgresql.insert(table)
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)

    def _session(self) -> Any:
        return self._store.ManagedSessionMaker(read_only=False)

    def _check_run_active(self, session: Any, run_id: str) -> None:
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST
        from sqlalchemy import select

        runs = self._runs.c
        stage = session.execute(
            select(runs.lifecycle_stage).where(runs.run_uuid == run_id)
        ).scalar_one_or_none()
        if stage is None:
            raise MlflowException(f"Run with id={run_id} not found", RESOURCE_DOES_NOT_EXIST)
        if stage != "active":
            raise MlflowException(
                f"The run {run_id} must be in the 'active' state. Current state is {stage}.",
                INVALID_PARAMETER_VALUE,
            )

    def _validate_keys(self, keys: Iterable[str]) -> None:
        from mlflow.utils.validation import _validate_metric_name

        for key in keys:
            if key not in self._valid_keys:
                _validate_metric_name(key)
                self._valid_keys.add(key)

    # ----- metrics -------------------------------------------------------------------------

    def log_metrics(self, run_id: str, points: Sequence[Point]) -> None:
        """Store ``points`` in one transaction; points already stored are skipped.

        Raises:
            MlflowException: as MLflow's ``log_batch`` would (unknown or deleted run, invalid
                metric name, a database error).
        """
        if not points:
            return
        self._validate_keys({p[0] for p in points})
        rows: list[tuple[str, float, int, int, bool, str]] = []
        latest: dict[str, tuple[int, int, float, bool]] = {}
        for key, raw, timestamp, step in points:
            is_nan, value = sanitize_metric_value(raw)
            rows.append((key, value, timestamp, step, is_nan, run_id))
            best = latest.get(key)
            if best is None or (step, timestamp, value) > best[:3]:
                latest[key] = (step, timestamp, value, is_nan)
        latest_rows = [
            {
                "key": key,
                "value": value,
                "timestamp": timestamp,
                "step": step,
                "is_nan": is_nan,
                "run_uuid": run_id,
            }
            for key, (step, timestamp, value, is_nan) in sorted(latest.items())
        ]
        with self._session() as session:
            self._check_run_active(session, run_id)
            params: Any = (
                tuple(list(c) for c in zip(*rows, strict=True)) if self._columnar else rows
            )
            session.connection().exec_driver_sql(self._insert_metrics_sql, params)
            # Sorted keys: concurrent writers lock latest_metrics rows in the same order.
            session.execute(self._upsert_latest, latest_rows)

    # ----- runs ----------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str,
        *,
        run_name: str,
        tags: Mapping[str, str],
        start_time: int,
        status: str = "RUNNING",
    ) -> Run | None:
        """Insert a run and its tags in one transaction, as ``MlflowClient.create_run`` does.

        Returns None (nothing written) when the experiment id is not an integer or the
        experiment has no artifact location: the caller then uses the client, which raises
        MLflow's own error or handles the case.

        Raises:
            MlflowException: for an unknown or deleted experiment, or a database error.
        """
        from mlflow.entities import Run, RunData, RunInfo, RunTag
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST
        from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME, MLFLOW_USER
        from mlflow.utils.uri import append_to_uri_path
        from sqlalchemy import insert, select

        try:
            exp_key = int(experiment_id)
        except ValueError:
            return None
        all_tags = {**tags, MLFLOW_RUN_NAME: run_name}
        user_id = all_tags.get(MLFLOW_USER, "unknown")
        run_id = uuid.uuid4().hex
        exps = self._experiments.c
        with self._session() as session:
            found = session.execute(
                select(exps.artifact_location, exps.lifecycle_stage).where(
                    exps.experiment_id == exp_key
                )
            ).one_or_none()
            if found is None:
                raise MlflowException(
                    f"No Experiment with id={experiment_id} exists", RESOURCE_DOES_NOT_EXIST
                )
            location, stage = found
            if stage != "active":
                raise MlflowException(
                    f"The experiment {experiment_id} must be in the 'active' state. "
                    f"Current state is {stage}.",
                    INVALID_PARAMETER_VALUE,
                )
            if not location:
                return None
            artifact_uri = append_to_uri_path(location, run_id, "artifacts")
            session.execute(
                insert(self._runs),
                [
                    {
                        "run_uuid": run_id,
                        "name": run_name,
                        "source_type": "UNKNOWN",
                        "source_name": "",
                        "entry_point_name": "",
                        "user_id": user_id,
                        "status": status,
                        "start_time": start_time,
                        "end_time": None,
                        "deleted_time": None,
                        "source_version": "",
                        "lifecycle_stage": "active",
                        "artifact_uri": artifact_uri,
                        "experiment_id": exp_key,
                    }
                ],
            )
            session.execute(
                insert(self._tags),
                [{"key": k, "value": v, "run_uuid": run_id} for k, v in all_tags.items()],
            )
        info = RunInfo(
            run_id=run_id,
            experiment_id=str(experiment_id),
            user_id=user_id,
            status=status,
            start_time=start_time,
            end_time=None,
            lifecycle_stage="active",
            artifact_uri=artifact_uri,
            run_name=run_name,
        )
        return Run(info, RunData(tags=[RunTag(k, v) for k, v in all_tags.items()]))

    def set_terminated(self, run_id: str, status: str, end_time: int) -> bool:
        """Set the status and end time of an active run; False if no active run has the id.

        On False nothing was written: the caller uses the client, which raises MLflow's error.
        """
        from sqlalchemy import update

        runs = self._runs.c
        with self._session() as session:
            result = session.execute(
                update(self._runs)
                .where(runs.run_uuid == run_id, runs.lifecycle_stage == "active")
                .values(status=status, end_time=end_time)
            )
            return bool(result.rowcount == 1)


def _schema_matches(engine: Any) -> bool:
    from sqlalchemy import inspect

    inspector = inspect(engine)
    for table, expected in _EXPECTED_COLUMNS.items():
        columns = {c["name"] for c in inspector.get_columns(table)}
        if not expected <= columns:
            logger.info(
                "MLflow table %r lacks %s: metrics go through log_batch", table, expected - columns
            )
            return False
    for table, key in _EXPECTED_KEYS.items():
        primary = set(inspector.get_pk_constraint(table).get("constrained_columns") or [])
        if primary != key:
            logger.info("MLflow table %r has primary key %s: using log_batch", table, primary)
            return False
    return True


_paths: weakref.WeakKeyDictionary[Any, SqlFastPath | None] = weakref.WeakKeyDictionary()
_paths_lock = threading.Lock()


def fast_path_for(client: MlflowClient) -> SqlFastPath | None:
    """The fast path for the store behind ``client``, or None to keep using the client.

    None unless the store is MLflow's own ``SqlAlchemyStore`` (not a subclass, e.g. a
    workspace-scoped one) on SQLite or PostgreSQL with the expected tables.
    """
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    tracking = getattr(client, "_tracking_client", None)
    store = getattr(tracking, "store", None) if tracking is not None else None
    if type(store) is not SqlAlchemyStore or getattr(store, "read_engine", None) is not None:
        return None
    with _paths_lock:
        if store in _paths:
            return _paths[store]
        path: SqlFastPath | None = None
        try:
            dialect = store.engine.dialect
            if metric_insert_sql(dialect.name, dialect.paramstyle) and _schema_matches(
                store.engine
            ):
                path = SqlFastPath(store)
        except Exception as e:  # a schema we cannot read: the client path still works
            logger.warning("Cannot inspect the MLflow schema (%s); using MLflow's client", e)
        _paths[store] = path
        return path
