"""Human document numbers (`SO-000123`, `INV-000045`): one series per kind of document.

On PostgreSQL each series is a SEQUENCE, `number_<series>_seq`, created by the service's
migrations (`create_sequences`). `nextval` holds no lock past its own statement, so creates in
concurrent transactions, and in replicas, never wait for each other's commit. A value taken by
a transaction that then rolls back is not handed out again: numbers are unique and increasing
but may have gaps.

On SQLite the service's `counters` table is used: a process's write transactions already take
turns for one connection (shared.db), so the row update adds no waiting, and it rolls back with
its transaction (no gaps there).
"""

from __future__ import annotations

import re

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import dialect_insert

_SERIES = re.compile(r"[a-z][a-z_]{0,40}")


def counter_table(metadata: MetaData) -> Table:
    return Table(
        "counters", metadata,
        Column("name", String(50), primary_key=True),
        Column("value", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    )


def sequence_name(series: str) -> str:
    if not _SERIES.fullmatch(series):
        raise ValueError(f"not a number series name: {series!r}")
    return f"number_{series}_seq"


async def next_number(session: AsyncSession, table: Table, name: str, prefix: str,
                      width: int = 6) -> str:
    """The next number of series `name`, formatted `<prefix>-<value>`."""
    if session.get_bind().dialect.name == "postgresql":
        value = (await session.execute(select(func.nextval(sequence_name(name))))).scalar_one()
    else:
        value = await _bump_counter(session, table, name)
    return f"{prefix}-{value:0{width}d}"


async def next_numbers(session: AsyncSession, table: Table, name: str, prefix: str, count: int,
                       width: int = 6) -> list[str]:
    """The next `count` numbers of series `name`, in one statement (bulk imports)."""
    if count <= 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        values = list((await session.execute(
            select(func.nextval(sequence_name(name))).select_from(
                func.generate_series(1, count).table_valued("n")))).scalars())
        values.sort()
    else:
        last = await _bump_counter(session, table, name, count)
        values = list(range(last - count + 1, last + 1))
    return [f"{prefix}-{value:0{width}d}" for value in values]


async def _bump_counter(session: AsyncSession, table: Table, name: str, by: int = 1) -> int:
    """Take the next `by` values of counter row `name` inside the caller's transaction (returns
    the last); a counter used for the first time is created with INSERT … ON CONFLICT DO NOTHING."""
    bump = update(table).where(table.c.name == name).values(value=table.c.value + by) \
        .returning(table.c.value)
    value = (await session.execute(bump)).scalar_one_or_none()
    if value is None:
        insert = dialect_insert(session)
        await session.execute(insert(table).values(name=name, value=0)
                              .on_conflict_do_nothing(index_elements=[table.c.name]))
        value = (await session.execute(bump)).scalar_one()
    return value


# --- migrations -----------------------------------------------------------------------------


def create_sequences(op, series: tuple[str, ...]) -> None:  # noqa: ANN001 - alembic's `op`
    """Migration step (PostgreSQL only): a sequence per series, continuing from its counter row."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in series:
        seq = sequence_name(name)
        op.execute(f"CREATE SEQUENCE IF NOT EXISTS {seq} AS bigint MINVALUE 1 START 1")
        op.execute(f"SELECT setval('{seq}', value) FROM counters WHERE name = '{name}' AND value > 0")


def drop_sequences(op, series: tuple[str, ...]) -> None:  # noqa: ANN001
    """Migration step back: the counter rows take the sequences' last values, then they go."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in series:
        seq = sequence_name(name)
        op.execute(f"INSERT INTO counters (name, value) SELECT '{name}', "
                   f"CASE WHEN is_called THEN last_value ELSE 0 END FROM {seq} "
                   f"ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value")
        op.execute(f"DROP SEQUENCE IF EXISTS {seq}")
