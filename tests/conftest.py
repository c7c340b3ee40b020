"""Test fixtures: every test runs on SQLite, or on PostgreSQL when O2C_TEST_POSTGRES_URL is set.

O2C_TEST_POSTGRES_URL names a throwaway database (`.ci/run` creates it); the suite creates
one database per service beside it (`<name>_orders`, …), migrates them once, empties them
between tests and drops them at the end. On SQLite each test gets copies of migrated
template files.

Either way a test's databases start as the four services leave them after their first start:
migrated, and each service subscribed at notifier (`_subscribe`). Registering costs four
calls per system, half of a test's set-up; done once per worker, a test only checks it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy.engine import make_url

from shared import migrations
from shared.clock import FrozenClock
from shared.db import Database
from shared.settings import SERVICES
from tests import pg_admin
from tests.harness import System, running_system, write_keys

# The builders' asserts say what they compared, as the tests' own do (imported after this).
pytest.register_assert_rewrite("tests.fixtures", "tests.hostile")

PG_URL = os.environ.get("O2C_TEST_POSTGRES_URL")
BACKEND = "postgresql" if PG_URL else "sqlite"
# Under pytest-xdist (`make test` runs a worker per core) each worker has its own databases.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


def _pg_name(service: str) -> str:
    base = make_url(PG_URL).database
    return f"{base}_{WORKER}_{service}" if WORKER else f"{base}_{service}"


def pytest_report_header(config: pytest.Config) -> str:
    return f"o2c database backend: {BACKEND}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On PostgreSQL, skip what SQLite's run (`make test`) has checked already the same way."""
    if not PG_URL:
        return
    skip = pytest.mark.skip(reason="backend_independent: make test (SQLite) runs it")
    for item in items:
        if item.get_closest_marker("backend_independent"):
            item.add_marker(skip)


def _metadata(service: str):
    import importlib

    return importlib.import_module(f"services.{service}.models").metadata


async def _subscribe(urls: dict[str, str], directory: Path) -> None:
    """Start the four services once on fresh databases, which leaves each one subscribed."""
    keys_file = directory / "api-keys.toml"
    keys = write_keys(keys_file)
    async with running_system(database_urls=urls, keys_file=keys_file, keys=keys,
                              clock=FrozenClock(), data_dir=directory, lock_probe=False):
        pass


@dataclass(frozen=True)
class Seed:
    """What one PostgreSQL database holds after `_subscribe`, and how to put it back."""

    empty: str  # DELETE every table (children first) and restart every sequence
    rows: list[tuple[str, list]]  # (INSERT statement, its rows) per table that has rows
    after: str  # move the sequences of those tables past their rows


Snapshot = dict[str, Seed]  # by service


# Sequences owned by a table's columns (serial and identity).
_OWNED_SEQUENCES = (
    "SELECT s.oid::regclass::text AS seq, t.oid::regclass::text AS tbl, a.attname AS col "
    "FROM pg_class s JOIN pg_depend d ON d.objid = s.oid AND d.deptype IN ('a', 'i') "
    "JOIN pg_class t ON t.oid = d.refobjid "
    "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid "
    "WHERE s.relkind = 'S'")


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _snapshot(urls: dict[str, str]) -> Snapshot:
    """Every row in the databases (what `_subscribe` left), to put back before each test."""
    snapshot: Snapshot = {}
    for service, url in urls.items():
        tables = [t.name for t in _metadata(service).sorted_tables]
        conn = await asyncpg.connect(_dsn(url))
        try:
            rows = []
            for name in tables:
                records = await conn.fetch(f'SELECT * FROM "{name}"')
                if records:
                    columns = ", ".join(f'"{c}"' for c in records[0].keys())
                    values = ", ".join(f"${i + 1}" for i in range(len(records[0])))
                    rows.append((f'INSERT INTO "{name}" ({columns}) VALUES ({values})',
                                 [tuple(r) for r in records], name))
            restored = {name for _, _, name in rows}
            after = [f"SELECT setval('{r['seq']}', COALESCE((SELECT max(\"{r['col']}\") "
                     f"FROM {r['tbl']}), 0) + 1, false)"
                     for r in await conn.fetch(_OWNED_SEQUENCES) if r["tbl"].strip('"') in restored]
        finally:
            await conn.close()
        snapshot[service] = Seed(
            empty="; ".join([*(f'DELETE FROM "{t}"' for t in reversed(tables)),
                             "SELECT setval(c.oid, 1, false) FROM pg_class c WHERE c.relkind = 'S'"]),
            rows=[(insert, records) for insert, records, _ in rows], after="; ".join(after))
    return snapshot


async def _prepare_postgres(directory: Path) -> tuple[dict[str, str], Snapshot]:
    url = make_url(PG_URL)
    server = url.set(drivername="postgresql", database=url.database).render_as_string(
        hide_password=False)
    urls = {}
    for service in SERVICES:
        name = _pg_name(service)
        await pg_admin.drop(name, server, with_children=False)
        await pg_admin.create(name, server)
        urls[service] = url.set(database=name).render_as_string(hide_password=False)
        db = Database(urls[service])
        try:
            await migrations.upgrade(db.engine, service)
        finally:
            await db.dispose()
    await _subscribe(urls, directory)
    return urls, await _snapshot(urls)


async def _prepare_sqlite(directory: Path) -> dict[str, str]:
    urls = {}
    for service in SERVICES:
        urls[service] = f"sqlite+aiosqlite:///{directory / f'{service}.db'}"
        db = Database(urls[service])
        try:
            await migrations.upgrade(db.engine, service)
        finally:
            await db.dispose()
    await _subscribe(urls, directory)  # closing the last connection checkpoints the WAL
    return urls


@pytest.fixture(scope="session")
def database_templates(tmp_path_factory: pytest.TempPathFactory):
    if PG_URL:
        urls, snapshot = asyncio.run(_prepare_postgres(tmp_path_factory.mktemp("seed")))
        yield urls, snapshot
        url = make_url(PG_URL)
        server = url.set(drivername="postgresql").render_as_string(hide_password=False)
        for service in SERVICES:
            asyncio.run(pg_admin.drop(_pg_name(service), server, with_children=False))
    else:
        directory = tmp_path_factory.mktemp("templates")
        yield asyncio.run(_prepare_sqlite(directory)), {}


async def _reset(urls: dict[str, str], snapshot: Snapshot) -> None:
    """Put each database back as the snapshot has it: empty every table, restart every
    sequence, insert the snapshot's rows; the four databases at once.

    DELETE, not TRUNCATE: on the few rows a test leaves it is ~160 times faster (2.7 ms
    against 437 ms for the four databases, measured on one server); TRUNCATE, and opening
    an engine per database, were most of a PostgreSQL test's set-up."""
    async def reset(service: str, url: str) -> None:
        seed = snapshot[service]
        conn = await asyncpg.connect(_dsn(url))
        try:
            async with conn.transaction():
                await conn.execute(seed.empty)
                for insert, records in seed.rows:
                    await conn.executemany(insert, records)
                if seed.after:
                    await conn.execute(seed.after)
        finally:
            await conn.close()

    await asyncio.gather(*(reset(service, url) for service, url in urls.items()))


@pytest.fixture
async def database_urls(database_templates: tuple[dict[str, str], Snapshot],
                        tmp_path: Path) -> dict[str, str]:
    """Fresh, migrated databases for one test, each service subscribed at notifier."""
    templates, snapshot = database_templates
    if PG_URL:
        await _reset(templates, snapshot)
        return dict(templates)
    return _copies(templates, tmp_path / "db")


def _copies(templates: dict[str, str], db_dir: Path) -> dict[str, str]:
    """Copies of the SQLite template files in `db_dir`, by service."""
    urls = {}
    db_dir.mkdir()
    for service, url in templates.items():
        source = Path(make_url(url).database)
        shutil.copy(source, db_dir / source.name)
        urls[service] = f"sqlite+aiosqlite:///{db_dir / source.name}"
    return urls


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_system(database_templates: tuple[dict[str, str], Snapshot],
                        tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[System]:
    """One system for a whole test module, for modules whose tests only send requests that
    any earlier test of the module leaves answered the same way (hostile input: each is
    refused before it reads or writes). Such a module sets `pytestmark =
    pytest.mark.asyncio(loop_scope="module")` and every test in it uses this, not `system`."""
    templates, snapshot = database_templates
    directory = tmp_path_factory.mktemp("shared-system")
    if PG_URL:
        await _reset(templates, snapshot)
        urls = dict(templates)
    else:
        urls = _copies(templates, directory / "db")
    keys_file = directory / "api-keys.toml"
    keys = write_keys(keys_file)
    async with running_system(database_urls=urls, keys_file=keys_file, keys=keys,
                              clock=FrozenClock(), data_dir=directory) as running:
        yield running


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    return tmp_path / "api-keys.toml"


@pytest.fixture
def keys(keys_file: Path) -> dict[str, str]:
    return write_keys(keys_file)


@pytest.fixture
def system_overrides() -> dict[str, dict]:
    """Per-service settings overrides; override this fixture in a test module."""
    return {}


@pytest.fixture
async def system(database_urls, keys_file, keys, clock, tmp_path,
                 system_overrides) -> AsyncIterator[System]:
    async with running_system(database_urls=database_urls, keys_file=keys_file, keys=keys,
                              clock=clock, data_dir=tmp_path, **system_overrides) as running:
        yield running
