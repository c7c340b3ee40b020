"""Queries of the open-item import."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.imports.models import InvoiceImport
from services.ledger.models import JournalLine


async def get_import(session: AsyncSession, import_id: str) -> InvoiceImport | None:
    return await session.get(InvoiceImport, import_id)


async def opening_amounts(session: AsyncSession, entry_ids: Sequence[str]) -> dict[str, int]:
    """Σ debit of each entry: what an imported invoice's opening entry put on receivables."""
    found: dict[str, int] = {}
    for start in range(0, len(entry_ids), 1000):  # bounded IN lists
        stmt = (select(JournalLine.entry_id, func.sum(JournalLine.debit_minor))
                .where(JournalLine.entry_id.in_(entry_ids[start:start + 1000]))
                .group_by(JournalLine.entry_id))
        found |= {entry_id: int(total) for entry_id, total in await session.execute(stmt)}
    return found
