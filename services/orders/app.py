"""The orders service."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.orders.config import OrdersSettings
from services.orders.models import idempotency_keys, metadata, outbox
from shared.app import ServiceSpec, create_service_app
from shared.clock import Clock

SPEC = ServiceSpec(
    name="orders",
    title="o2c orders",
    description="",
    metadata=metadata,
    idempotency=idempotency_keys,
    outbox=outbox,
    routers=[],
)


def create_app(settings: OrdersSettings | None = None, *, clock: Clock | None = None,
               http_mounts: dict[str, httpx.AsyncBaseTransport] | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or OrdersSettings(), clock=clock,
                              http_mounts=http_mounts)
