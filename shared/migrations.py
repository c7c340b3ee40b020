"""Alembic, one history per service, run programmatically on SQLite and PostgreSQL.

Each service keeps `services/<name>/migrations/` whose `env.py` only calls `run_env` with the
service's metadata. `upgrade` applies them on an open engine (start-up of `o2c run`, tests);
`o2c migrate` calls it too. `/ready` compares the database's revision with the head.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, pool, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def migrations_dir(service: str) -> Path:
    module = importlib.import_module(f"services.{service}")
    return Path(module.__file__).parent / "migrations"  # type: ignore[arg-type]


def alembic_config(service: str, url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir(service)))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@functools.cache
def head_revision(service: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(service)).get_current_head()


async def upgrade(engine: AsyncEngine, service: str, revision: str = "head") -> None:
    """Apply the service's migrations up to `revision` on `engine`."""
    cfg = alembic_config(service)

    def _run(sync_connection: Any) -> None:
        cfg.attributes["connection"] = sync_connection
        command.upgrade(cfg, revision)

    async with engine.begin() as connection:
        await connection.run_sync(_run)


async def downgrade(engine: AsyncEngine, service: str, revision: str) -> None:
    """Undo the service's migrations down to `revision` on `engine` (tests of migrations)."""
    cfg = alembic_config(service)

    def _run(sync_connection: Any) -> None:
        cfg.attributes["connection"] = sync_connection
        command.downgrade(cfg, revision)

    async with engine.begin() as connection:
        await connection.run_sync(_run)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        try:
            result = await connection.execute(text("SELECT version_num FROM alembic_version"))
        except Exception:
            return None
        return result.scalar_one_or_none()


def _configure_and_run(connection: Any, metadata: MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # ALTER on SQLite goes through batch mode; harmless on PostgreSQL
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_env(metadata: MetaData) -> None:
    """Body of every service's `migrations/env.py`."""
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection, metadata)
        return
    if context.is_offline_mode():
        context.configure(
            url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata,
            literal_binds=True, render_as_batch=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return

    async def _online() -> None:
        engine = create_async_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
        async with engine.connect() as conn:
            await conn.run_sync(_configure_and_run, metadata)
            await conn.commit()
        await engine.dispose()

    asyncio.run(_online())


_SCHEMA_MISSING_SQLSTATES = frozenset({"42P01", "42703"})  # undefined table, undefined column


def schema_missing(exc: BaseException) -> bool:
    """Whether a database error says the schema is not there yet (or is behind the code): a
    table or column missing because `o2c migrate` has not run. Workers wait for it quietly."""
    from sqlalchemy.exc import DBAPIError

    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:  # also under a wrapper (`raise … from`)
        seen.add(id(link))
        if isinstance(link, DBAPIError) and _says_schema_missing(link.orig):
            return True
        link = link.__cause__ or link.__context__
    return False


def _says_schema_missing(orig: BaseException) -> bool:
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code in _SCHEMA_MISSING_SQLSTATES:
        return True
    text = str(orig).lower()
    return "no such table" in text or "no such column" in text or (
        "does not exist" in text and ("relation" in text or "column" in text))


@contextlib.contextmanager
def sqlite_rebuild(op: Any) -> Iterator[None]:
    """Around a batch operation that rebuilds a table other tables point at (SQLite).

    Dropping the old table would trip their foreign keys, and deferring them does not help
    (the rows were copied before the drop). SQLite's own procedure for such a change is
    followed: foreign keys off (only possible outside a transaction, so the migration's
    transaction is committed first and a new one begun), the rebuild, `PRAGMA
    foreign_key_check` (any broken reference fails the migration), foreign keys on again.
    Elsewhere it does nothing."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        yield
        return
    bind.exec_driver_sql("COMMIT")
    bind.exec_driver_sql("PRAGMA foreign_keys=OFF")
    bind.exec_driver_sql("BEGIN IMMEDIATE")
    yield
    broken = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"the table rebuild broke {len(broken)} foreign key(s): {broken[:5]}")
    bind.exec_driver_sql("COMMIT")
    bind.exec_driver_sql("PRAGMA foreign_keys=ON")
    bind.exec_driver_sql("BEGIN IMMEDIATE")

