"""What every change of a versioned row does: bump its version (ETag, compare-and-set), stamp it."""

from __future__ import annotations

from datetime import datetime

from services.ledger.models import CustomerBalance, Invoice, Payment


def touch(row: Invoice | Payment | CustomerBalance, now: datetime) -> None:
    row.version += 1
    row.updated_at = now
