"""The task store contract on SQLite and on PostgreSQL (each test in its own schema)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from alphalab.exceptions import ConfigError, StoreError
from alphalab.tasks import SqlTaskStore, TaskStore, get_task_store
from alphalab.testing import TaskStoreContract


@pytest.fixture
def pg_task_uri(pg_url: str) -> Iterator[str]:
    """A PostgreSQL task store URI whose tables live in a schema of this test only."""
    import psycopg

    schema = f"tasks_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield f"{pg_url}?options=-csearch_path%3D{schema}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


class TestSqliteTaskStore(TaskStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[TaskStore]:
        store = SqlTaskStore(f"sqlite:///{tmp_path / 'tasks.db'}")
        yield store
        store.close()


@pytest.mark.postgres
class TestPostgresTaskStore(TaskStoreContract):
    @pytest.fixture
    def store(self, pg_task_uri: str) -> Iterator[TaskStore]:
        store = SqlTaskStore(pg_task_uri)
        yield store
        store.close()


def test_default_store_is_sqlite_under_the_runs_folder(isolated_settings: Path) -> None:
    store = get_task_store()
    assert store.uri == f"sqlite:///{isolated_settings / 'alphalab-runs' / 'tasks.db'}"
    assert (isolated_settings / "alphalab-runs" / "tasks.db").exists()
    assert get_task_store() is store


def test_unknown_scheme_lists_the_supported_ones() -> None:
    with pytest.raises(ConfigError, match=r"unsupported scheme 'mongodb'.*sqlite, postgres"):
        get_task_store("mongodb://localhost/tasks")


def test_unreachable_postgres_is_a_store_error() -> None:
    with pytest.raises(
        StoreError, match=r"(?s)Cannot open the task store.*check that the database"
    ):
        SqlTaskStore("postgresql://postgres@127.0.0.1:1/nothing?connect_timeout=2")


@pytest.mark.postgres
def test_postgres_store_in_a_fresh_database(fresh_pg_database: str) -> None:
    store = SqlTaskStore(fresh_pg_database)
    again = SqlTaskStore(fresh_pg_database)  # the schema already exists: nothing to do
    (res,) = store.insert("p", [{"a": 1}])
    assert again.get(res.id).task == {"a": 1}
    store.close()
    again.close()
