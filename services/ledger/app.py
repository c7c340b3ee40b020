"""The ledger service."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.ledger.config import LedgerSettings
from services.ledger.models import idempotency_keys, metadata, outbox
from shared.app import ServiceSpec, create_service_app
from shared.clock import Clock

SPEC = ServiceSpec(
    name="ledger",
    title="o2c ledger",
    description="",
    metadata=metadata,
    idempotency=idempotency_keys,
    outbox=outbox,
    routers=[],
)


def create_app(settings: LedgerSettings | None = None, *, clock: Clock | None = None,
               http_mounts: dict[str, httpx.AsyncBaseTransport] | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or LedgerSettings(), clock=clock,
                              http_mounts=http_mounts)
