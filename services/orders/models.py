"""Tables of the orders service."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlmodel import SQLModel

from shared.db import service_metadata
from shared.idempotency import idempotency_table
from shared.numbering import counter_table
from shared.outbox import outbox_table


class OrdersBase(SQLModel):
    metadata = service_metadata()


metadata: MetaData = OrdersBase.metadata
outbox = outbox_table(metadata)
idempotency_keys = idempotency_table(metadata)
counters = counter_table(metadata)
