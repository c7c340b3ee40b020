"""The orders service: orders and their lines, from draft to close."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.orders import api
from services.orders.config import OrdersSettings
from services.orders.models import idempotency_keys, metadata, outbox
from shared.app import ServiceSpec, create_service_app
from shared.clock import Clock

SPEC = ServiceSpec(
    name="orders",
    title="o2c orders",
    description="Orders from intake to close: draft orders with their lines and totals.",
    metadata=metadata,
    idempotency=idempotency_keys,
    outbox=outbox,
    routers=[api.router],
    tags=[{"name": "orders", "description": "Orders and their lines."}],
)


def create_app(settings: OrdersSettings | None = None, *, clock: Clock | None = None,
               http_mounts: dict[str, httpx.AsyncBaseTransport] | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or OrdersSettings(), clock=clock,
                              http_mounts=http_mounts)
