"""Tables of the credit service."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, MetaData
from sqlmodel import Field, SQLModel

from shared.db import UTCDateTime, service_metadata
from shared.idempotency import idempotency_table
from shared.numbering import counter_table
from shared.outbox import outbox_table


class CreditBase(SQLModel):
    metadata = service_metadata()


metadata: MetaData = CreditBase.metadata
outbox = outbox_table(metadata)
idempotency_keys = idempotency_table(metadata)
counters = counter_table(metadata)


class Customer(CreditBase, table=True):
    __tablename__ = "customers"

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    number: str = Field(max_length=20, unique=True)
    name: str = Field(max_length=200, index=True)
    registration_no: str | None = Field(default=None, max_length=64, index=True)
    salesperson_id: str | None = Field(default=None, max_length=64, index=True)
    address: str | None = Field(default=None, max_length=500)
    contacts: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    bank_accounts: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    version: int = Field(default=1)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(sa_type=UTCDateTime)
