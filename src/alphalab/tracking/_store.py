"""Opening a tracking store safely: one MlflowClient per URI, store creation serialised.

MLflow migrates a new SQL store the first time a process opens it. Several processes doing
that at once race (half-migrated files, "table already exists"), so creation and migration
run under a lock: a file lock beside a SQLite database, an advisory lock on PostgreSQL.
SQLite stores are switched to WAL so that readers and one writer do not block each other;
MLflow itself sets a 20 s busy timeout on every session.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from alphalab.config import is_postgres_uri, sqlalchemy_url, sqlite_path, uri_scheme
from alphalab.exceptions import ConfigError, TrackingError
from alphalab.logging import get_logger

if TYPE_CHECKING:
    from mlflow import MlflowClient

logger = get_logger(__name__)

# A research workbench does not phone home: MLflow's usage telemetry is off unless the user
# turns it on explicitly (it also slows process exit on machines without internet access).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# A library does not print: MLflow's "View run at <url>" lines on stdout are off by default.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

T = TypeVar("T")

#: Schemes the tracking layer accepts, for error messages.
SUPPORTED_SCHEMES = ("sqlite", "postgresql", "postgres", "postgresql+psycopg", "http", "https")

#: Key of the PostgreSQL advisory lock held while a store is created or migrated.
_PG_LOCK_KEY = 0x414C5048  # "ALPH"

_clients: dict[str, MlflowClient] = {}
_clients_lock = threading.Lock()


def normalize_tracking_uri(uri: str) -> str:
    """Return the URI MLflow should be given (psycopg 3 driver for PostgreSQL).

    Raises:
        ConfigError: for a scheme the tracking layer does not support.
    """
    scheme = uri_scheme(uri)
    if scheme in ("http", "https"):
        return uri.rstrip("/")
    if is_postgres_uri(uri):
        return sqlalchemy_url(uri)
    if scheme == "sqlite":
        if sqlite_path(uri) is None:
            raise ConfigError(
                f"The tracking URI {uri!r} must name a SQLite file (sqlite:////abs/path.db); "
                "in-memory databases cannot be shared with the artifact store"
            )
        return uri
    raise ConfigError(
        f"Unsupported tracking URI {uri!r}; expected one of the schemes "
        f"{', '.join(SUPPORTED_SCHEMES)}"
    )


def get_client(uri: str) -> MlflowClient:
    """Return the process' MlflowClient for ``uri``, creating and migrating the store once."""
    uri = normalize_tracking_uri(uri)
    client = _clients.get(uri)
    if client is not None:
        return client
    with _clients_lock:
        client = _clients.get(uri)
        if client is None:
            from mlflow import MlflowClient

            _prepare_store(uri)
            client = MlflowClient(tracking_uri=uri)
            _clients[uri] = client
    return client


def _prepare_store(uri: str) -> None:
    """Create/migrate the store behind ``uri`` under a cross-process lock."""
    path = sqlite_path(uri)
    if path is not None:
        from filelock import FileLock

        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock", timeout=600):
            _enable_wal(str(path))
            _build_mlflow_store(uri)
    elif is_postgres_uri(uri):
        _with_pg_advisory_lock(uri, lambda: _build_mlflow_store(uri))


def _enable_wal(path: str) -> None:
    conn = sqlite3.connect(path, timeout=60)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


def _build_mlflow_store(uri: str) -> None:
    """Construct (and cache in MLflow's registry) the store: this runs MLflow's migrations."""
    from mlflow.tracking._tracking_service import utils

    try:
        utils._get_store(uri)
    except Exception as e:
        raise TrackingError(f"Could not open the tracking store {uri!r}: {e}") from e


def _with_pg_advisory_lock(uri: str, action: Callable[[], None]) -> None:
    import psycopg

    plain = "postgresql" + uri[len("postgresql+psycopg") :]
    try:
        conn = psycopg.connect(plain, autocommit=True)
    except psycopg.Error as e:
        raise TrackingError(f"Cannot connect to the tracking database {uri!r}: {e}") from e
    with conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_PG_LOCK_KEY,))
        try:
            action()
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_PG_LOCK_KEY,))


def _is_transient(error: BaseException) -> bool:
    text = str(error).lower()
    return any(
        marker in text
        for marker in ("database is locked", "deadlock detected", "could not serialize")
    )


def retried(func: Callable[..., T]) -> Callable[..., T]:
    """Retry a store write a few times when the database reports a transient lock error."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        delay = 0.05
        for attempt in range(8):
            try:
                return func(*args, **kwargs)
            except Exception as e:
                if attempt == 7 or not _is_transient(e):
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")  # pragma: no cover

    return wrapper
