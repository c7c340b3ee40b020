"""Human document numbers (`SO-000123`, `INV-000045`) from a per-service counter table."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import dialect_insert


def counter_table(metadata: MetaData) -> Table:
    return Table(
        "counters", metadata,
        Column("name", String(50), primary_key=True),
        Column("value", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    )


async def next_number(session: AsyncSession, table: Table, name: str, prefix: str,
                      width: int = 6) -> str:
    """Take the next value of counter `name` inside the caller's transaction.

    The UPDATE locks the counter row until the caller commits, so numbers are never handed
    out twice; a counter used for the first time is created with INSERT … ON CONFLICT DO
    NOTHING, which is safe when two first uses race.
    """
    bump = update(table).where(table.c.name == name).values(value=table.c.value + 1) \
        .returning(table.c.value)
    value = (await session.execute(bump)).scalar_one_or_none()
    if value is None:
        insert = dialect_insert(session)
        await session.execute(insert(table).values(name=name, value=0)
                              .on_conflict_do_nothing(index_elements=[table.c.name]))
        value = (await session.execute(bump)).scalar_one()
    return f"{prefix}-{value:0{width}d}"
