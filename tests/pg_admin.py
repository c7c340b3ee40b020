"""Create and drop throwaway PostgreSQL databases for test runs (used by .ci/run and tests).

    python tests/pg_admin.py create NAME   # NAME on the server of O2C_TEST_PG_SERVER
    python tests/pg_admin.py drop NAME     # drops NAME and every NAME_* database
"""

from __future__ import annotations

import asyncio
import os
import re
import sys

import asyncpg

SERVER = os.environ.get("O2C_TEST_PG_SERVER", "postgresql://postgres@127.0.0.1:5432/postgres")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,50}$")


def _check(name: str) -> str:
    if not _NAME.match(name):
        raise SystemExit(f"bad database name {name!r}")
    return name


async def create(name: str, server: str = SERVER) -> None:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'CREATE DATABASE "{_check(name)}"')
    finally:
        await conn.close()


async def drop(name: str, server: str = SERVER, *, with_children: bool = True) -> None:
    conn = await asyncpg.connect(server)
    try:
        pattern = _check(name).replace("_", r"\_") + r"\_%"
        rows = await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname = $1"
            + (" OR datname LIKE $2" if with_children else ""),
            *([name, pattern] if with_children else [name]))
        for row in rows:
            await conn.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
    finally:
        await conn.close()


if __name__ == "__main__":
    action, db = sys.argv[1], sys.argv[2]
    asyncio.run(create(db) if action == "create" else drop(db))
