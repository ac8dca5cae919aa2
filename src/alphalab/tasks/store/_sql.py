"""The SQL task store (SQLAlchemy Core): SQLite on one machine, PostgreSQL across machines.

Claims are atomic: on PostgreSQL the candidate row is locked with ``FOR UPDATE SKIP LOCKED``
(concurrent workers skip each other's rows instead of waiting); on SQLite every writing
transaction starts with ``BEGIN IMMEDIATE`` (one writer at a time, WAL so readers never
block). Times are UNIX seconds taken from the clock of the process that writes them, so the
machines of one pool should keep their clocks in sync (NTP) to within a fraction of a lease.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from alphalab.config import is_postgres_uri, sqlalchemy_url, sqlite_path, uri_scheme
from alphalab.exceptions import NotFoundError, StoreError, TaskDefinitionError
from alphalab.logging import get_logger
from alphalab.tasks.store._base import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    InsertResult,
    TaskFilter,
    TaskRecord,
    TaskStatus,
    TaskStore,
    normalize_task,
    task_hash,
)

logger = get_logger(__name__)

T = TypeVar("T")

#: Version of the table layout; bumped (with a migration step below) when it changes.
SCHEMA_VERSION = 1
TASKS_TABLE = "alphalab_tasks"
META_TABLE = "alphalab_task_meta"
#: Lease checks run at most this often per store object (claims and stats trigger them).
_EXPIRY_INTERVAL = 0.5
#: How long a SQLite writer waits for the write lock before giving up.
_LOCK_WAIT_SECONDS = 60.0

_metadata = sa.MetaData()
_tasks = sa.Table(
    TASKS_TABLE,
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pool", sa.String(200), nullable=False),
    sa.Column("task_hash", sa.String(64), nullable=False),
    sa.Column("task", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("claimed_from", sa.String(16), nullable=True),
    sa.Column("priority", sa.Integer, nullable=False, default=0),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("worker_id", sa.String(200), nullable=True),
    sa.Column("lease_expires_at", sa.Float, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("traceback", sa.Text, nullable=True),
    sa.Column("result", sa.JSON, nullable=True),
    sa.UniqueConstraint("pool", "task_hash", name="uq_alphalab_tasks_pool_hash"),
)
#: Claims read the next task in (priority DESC, id) order straight from this index.
sa.Index(
    "ix_alphalab_tasks_claim",
    _tasks.c.pool,
    _tasks.c.status,
    _tasks.c.priority.desc(),
    _tasks.c.id,
)
_meta = sa.Table(
    META_TABLE,
    _metadata,
    sa.Column("key", sa.String(50), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
)


def _stamp(value: float | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromtimestamp(value, tz=dt.UTC)


def _record(row: Any) -> TaskRecord:
    return TaskRecord(
        id=row.id,
        pool=row.pool,
        task=row.task,
        task_hash=row.task_hash,
        status=TaskStatus(row.status),
        priority=row.priority,
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        worker_id=row.worker_id,
        lease_expires_at=_stamp(row.lease_expires_at),
        created_at=_stamp(row.created_at) or dt.datetime.now(dt.UTC),
        updated_at=_stamp(row.updated_at) or dt.datetime.now(dt.UTC),
        started_at=_stamp(row.started_at),
        finished_at=_stamp(row.finished_at),
        error=row.error,
        traceback=row.traceback,
        result=row.result,
        claimed_from=None if row.claimed_from is None else TaskStatus(row.claimed_from),
    )


def _conditions(pool: str, where: TaskFilter | None) -> list[Any]:
    conds: list[Any] = [_tasks.c.pool == pool]
    if where is None:
        return conds
    if where.ids is not None:
        conds.append(_tasks.c.id.in_(list(where.ids)))
    if where.statuses is not None:
        conds.append(_tasks.c.status.in_([s.value for s in where.statuses]))
    for path, value in where.fields:
        element = _tasks.c.task[tuple(path.split("."))]
        if isinstance(value, bool):
            conds.append(element.as_boolean() == value)
        elif isinstance(value, int):
            conds.append(element.as_integer() == value)
        elif isinstance(value, float):
            conds.append(element.as_float() == value)
        else:
            conds.append(element.as_string() == value)
    return conds


def _conditions_only(where: TaskFilter | None) -> list[Any]:
    """The conditions of ``where`` without the pool condition."""
    return [] if where is None else _conditions("", where)[1:]


def _complete_statement(owned: bool) -> Any:
    """``UPDATE`` storing a running task's result, with bound values (built once)."""
    conds = [_tasks.c.id == sa.bindparam("p_id"), _tasks.c.status == TaskStatus.RUNNING.value]
    if owned:
        conds.append(_tasks.c.worker_id == sa.bindparam("p_worker"))
    return (
        sa.update(_tasks)
        .where(*conds)
        .values(
            status=sa.bindparam("p_status"),
            result=sa.bindparam("p_result", type_=_tasks.c.result.type),
            worker_id=None,
            lease_expires_at=None,
            updated_at=sa.bindparam("p_now"),
            finished_at=sa.bindparam("p_finished"),
            error=None,
            traceback=None,
        )
    )


def _check_result(result: Any) -> Any:
    try:
        return normalize_task({"result": result})["result"]
    except TaskDefinitionError as e:
        raise TaskDefinitionError(
            f"A task result must be JSON (e.g. a run id or a list of run ids): {e}"
        ) from None


class SqlTaskStore(TaskStore):
    """Task pools in one SQL database (SQLite file or PostgreSQL), schema created on first use.

    Args:
        uri: ``sqlite:///path/tasks.db`` or ``postgresql://user@host/db`` (any PostgreSQL
            scheme alphalab accepts; extra libpq parameters such as
            ``?options=-csearch_path%3Dmyschema`` pass through).
    """

    def __init__(self, uri: str) -> None:
        self._uri = uri
        self._postgres = is_postgres_uri(uri)
        self._engine = self._create_engine(uri)
        self._auto_engine = self._engine.execution_options(isolation_level="AUTOCOMMIT")
        self._last_expiry: dict[str, float] = {}
        self._claim_cache: Any = None
        self._complete_statements = {owned: _complete_statement(owned) for owned in (False, True)}
        self._lock = threading.Lock()
        self._ensure_schema()

    # ----- engine and transactions ------------------------------------------------------------

    def _create_engine(self, uri: str) -> Engine:
        if uri_scheme(uri) == "sqlite":
            return self._sqlite_engine(uri)
        if not self._postgres:
            raise StoreError(
                f"Unsupported task store URI {uri!r}; use sqlite:///path/tasks.db or "
                "postgresql://user@host:5432/db"
            )
        try:
            return sa.create_engine(sqlalchemy_url(uri), pool_size=2, pool_recycle=1800)
        except (SQLAlchemyError, ImportError) as e:
            raise StoreError(f"Cannot open the task store {uri!r}: {e}") from e

    @staticmethod
    def _sqlite_engine(uri: str) -> Engine:
        path = sqlite_path(uri)
        kwargs: dict[str, Any] = {"connect_args": {"timeout": 0.005, "check_same_thread": False}}
        if path is None:  # in memory: one shared connection (single process only)
            kwargs["poolclass"] = sa.pool.StaticPool
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(uri, **kwargs)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event below issue BEGIN itself.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            if path is not None:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=5")  # then short retries in _write
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            write = conn.get_execution_options().get("alphalab_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    def _write(self, fn: Callable[[Connection], T], *, single: bool = False) -> T:
        """Run ``fn`` in a writing transaction, retrying lock timeouts and deadlocks.

        ``single`` marks ``fn`` as one self-contained statement: on PostgreSQL it then runs in
        autocommit mode (one round trip instead of BEGIN/statement/COMMIT), still durable.
        """
        if self._postgres and single:
            engine = self._auto_engine
            with_transaction = False
        else:
            engine = self._engine.execution_options(alphalab_write=True)
            with_transaction = True
        delay = 0.05
        attempt = 0
        deadline = time.monotonic() + _LOCK_WAIT_SECONDS
        while True:
            try:
                if with_transaction:
                    with engine.begin() as conn:
                        return fn(conn)
                with engine.connect() as conn:
                    return fn(conn)
            except OperationalError as e:
                text = str(e).lower()
                if "locked" in text and time.monotonic() < deadline:
                    # SQLite: another process holds the write lock. Short random sleeps beat
                    # SQLite's own busy handler, whose back-off grows to 100 ms a wait.
                    time.sleep(random.uniform(0.0005, 0.004))
                    continue
                transient = (
                    e.connection_invalidated or "deadlock" in text or "could not serialize" in text
                )
                attempt += 1
                if not transient or attempt >= 5:
                    raise StoreError(f"Task store {self._uri} write failed: {e}") from e
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
            except SQLAlchemyError as e:
                raise StoreError(f"Task store {self._uri} write failed: {e}") from e

    def _read(self, fn: Callable[[Connection], T]) -> T:
        deadline = time.monotonic() + _LOCK_WAIT_SECONDS
        while True:
            try:
                with self._engine.connect() as conn:
                    result = fn(conn)
                    conn.rollback()
                    return result
            except OperationalError as e:
                if "locked" in str(e).lower() and time.monotonic() < deadline:
                    time.sleep(random.uniform(0.0005, 0.004))
                    continue
                raise StoreError(f"Task store {self._uri} read failed: {e}") from e
            except SQLAlchemyError as e:
                raise StoreError(f"Task store {self._uri} read failed: {e}") from e

    def _ensure_schema(self) -> None:
        def create(conn: Connection) -> None:
            if self._postgres:  # serialise concurrent creators (several workers starting)
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(727274001)"))
            _metadata.create_all(conn, checkfirst=True)
            version = conn.execute(
                sa.select(_meta.c.value).where(_meta.c.key == "schema_version")
            ).scalar()
            if version is None:
                conn.execute(
                    sa.insert(_meta).values(key="schema_version", value=str(SCHEMA_VERSION))
                )
            elif int(version) > SCHEMA_VERSION:
                raise StoreError(
                    f"The task store {self._uri} has schema version {version}, newer than this "
                    f"alphalab understands ({SCHEMA_VERSION}); upgrade alphalab"
                )

        try:
            self._write(create)
        except StoreError as e:
            raise StoreError(
                f"Cannot open the task store {self._uri}: {e.__cause__ or e}; check that the "
                "database exists and that the URI, user and password are right"
            ) from e

    @property
    def uri(self) -> str:
        return self._uri

    def forget_connections(self) -> None:
        """Drop pooled connections without closing them (in a forked child process)."""
        self._engine.dispose(close=False)
        self._auto_engine.engine.dispose(close=False)

    def close(self) -> None:
        self._engine.dispose()
        self._auto_engine.engine.dispose()

    # ----- lease expiry -----------------------------------------------------------------------

    def _expire(self, conn: Connection, pool: str | None, now: float) -> int:
        conds: list[Any] = [
            _tasks.c.status == TaskStatus.RUNNING.value,
            _tasks.c.lease_expires_at < now,
        ]
        if pool is not None:
            conds.append(_tasks.c.pool == pool)
        lost = sa.func.coalesce(_tasks.c.worker_id, "?")
        message = (
            sa.literal("Lease expired: worker ")
            + lost
            + sa.literal(" stopped renewing it (killed, crashed or unreachable)")
        )
        common = {
            "worker_id": None,
            "lease_expires_at": None,
            "updated_at": now,
            "error": message,
            "traceback": None,
        }
        failed = conn.execute(
            sa.update(_tasks)
            .where(*conds, _tasks.c.attempts >= _tasks.c.max_attempts)
            .values(status=TaskStatus.FAILED.value, finished_at=now, **common)
        ).rowcount
        back = conn.execute(
            sa.update(_tasks)
            .where(*conds, _tasks.c.attempts < _tasks.c.max_attempts)
            .values(
                status=sa.func.coalesce(_tasks.c.claimed_from, TaskStatus.WAITING.value),
                **common,
            )
        ).rowcount
        if failed or back:
            logger.warning(
                "Task pool %s: %d expired lease(s) returned to the pool, %d failed after "
                "max_attempts",
                pool or "*",
                back,
                failed,
            )
        return int(failed + back)

    def _maybe_expire(self, pool: str) -> None:
        now = time.time()
        with self._lock:
            if now - self._last_expiry.get(pool, 0.0) < _EXPIRY_INTERVAL:
                return
            self._last_expiry[pool] = now
        # Cheap read first: most of the time nothing has expired.
        expired = self._read(
            lambda conn: conn.execute(
                sa.select(_tasks.c.id)
                .where(
                    _tasks.c.pool == pool,
                    _tasks.c.status == TaskStatus.RUNNING.value,
                    _tasks.c.lease_expires_at < now,
                )
                .limit(1)
            ).first()
        )
        if expired is not None:
            self._write(lambda conn: self._expire(conn, pool, time.time()))

    def expire_leases(self, pool: str | None = None) -> int:
        return self._write(lambda conn: self._expire(conn, pool, time.time()))

    # ----- operations -------------------------------------------------------------------------

    def insert(
        self,
        pool: str,
        tasks: Sequence[Mapping[str, Any]],
        *,
        priority: int = 0,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> list[InsertResult]:
        if not pool:
            raise TaskDefinitionError("A task pool needs a non-empty name")
        if max_attempts < 1:
            raise TaskDefinitionError(f"max_attempts must be >= 1; got {max_attempts}")
        normalized = [normalize_task(t) for t in tasks]
        hashes = [task_hash(t) for t in normalized]

        def run(conn: Connection) -> list[InsertResult]:
            existing: dict[str, int] = {}
            for start in range(0, len(hashes), 500):
                chunk = hashes[start : start + 500]
                rows = conn.execute(
                    sa.select(_tasks.c.task_hash, _tasks.c.id).where(
                        _tasks.c.pool == pool, _tasks.c.task_hash.in_(chunk)
                    )
                )
                for digest, task_id in rows:
                    existing[digest] = task_id
            out: list[InsertResult] = []
            now = time.time()
            for task, digest in zip(normalized, hashes, strict=True):
                if digest in existing:
                    out.append(InsertResult(existing[digest], False))
                    continue
                new_id = conn.execute(
                    sa.insert(_tasks)
                    .values(
                        pool=pool,
                        task_hash=digest,
                        task=task,
                        status=TaskStatus.WAITING.value,
                        priority=priority,
                        attempts=0,
                        max_attempts=max_attempts,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(_tasks.c.id)
                ).scalar_one()
                existing[digest] = new_id
                out.append(InsertResult(new_id, True))
            return out

        try:
            return self._write(run)
        except StoreError as e:
            if isinstance(e.__cause__, sa.exc.IntegrityError):  # a concurrent insert won: retry
                return self._write(run)
            raise

    def claim(
        self,
        pool: str,
        worker_id: str,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        where: TaskFilter | None = None,
        status: TaskStatus = TaskStatus.WAITING,
    ) -> TaskRecord | None:
        status = TaskStatus.parse(status)
        status.check_transition(TaskStatus.RUNNING)
        self._maybe_expire(pool)

        statement = self._claim_statement(where)
        params = {"p_pool": pool, "p_status": status.value, "p_worker": worker_id}

        def run(conn: Connection) -> TaskRecord | None:
            now = time.time()
            row = conn.execute(
                statement, {**params, "p_now": now, "p_lease": now + lease_seconds}
            ).first()
            return None if row is None else _record(row)

        return self._write(run, single=True)

    def _claim_statement(self, where: TaskFilter | None) -> Any:
        """``UPDATE ... WHERE id = (next claimable task) RETURNING *`` with bound values.

        One statement picks the next task and takes it (PostgreSQL's queue pattern with
        ``SKIP LOCKED``; on SQLite the IMMEDIATE transaction excludes other writers). The
        unfiltered statement is built once and reused.
        """
        if where is not None and where == TaskFilter():
            where = None  # no condition: the cached statement serves
        if where is None and self._claim_cache is not None:
            return self._claim_cache
        pick = (
            sa.select(_tasks.c.id)
            .where(
                _tasks.c.pool == sa.bindparam("p_pool"),
                _tasks.c.status == sa.bindparam("p_status"),
                *(_conditions_only(where)),
            )
            .order_by(_tasks.c.priority.desc(), _tasks.c.id)
            .limit(1)
        )
        if self._postgres:
            pick = pick.with_for_update(skip_locked=True)
        statement = (
            sa.update(_tasks)
            .where(_tasks.c.id == pick.scalar_subquery())
            .values(
                status=TaskStatus.RUNNING.value,
                claimed_from=sa.bindparam("p_status"),
                worker_id=sa.bindparam("p_worker"),
                lease_expires_at=sa.bindparam("p_lease"),
                attempts=_tasks.c.attempts + 1,
                started_at=sa.bindparam("p_now"),
                updated_at=sa.bindparam("p_now"),
            )
            .returning(*_tasks.c)
        )
        if where is None:
            self._claim_cache = statement
        return statement

    def heartbeat(self, task_id: int, worker_id: str, lease_seconds: float) -> bool:
        def run(conn: Connection) -> bool:
            now = time.time()
            count = conn.execute(
                sa.update(_tasks)
                .where(
                    _tasks.c.id == task_id,
                    _tasks.c.status == TaskStatus.RUNNING.value,
                    _tasks.c.worker_id == worker_id,
                )
                .values(lease_expires_at=now + lease_seconds, updated_at=now)
            ).rowcount
            return bool(count)

        return self._write(run, single=True)

    def _owned(self, task_id: int, worker_id: str | None) -> list[Any]:
        conds = [_tasks.c.id == task_id, _tasks.c.status == TaskStatus.RUNNING.value]
        if worker_id is not None:
            conds.append(_tasks.c.worker_id == worker_id)
        return conds

    def complete(
        self,
        task_id: int,
        result: Any,
        *,
        worker_id: str | None = None,
        status: TaskStatus = TaskStatus.DONE,
    ) -> bool:
        status = TaskStatus.parse(status)
        TaskStatus.RUNNING.check_transition(status)
        result = _check_result(result)

        statement = self._complete_statements[worker_id is not None]
        params = {
            "p_id": task_id,
            "p_worker": worker_id,
            "p_status": status.value,
            "p_result": result,
        }

        def run(conn: Connection) -> bool:
            now = time.time()
            finished = now if status.is_finished() else None
            values = {**params, "p_now": now, "p_finished": finished}
            return bool(conn.execute(statement, values).rowcount)

        return self._write(run, single=True)

    def fail(
        self,
        task_id: int,
        error: str,
        traceback: str | None = None,
        *,
        worker_id: str | None = None,
        retry_status: TaskStatus | None = None,
    ) -> TaskStatus | None:
        def run(conn: Connection) -> TaskStatus | None:
            query = sa.select(_tasks).where(*self._owned(task_id, worker_id))
            if self._postgres:
                query = query.with_for_update()
            row = conn.execute(query).first()
            if row is None:
                return None
            back = retry_status or TaskStatus(row.claimed_from or TaskStatus.WAITING.value)
            target = TaskStatus.FAILED if row.attempts >= row.max_attempts else back
            TaskStatus.RUNNING.check_transition(target)
            now = time.time()
            conn.execute(
                sa.update(_tasks)
                .where(_tasks.c.id == task_id)
                .values(
                    status=target.value,
                    worker_id=None,
                    lease_expires_at=None,
                    updated_at=now,
                    finished_at=now if target is TaskStatus.FAILED else None,
                    error=error[:20000],
                    traceback=None if traceback is None else traceback[-50000:],
                )
            )
            return target

        return self._write(run)

    def release(
        self, task_id: int, *, worker_id: str | None = None, status: TaskStatus | None = None
    ) -> bool:
        def run(conn: Connection) -> bool:
            row = conn.execute(sa.select(_tasks).where(*self._owned(task_id, worker_id))).first()
            if row is None:
                return False
            target = status or TaskStatus(row.claimed_from or TaskStatus.WAITING.value)
            TaskStatus.RUNNING.check_transition(target)
            count = conn.execute(
                sa.update(_tasks)
                .where(*self._owned(task_id, worker_id))
                .values(
                    status=target.value,
                    worker_id=None,
                    lease_expires_at=None,
                    attempts=sa.func.max(_tasks.c.attempts - 1, 0)
                    if not self._postgres
                    else sa.func.greatest(_tasks.c.attempts - 1, 0),
                    updated_at=time.time(),
                )
            ).rowcount
            return bool(count)

        return self._write(run)

    def get(self, task_id: int) -> TaskRecord:
        row = self._read(
            lambda conn: conn.execute(sa.select(_tasks).where(_tasks.c.id == task_id)).first()
        )
        if row is None:
            raise NotFoundError(f"No task with id {task_id} in the task store {self._uri}")
        return _record(row)

    def find(
        self, pool: str, where: TaskFilter | None = None, *, limit: int | None = None
    ) -> list[TaskRecord]:
        self._maybe_expire(pool)
        query = sa.select(_tasks).where(*_conditions(pool, where)).order_by(_tasks.c.id)
        if limit is not None:
            query = query.limit(limit)
        rows = self._read(lambda conn: conn.execute(query).all())
        return [_record(r) for r in rows]

    def count_by_status(self, pool: str, where: TaskFilter | None = None) -> dict[str, int]:
        self._maybe_expire(pool)
        query = (
            sa.select(_tasks.c.status, sa.func.count())
            .where(*_conditions(pool, where))
            .group_by(_tasks.c.status)
        )
        rows = self._read(lambda conn: conn.execute(query).all())
        return {status: int(count) for status, count in rows}

    def set_status(self, pool: str, where: TaskFilter | None, status: TaskStatus) -> int:
        status = TaskStatus.parse(status)

        def run(conn: Connection) -> int:
            conds = [*_conditions(pool, where), _tasks.c.status != status.value]
            current = conn.execute(sa.select(_tasks.c.status).where(*conds).distinct()).scalars()
            for value in current:
                TaskStatus(value).check_transition(status)
            values: dict[str, Any] = {"status": status.value, "updated_at": time.time()}
            if status in (TaskStatus.WAITING, TaskStatus.PART_DONE):
                values.update(
                    attempts=0,
                    worker_id=None,
                    lease_expires_at=None,
                    finished_at=None,
                    claimed_from=None,
                    error=None,
                    traceback=None,
                )
            elif status.is_finished():
                values.update(worker_id=None, lease_expires_at=None, finished_at=time.time())
            return int(conn.execute(sa.update(_tasks).where(*conds).values(**values)).rowcount)

        return self._write(run)

    def set_priority(self, pool: str, where: TaskFilter | None, priority: int) -> int:
        def run(conn: Connection) -> int:
            statement = (
                sa.update(_tasks)
                .where(*_conditions(pool, where))
                .values(priority=int(priority), updated_at=time.time())
            )
            return int(conn.execute(statement).rowcount)

        return self._write(run)

    def delete(self, pool: str, where: TaskFilter | None = None) -> int:
        def run(conn: Connection) -> int:
            statement = sa.delete(_tasks).where(*_conditions(pool, where))
            return int(conn.execute(statement).rowcount)

        return self._write(run)

    def pools(self) -> list[str]:
        query = sa.select(_tasks.c.pool).distinct().order_by(_tasks.c.pool)
        return list(self._read(lambda conn: conn.execute(query).scalars().all()))

    def __repr__(self) -> str:
        return f"SqlTaskStore(uri={self._uri!r})"


_stores: dict[str, SqlTaskStore] = {}
_stores_lock = threading.Lock()
SUPPORTED_TASK_SCHEMES = ("sqlite", "postgresql", "postgres", "postgresql+psycopg")


def get_task_store(uri: str | None = None) -> TaskStore:
    """The task store at ``uri`` (default: the ``task_uri`` setting), one object per URI.

    Raises:
        StoreError: for an unsupported scheme (the message lists the supported ones) or a
            database that cannot be opened.
    """
    from alphalab.config import get_settings

    resolved = get_settings(task_uri=uri).task_uri if uri else get_settings().task_uri
    scheme = uri_scheme(resolved)
    if scheme != "sqlite" and not is_postgres_uri(resolved):
        raise StoreError(
            f"Unsupported task store scheme {scheme!r} in {resolved!r}; supported: "
            f"{', '.join(SUPPORTED_TASK_SCHEMES)}"
        )
    with _stores_lock:
        store = _stores.get(resolved)
        if store is None:
            store = SqlTaskStore(resolved)
            _stores[resolved] = store
        return store


def _forget_after_fork() -> None:
    """In a forked child, drop the parent's stores without closing its connections."""
    for store in _stores.values():
        store.forget_connections()
    _stores.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def clear_store_cache() -> None:
    """Dispose every cached store (after ``fork``, or in tests)."""
    with _stores_lock:
        for store in _stores.values():
            store.close()
        _stores.clear()


def default_sqlite_uri(folder: str | Path) -> str:
    """The URI of a ``tasks.db`` SQLite file inside ``folder``."""
    return f"sqlite:///{Path(folder).resolve() / 'tasks.db'}"
