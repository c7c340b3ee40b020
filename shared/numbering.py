"""Human document numbers (`SO-000123`, `INV-000045`) from a per-service counter table."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession


def counter_table(metadata: MetaData) -> Table:
    return Table(
        "counters", metadata,
        Column("name", String(50), primary_key=True),
        Column("value", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    )


async def next_number(session: AsyncSession, table: Table, name: str, prefix: str,
                      width: int = 6) -> str:
    """Take the next value of counter `name` inside the caller's transaction."""
    result = await session.execute(
        update(table).where(table.c.name == name).values(value=table.c.value + 1)
        .returning(table.c.value))
    value = result.scalar_one_or_none()
    if value is None:
        # First use: create the counter. A concurrent first use loses on the primary key and
        # its transaction is retried by the caller's client (rare, once per counter).
        existing = (await session.execute(select(table.c.value).where(table.c.name == name))
                    ).scalar_one_or_none()
        if existing is None:
            await session.execute(table.insert().values(name=name, value=1))
            value = 1
        else:  # pragma: no cover - only after a concurrent insert
            value = existing + 1
            await session.execute(update(table).where(table.c.name == name).values(value=value))
    return f"{prefix}-{value:0{width}d}"
