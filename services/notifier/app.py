"""The notifier service: stores events once and delivers them to signed webhooks."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier import api, repository
from services.notifier.config import NotifierSettings
from services.notifier.delivery import DeliveryWorker, make_webhook_client
from services.notifier.models import idempotency_keys, metadata
from shared.app import ServiceSpec, create_service_app
from shared.clock import Clock


async def start_deliveries(app: FastAPI) -> None:
    """Make the delivery worker and its own HTTP client (routed through the test mounts)."""
    settings: NotifierSettings = app.state.settings
    app.state.deliveries = DeliveryWorker(
        db=app.state.db, clock=app.state.clock, settings=settings,
        client=make_webhook_client(settings, app.state.http_mounts))


async def delivery_worker(app: FastAPI, stop: asyncio.Event) -> None:
    """Background delivery loop, woken when an ingest or retry commits."""
    await app.state.deliveries.run(stop)


async def stop_deliveries(app: FastAPI) -> None:
    """Close the webhook client once the workers have stopped."""
    worker: DeliveryWorker | None = getattr(app.state, "deliveries", None)
    if worker is not None:
        await worker.aclose()


async def queue_depths(session: AsyncSession) -> dict[str, int]:
    return {"deliveries": await repository.pending_deliveries(session)}


SPEC = ServiceSpec(
    name="notifier",
    title="o2c notifier",
    description="Stores every event of the other services once and delivers it to the "
                "webhook endpoints that subscribe to it, signed per Standard Webhooks, with "
                "retries, an attempt log, replay and secret rotation.",
    metadata=metadata,
    idempotency=idempotency_keys,
    routers=[api.events, api.endpoints, api.deliveries],
    tags=[
        {"name": "events", "description": "Event ingest (from the outboxes) and the event log."},
        {"name": "webhook endpoints", "description": "Subscribers, their filters and secrets."},
        {"name": "deliveries", "description": "Each event on its way to each endpoint."},
    ],
    workers=[delivery_worker],
    queue_probe=queue_depths,
    on_startup=start_deliveries,
    on_shutdown=stop_deliveries,
)


def create_app(settings: NotifierSettings | None = None, *, clock: Clock | None = None,
               http_mounts: dict[str, httpx.AsyncBaseTransport] | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or NotifierSettings(), clock=clock,
                              http_mounts=http_mounts)
