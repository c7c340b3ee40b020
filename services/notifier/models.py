"""Tables of the notifier service."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlmodel import SQLModel

from shared.db import service_metadata
from shared.idempotency import idempotency_table


class NotifierBase(SQLModel):
    metadata = service_metadata()


metadata: MetaData = NotifierBase.metadata
idempotency_keys = idempotency_table(metadata)
