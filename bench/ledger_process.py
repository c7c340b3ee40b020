"""A real ledger process on a throwaway PostgreSQL database, for the benches.

`throwaway_ledger()` creates the database `<prefix>_<pid>` on `O2C_BENCH_POSTGRES_URL`
(default the local server as user postgres), migrates the ledger into it, lets the caller fill
it, starts `o2c serve ledger` on a free loopback port (workers off) with a finance and a
service key, waits for `/ready`, and on the way out stops the process and drops the database.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from shared import migrations
from shared.auth import append_key
from shared.db import Database

SERVER = os.environ.get("O2C_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
FINANCE_KEY = "bench-finance"
SERVICE_KEY = "bench-service"


@dataclass(frozen=True)
class Ledger:
    name: str  # the database
    url: str  # its SQLAlchemy URL
    dsn: str  # its asyncpg DSN, for the bare passes
    base: str  # the ledger's base URL
    pid: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _urls(name: str) -> tuple[str, str, str]:
    """(admin DSN for asyncpg, SQLAlchemy URL of the throwaway db, asyncpg DSN of it)."""
    url = make_url(SERVER)
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    bench = url.set(database=name)
    return (admin, bench.render_as_string(hide_password=False),
            bench.set(drivername="postgresql").render_as_string(hide_password=False))


async def _wait_ready(base: str, server: subprocess.Popen) -> None:
    for _ in range(300):
        if server.poll() is not None:
            raise SystemExit(f"o2c serve ledger exited with {server.returncode}")
        try:
            urllib.request.urlopen(base + "/ready", timeout=1)  # noqa: ASYNC210 - before measuring
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise SystemExit("the ledger did not become ready within 30 s")


@asynccontextmanager
async def throwaway_ledger(prefix: str, *, env: dict[str, str] | None = None,
                           fill: Callable[[str, str], Awaitable[None]] | None = None,
                           ) -> AsyncIterator[Ledger]:
    """A migrated throwaway database (filled by `fill(name, dsn)` first) behind a real ledger."""
    name = f"{prefix}_{os.getpid()}"
    admin, url, dsn = _urls(name)
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    server: subprocess.Popen | None = None
    try:
        db = Database(url)
        try:
            await migrations.upgrade(db.engine, "ledger")
        finally:
            await db.dispose()
        if fill is not None:
            await fill(name, dsn)
        with tempfile.TemporaryDirectory() as tmp:
            keys = Path(tmp) / "keys.toml"
            append_key(keys, FINANCE_KEY, "bench-finance", ["finance"])
            port = _free_port()
            server = subprocess.Popen(  # noqa: ASYNC220 - start-up, before measuring
                [sys.executable, "-m", "services.cli", "serve", "ledger", "--port", str(port)],
                env={**os.environ, "O2C_DATA_DIR": tmp, "O2C_API_KEYS_FILE": str(keys),
                     "O2C_SERVICE_KEY": SERVICE_KEY, "O2C_LEDGER_DATABASE_URL": url,
                     "O2C_LOG_LEVEL": "ERROR", "O2C_WORKERS_ENABLED": "false", **(env or {})})
            base = f"http://127.0.0.1:{port}"
            await _wait_ready(base, server)
            yield Ledger(name=name, url=url, dsn=dsn, base=base, pid=server.pid)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=15)
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
