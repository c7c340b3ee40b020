"""The record of each import of open items (registered on the ledger's metadata).

Each imported invoice is an `invoices` row with `import_id` set and no order, posted like any
invoice but against opening balance equity: Dr 1100 receivables (the customer) / Cr 3000, for
its outstanding amount, dated when it was issued. The import keeps what it did: how many rows
it was given, how many it created and how many were already in the ledger with the same terms,
and its totals per currency.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field

from services.ledger.models import LedgerBase, new_id
from shared.db import UTCDateTime


class InvoiceImport(LedgerBase, table=True):
    __tablename__ = "invoice_imports"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    number: str = Field(max_length=20, unique=True)
    format: str = Field(max_length=10)  # json or csv
    rows: int
    created: int  # invoices written by this import
    unchanged: int  # rows already imported before, with the same terms
    # [{currency, invoices, amount_minor, outstanding_minor}] of the invoices it created
    totals: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
