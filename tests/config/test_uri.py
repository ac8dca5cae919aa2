from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy

from alphalab.config import is_postgres_uri, sqlalchemy_url, sqlite_path, uri_scheme


def test_uri_helpers() -> None:
    assert uri_scheme("/a/b") == ""
    assert uri_scheme("C:/data") == ""
    assert uri_scheme("SQLite:///x.db") == "sqlite"
    assert sqlalchemy_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert sqlalchemy_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert sqlalchemy_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg://u@h/db"
    assert sqlalchemy_url("sqlite:///x.db") == "sqlite:///x.db"
    assert is_postgres_uri("postgresql://x") and not is_postgres_uri("sqlite:///x")
    assert sqlite_path("sqlite:////abs/x.db") == Path("/abs/x.db")
    assert sqlite_path("sqlite:///rel/x.db?timeout=3") == Path("rel/x.db")
    assert sqlite_path("sqlite://") is None
    assert sqlite_path("postgresql://x") is None


@pytest.mark.postgres
def test_plain_postgresql_url_connects(pg_url: str) -> None:
    assert pg_url.startswith("postgresql://")
    engine = sqlalchemy.create_engine(sqlalchemy_url(pg_url))
    with engine.connect() as conn:
        assert conn.execute(sqlalchemy.text("SELECT 1")).scalar() == 1
    engine.dispose()
