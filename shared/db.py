"""Async engines, the per-request session, and readiness for SQLite and PostgreSQL.

SQLite (the embedded default) runs with WAL, foreign keys and a busy timeout; transactions
that may write begin with `BEGIN IMMEDIATE` so two writers never deadlock on a lock upgrade,
while read-only requests (GET/HEAD) use a deferred `BEGIN` and run beside a writer.
PostgreSQL runs through asyncpg. The request's session is committed once by its dependency,
after the endpoint returns; services only `flush()`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, TypeDecorator, event, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.pool import AsyncAdaptedQueuePool

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def service_metadata() -> MetaData:
    """A fresh MetaData with the project's constraint naming convention, one per service."""
    return MetaData(naming_convention=NAMING_CONVENTION)


def is_sqlite(url_or_engine: str | AsyncEngine) -> bool:
    if isinstance(url_or_engine, AsyncEngine):
        return url_or_engine.dialect.name == "sqlite"
    return make_url(url_or_engine).get_backend_name() == "sqlite"


def make_engine(url: str, *, pool_size: int = 20, busy_timeout_ms: int = 5000,
                writer: bool = False, write_wait_seconds: float = 30.0,
                pre_ping: bool = False) -> AsyncEngine:
    """An async engine for `sqlite+aiosqlite` or `postgresql+asyncpg` URLs.

    On SQLite, `writer=True` makes the engine of write transactions: one connection, so the
    process's writers queue for it asynchronously (first come, first served, up to
    `write_wait_seconds`) instead of many connections spinning on the file lock in threads
    while the event loop starves the one that holds it — the busy timeout then only matters
    between processes. Reads get an engine of their own with `pool_size` connections.
    """
    # Bound values (customers' names, addresses, amounts) never reach a log line or an error
    # message: SQLAlchemy shows the statement with its parameters hidden.
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        pool: dict[str, Any] = {"poolclass": AsyncAdaptedQueuePool}
        pool.update({"pool_size": 1, "max_overflow": 0, "pool_timeout": write_wait_seconds}
                    if writer else {"pool_size": pool_size, "max_overflow": 0})
        engine = create_async_engine(url, connect_args={"timeout": busy_timeout_ms / 1000},
                                     hide_parameters=True, **pool)
        _configure_sqlite(engine, busy_timeout_ms)
        return engine if writer else engine.execution_options(sqlite_begin="DEFERRED")
    # No pre-ping: on asyncpg it is BEGIN, `;`, ROLLBACK on every checkout, three round trips
    # per transaction. A connection found dead on use is invalidated by SQLAlchemy (the whole
    # pool is, on a disconnect), and that one request answers 503 (shared.errors): retry-safe.
    # At most `pool_size` connections, opened as needed and then kept: no overflow, because
    # SQLAlchemy closes an overflow connection as soon as it is returned, and under a steady
    # load just above the pool's size every request then paid a new connection (TLS probe,
    # start-up, type introspection) and re-prepared its statements on it.
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=0, pool_pre_ping=pre_ping,
        pool_recycle=1800, hide_parameters=True,
    )


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite would defer it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql("BEGIN" if mode == "DEFERRED" else "BEGIN IMMEDIATE")


class _Session(Session):
    """The services' ORM session: callbacks queued with `after_commit` run once it commits."""


@event.listens_for(_Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    for callback in session.info.pop("after_commit", []):
        callback()


@event.listens_for(_Session, "after_rollback")
def _drop_after_commit(session: Session) -> None:
    session.info.pop("after_commit", None)


class Database:
    """The engines and session factories of a service: write transactions through `engine`,
    reads through `read_engine` (on PostgreSQL the same engine)."""

    def __init__(self, url: str, *, pool_size: int = 20, busy_timeout_ms: int = 5000,
                 write_wait_seconds: float = 30.0, pre_ping: bool = False) -> None:
        self.url = url
        self.sqlite = is_sqlite(url)
        self.engine = make_engine(url, pool_size=pool_size, busy_timeout_ms=busy_timeout_ms,
                                  writer=True, write_wait_seconds=write_wait_seconds,
                                  pre_ping=pre_ping)
        # PostgreSQL: reads share the pool but run in autocommit, each statement on its own
        # snapshot, which is what READ COMMITTED gives every statement of a transaction too; it
        # spares a read-only request (and every idempotency lookup) the BEGIN and ROLLBACK
        # round trips. Reads take no row locks and write nothing.
        self.read_engine = make_engine(url, pool_size=pool_size, busy_timeout_ms=busy_timeout_ms) \
            if self.sqlite else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False,
                                           sync_session_class=_Session)
        self.read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False,
                                                sync_session_class=_Session)

    def session(self, *, read_only: bool = False) -> AsyncSession:
        return (self.read_sessions if read_only else self.sessions)()

    async def ping(self) -> None:
        async with self.read_sessions() as session:
            await session.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.sqlite:  # on PostgreSQL the read engine is the same pool
            await self.read_engine.dispose()


READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Key of `request.state` under which a layer may take over the final commit of the request's
# session: shared.idempotency commits a keyed POST's effect together with its stored answer.
COMMIT_OWNER = "commit_owner"


async def request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session: committed once after the endpoint returns, rolled back on error.

    When a commit owner is in the request's state (a keyed POST), the session is handed to it
    instead, and it commits once the response is complete (shared.idempotency).
    """
    db: Database = request.app.state.db
    session = db.session(read_only=request.method in READ_METHODS)
    owner = getattr(request.state, COMMIT_OWNER, None)
    handed_over = False
    try:
        yield session
        if owner is not None and owner.adopt(session):
            handed_over = True
        elif session.in_transaction():
            await session.commit()
    except BaseException:
        await session.rollback()
        raise
    finally:
        if not handed_over:
            await session.close()


async def checkpoint(session: AsyncSession) -> None:
    """Commit what the request wrote so far: a step's intent, recorded before another service
    is called, so that no write transaction is open while waiting for it (DESIGN §9) and a
    crash after this point can be resumed. The request's session carries on in a new
    transaction; its final commit is still the session dependency's."""
    if session.in_transaction():
        await session.commit()


def dialect_insert(session: AsyncSession) -> Any:
    """The `insert` of the session's database, for ON CONFLICT (PostgreSQL and SQLite alike)."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def after_commit(session: AsyncSession, callback: Any) -> None:
    """Run `callback()` once the session's transaction has committed (e.g. wake a worker);
    dropped if it rolls back. Works for request sessions and workers' own sessions alike."""
    session.info.setdefault("after_commit", []).append(callback)


SessionDep = Annotated[AsyncSession, Depends(request_session, scope="function")]


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware timestamps stored as UTC on both SQLite and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; all timestamps must carry a timezone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
