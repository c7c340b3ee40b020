"""The notifier service."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.notifier.config import NotifierSettings
from services.notifier.models import idempotency_keys, metadata
from shared.app import ServiceSpec, create_service_app
from shared.clock import Clock

SPEC = ServiceSpec(
    name="notifier",
    title="o2c notifier",
    description="",
    metadata=metadata,
    idempotency=idempotency_keys,
    routers=[],
)


def create_app(settings: NotifierSettings | None = None, *, clock: Clock | None = None,
               http_mounts: dict[str, httpx.AsyncBaseTransport] | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or NotifierSettings(), clock=clock,
                              http_mounts=http_mounts)
