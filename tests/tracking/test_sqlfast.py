"""The direct SQL path writes exactly what MLflow's own client calls write (SQLite, PostgreSQL)."""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alphalab.tracking import MlflowExpManager, _sqlfast, get_client
from alphalab.tracking._logger import AsyncMetricLogger, MetricJournal, make_points, recover_run
from alphalab.tracking._sqlfast import SqlFastPath, fast_path_for, sanitize_metric_value

INF, NAN = float("inf"), float("nan")

#: Points chosen to exercise every rule of MLflow's log_batch (two batches; the second repeats
#: part of the first): NaN, +-inf, an identical point twice in one batch and again in the next,
#: latest-metric ties broken by timestamp then by value, a later timestamp at a lower step.
BATCHES: list[list[tuple[str, float, int, int]]] = [
    [
        ("loss", 0.5, 1000, 0),
        ("loss", 0.4, 1001, 1),
        ("loss", 0.4, 1001, 1),
        ("loss", NAN, 1002, 2),
        ("loss", INF, 1003, 3),
        ("loss", -INF, 1003, 3),
        ("loss", 0.9, 999, 3),
        ("acc", 0.1, 1000, 5),
        ("acc", 0.2, 1000, 5),
        ("acc", 0.3, 2000, 4),
        ("nan_last", 1.0, 1000, 9),
        ("nan_last", NAN, 1000, 10),
        ("zero", 0.0, 1000, 1),
        ("zero", NAN, 1000, 1),
    ],
    [
        ("loss", 0.4, 1001, 1),
        ("loss", NAN, 1002, 2),
        ("acc", 0.15, 1000, 5),
        ("acc", 0.25, 999, 5),
        ("late", -2.0, 5, 0),
        ("nan_last", 7.0, 999, 10),
        ("nan_first", NAN, 1000, 1),
    ],
    [
        ("nan_first", 0.0, 1000, 1),
    ],
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_uri(request: pytest.FixtureRequest) -> str:
    """A migrated store: a fresh SQLite file, or the session's PostgreSQL database."""
    fixture = "tracking_uri" if request.param == "sqlite" else "pg_tracking_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def fast(store_uri: str) -> SqlFastPath:
    path = fast_path_for(get_client(store_uri))
    assert path is not None, "the fast path must be available on SQLite and PostgreSQL"
    return path


@pytest.fixture
def experiment_id(store_uri: str, unique_name: str, tmp_path: Path) -> str:
    client = get_client(store_uri)
    return str(client.create_experiment(unique_name, artifact_location=str(tmp_path / "art")))


def _rows(store_uri: str, table: str, run_id: str) -> list[tuple[Any, ...]]:
    """Every row of ``table`` for the run, straight from the database, in a stable order."""
    from sqlalchemy import text

    engine = get_client(store_uri)._tracking_client.store.engine
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                f'SELECT "key", "value", "timestamp", "step", "is_nan" FROM {table} '
                "WHERE run_uuid = :run ORDER BY 1, 2, 3, 4, 5"
            ),
            {"run": run_id},
        ).all()
    return [(k, v, t, s, bool(n)) for k, v, t, s, n in rows]


def _same_metrics(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(
        a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a
    )


def test_metric_batches_store_exactly_what_log_batch_stores(
    store_uri: str, fast: SqlFastPath, experiment_id: str
) -> None:
    from mlflow.entities import Metric

    client = get_client(store_uri)
    reference = client.create_run(experiment_id).info.run_id
    ours = client.create_run(experiment_id).info.run_id
    for batch in BATCHES:
        client.log_batch(reference, metrics=[Metric(k, v, t, s) for k, v, t, s in batch])
        fast.log_metrics(ours, batch)
    for table in ("metrics", "latest_metrics"):
        assert _rows(store_uri, table, ours) == _rows(store_uri, table, reference), table
    assert len(_rows(store_uri, "metrics", ours)) == 19  # 22 points, 3 of them repeats
    assert _same_metrics(client.get_run(ours).data.metrics, client.get_run(reference).data.metrics)
    latest = client.get_run(ours).data.metrics
    assert latest["acc"] == 0.2 and latest["late"] == -2.0 and math.isnan(latest["nan_last"])
    assert latest["zero"] == 0.0 and math.isnan(latest["nan_first"])  # ties: the first stays
    assert latest["loss"] == 1.7976931348623157e308  # +inf, at step 3, stored as MLflow does
    for key in ("loss", "acc"):
        mine = [(m.step, m.timestamp) for m in client.get_metric_history(ours, key)]
        theirs = [(m.step, m.timestamp) for m in client.get_metric_history(reference, key)]
        assert sorted(mine) == sorted(theirs)


def test_metric_errors_are_mlflows(store_uri: str, fast: SqlFastPath, experiment_id: str) -> None:
    from mlflow.entities import Metric
    from mlflow.exceptions import MlflowException

    client = get_client(store_uri)
    point = [("loss", 1.0, 1000, 0)]

    def both(run_id: str, points: list[tuple[str, float, int, int]]) -> list[str]:
        codes = []
        for write in (
            lambda: client.log_batch(run_id, metrics=[Metric(*p[:2], p[2], p[3]) for p in points]),
            lambda: fast.log_metrics(run_id, points),
        ):
            with pytest.raises(MlflowException) as caught:
                write()
            codes.append(caught.value.error_code)
        return codes

    assert both("0" * 32, point) == ["RESOURCE_DOES_NOT_EXIST"] * 2
    deleted = client.create_run(experiment_id).info.run_id
    client.delete_run(deleted)
    assert both(deleted, point) == ["INVALID_PARAMETER_VALUE"] * 2
    live = client.create_run(experiment_id).info.run_id
    assert both(live, [("a/../b", 1.0, 1000, 0)]) == ["INVALID_PARAMETER_VALUE"] * 2
    assert (
        both(live, [("ok", 1.0, 1000, 0), ("bad//name", 1.0, 1000, 0)])
        == ["INVALID_PARAMETER_VALUE"] * 2
    )
    assert _rows(store_uri, "metrics", live) == []  # nothing of a rejected batch is stored


def test_sanitize_matches_mlflow(store_uri: str) -> None:
    store = get_client(store_uri)._tracking_client.store
    for value in (0.0, -1.5, 1e308, NAN, INF, -INF, 5e-324):
        ours, theirs = sanitize_metric_value(value), store.sanitize_metric_value(value)
        assert ours[0] == theirs[0] and float(ours[1]) == float(theirs[1])


def _run_row(store_uri: str, run_id: str) -> dict[str, Any]:
    from sqlalchemy import text

    engine = get_client(store_uri)._tracking_client.store.engine
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM runs WHERE run_uuid = :r"), {"r": run_id}).one()
    return dict(row._mapping)


def test_create_and_end_run_match_the_client(
    store_uri: str, fast: SqlFastPath, experiment_id: str
) -> None:
    client = get_client(store_uri)
    tags = {"hostname": "h", "alphalab.pid": "12", "mlflow.user": "ana"}
    now = int(time.time() * 1000)
    reference = client.create_run(experiment_id, start_time=now, tags=tags, run_name="r")
    created = fast.create_run(experiment_id, run_name="r", tags=tags, start_time=now)
    assert created is not None
    stored = client.get_run(created.info.run_id)
    assert stored.data.tags == reference.data.tags == created.data.tags
    for field in ("experiment_id", "user_id", "status", "start_time", "end_time", "run_name"):
        assert getattr(stored.info, field) == getattr(reference.info, field), field
        assert getattr(created.info, field) == getattr(reference.info, field), field
    assert created.info.artifact_uri == stored.info.artifact_uri
    assert stored.info.artifact_uri == reference.info.artifact_uri.replace(
        reference.info.run_id, created.info.run_id
    )
    mine, theirs = (
        _run_row(store_uri, created.info.run_id),
        _run_row(store_uri, reference.info.run_id),
    )
    for column in set(theirs) - {"run_uuid", "artifact_uri"}:
        assert mine[column] == theirs[column], column

    assert fast.set_terminated(created.info.run_id, "FAILED", now + 5)
    client.set_terminated(reference.info.run_id, "FAILED", end_time=now + 5)
    mine, theirs = (
        _run_row(store_uri, created.info.run_id),
        _run_row(store_uri, reference.info.run_id),
    )
    assert (mine["status"], mine["end_time"]) == (theirs["status"], theirs["end_time"])

    scheduled = fast.create_run(
        experiment_id, run_name="later", tags={}, start_time=now, status="SCHEDULED"
    )
    assert scheduled is not None
    assert client.get_run(scheduled.info.run_id).info.status == "SCHEDULED"


def test_run_errors_fall_back_to_the_client(
    store_uri: str, fast: SqlFastPath, experiment_id: str
) -> None:
    from mlflow.exceptions import MlflowException

    client = get_client(store_uri)
    run_id = client.create_run(experiment_id).info.run_id
    client.delete_run(run_id)
    assert fast.set_terminated(run_id, "FINISHED", 1) is False  # nothing written: use client
    assert client.get_run(run_id).info.status == "RUNNING"
    assert fast.set_terminated("0" * 32, "FINISHED", 1) is False
    client.delete_experiment(experiment_id)
    with pytest.raises(MlflowException, match="must be in the 'active' state"):
        fast.create_run(experiment_id, run_name="x", tags={}, start_time=1)
    with pytest.raises(MlflowException, match="No Experiment with id=987654"):
        fast.create_run("987654", run_name="x", tags={}, start_time=1)
    assert fast.create_run("not-a-number", run_name="x", tags={}, start_time=1) is None


def test_fast_path_only_for_mlflows_sql_store_with_the_expected_schema(
    store_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    assert fast_path_for(MlflowClient(tracking_uri="http://127.0.0.1:9")) is None
    assert _sqlfast.metric_insert_sql("mysql", "format") is None
    assert _sqlfast.metric_insert_sql("sqlite", "named") is None
    monkeypatch.setattr(_sqlfast, "_paths", weakref.WeakKeyDictionary())
    columns = dict(_sqlfast._EXPECTED_COLUMNS)
    columns["metrics"] = {*columns["metrics"], "dataset_digest"}
    monkeypatch.setattr(_sqlfast, "_EXPECTED_COLUMNS", columns)
    assert fast_path_for(get_client(store_uri)) is None
    manager = MlflowExpManager(store_uri, artifact_location=None, journal_dir="j")
    assert manager.fast is None  # the run and metric paths then use the client
    assert (
        MlflowExpManager(
            store_uri, artifact_location=None, journal_dir="j", sql_fast_path=False
        ).fast
        is None
    )


@pytest.fixture
def two_runs(store_uri: str, experiment_id: str) -> Iterator[tuple[str, str]]:
    client = get_client(store_uri)
    yield client.create_run(experiment_id).info.run_id, client.create_run(experiment_id).info.run_id


def test_logger_and_recovery_through_the_fast_path(
    store_uri: str, fast: SqlFastPath, two_runs: tuple[str, str], tmp_path: Path
) -> None:
    client = get_client(store_uri)
    run_id, other = two_runs
    journal = MetricJournal(tmp_path / "j.jsonl")
    log = AsyncMetricLogger(client, run_id, journal, fast=fast, max_delay=0.05)
    assert log.batch_size == 5000
    for step in range(12_000):
        log.log(make_points({"loss": step / 7, "lr": 0.1}, step, 1000 + step))
    deadline = time.monotonic() + 30
    while log.pending and time.monotonic() < deadline:
        time.sleep(0.01)  # a partial batch is shipped once it waited max_delay: no flush
    assert log.pending == 0
    log.close()
    history = client.get_metric_history(run_id, "loss")
    assert sorted(m.step for m in history) == list(range(12_000))

    # A journal whose first part is already stored: recovery ships the rest, each point once.
    path = tmp_path / "dead.jsonl"
    dead = MetricJournal(path)
    points = [p for s in range(3000) for p in make_points({"x": s * 1.5}, s, 5000 + s)]
    dead.append(points)
    dead.close()
    fast.log_metrics(other, points[:1200])
    first = recover_run(client, other, path, fast)
    assert (first.in_journal, first.already_stored, first.shipped) == (3000, 1200, 1800)
    second = recover_run(client, other, path, fast)
    assert (second.already_stored, second.shipped) == (3000, 0)
    assert sorted(m.step for m in client.get_metric_history(other, "x")) == list(range(3000))
