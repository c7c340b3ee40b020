"""The notifier service: stores events once and delivers them to signed webhooks; dunning
turns `invoice.overdue` into notifications, `dunning.escalated` events, emails and charges.

Workers, each with a one-pass method tests drive: `app.state.deliveries.deliver_once()`,
`app.state.dunning.run_once()`, `app.state.emails.send_once()`.
"""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier import api, dunning, repository
from services.notifier.api import NotifierContext
from services.notifier.clients import CreditClient, LedgerClient
from services.notifier.config import NotifierSettings
from services.notifier.delivery import DeliveryWorker
from services.notifier.dunning import DunningWorker
from services.notifier.mailer import EmailWorker
from services.notifier.models import idempotency_keys, metadata
from services.notifier.webhook_client import make_webhook_client
from shared.app import ServiceSpec, create_service_app
from shared.clock import Clock


async def start_deliveries(app: FastAPI) -> None:
    """Make the workers: deliveries (with their own HTTP client, routed through the test
    mounts), dunning and email (calling credit and ledger through the service client)."""
    settings: NotifierSettings = app.state.settings
    state = app.state
    state.deliveries = DeliveryWorker(
        db=state.db, clock=state.clock, settings=settings,
        client=make_webhook_client(settings, state.http_mounts))
    ledger = LedgerClient(state.http)
    state.emails = EmailWorker(db=state.db, clock=state.clock, settings=settings, ledger=ledger)
    state.dunning = DunningWorker(
        db=state.db, clock=state.clock, settings=settings, ledger=ledger,
        credit=CreditClient(state.http), wake_deliveries=state.deliveries.wake,
        wake_emails=state.emails.wake)
    state.context = NotifierContext(
        clock=state.clock, settings=settings,
        reactions=(dunning.reaction(state.dunning.wake),),  # what ingest sets off
        wake_deliveries=state.deliveries.wake, wake_emails=state.emails.wake)


async def delivery_worker(app: FastAPI, stop: asyncio.Event) -> None:
    """Background delivery loop, woken when an ingest or retry commits."""
    await app.state.deliveries.run(stop)


async def dunning_worker(app: FastAPI, stop: asyncio.Event) -> None:
    """Background dunning loop, woken when an `invoice.overdue` is stored."""
    await app.state.dunning.run(stop)


async def email_worker(app: FastAPI, stop: asyncio.Event) -> None:
    """Background email loop, woken when dunning writes email notifications."""
    await app.state.emails.run(stop)


async def stop_deliveries(app: FastAPI) -> None:
    """Close the webhook client once the workers have stopped."""
    worker: DeliveryWorker | None = getattr(app.state, "deliveries", None)
    if worker is not None:
        await worker.aclose()


async def queue_depths(session: AsyncSession) -> dict[str, int]:
    return {"deliveries": await repository.pending_deliveries(session),
            **await repository.pending_work(session)}


SPEC = ServiceSpec(
    name="notifier",
    title="o2c notifier",
    description="Stores every event of the other services once and delivers it to the "
                "webhook endpoints that subscribe to it, signed per Standard Webhooks, with "
                "retries, an attempt log, replay and secret rotation; runs dunning on "
                "overdue invoices (notifications, email, `dunning.escalated`, interest).",
    metadata=metadata,
    idempotency=idempotency_keys,
    routers=[api.events, api.endpoints, api.deliveries, api.dunning, api.notifications],
    tags=[
        {"name": "events", "description": "Event ingest (from the outboxes) and the event log."},
        {"name": "webhook endpoints", "description": "Subscribers, their filters and secrets."},
        {"name": "deliveries", "description": "Each event on its way to each endpoint."},
        {"name": "dunning", "description": "The dunning policy and the salesperson directory."},
        {"name": "notifications", "description": "Dunning messages to each recipient, by "
                                                  "email or carried by `dunning.escalated`."},
    ],
    workers=[delivery_worker, dunning_worker, email_worker],
    queue_probe=queue_depths,
    on_startup=start_deliveries,
    on_shutdown=stop_deliveries,
)


def create_app(settings: NotifierSettings | None = None, *, clock: Clock | None = None,
               http_mounts: dict[str, httpx.AsyncBaseTransport] | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or NotifierSettings(), clock=clock,
                              http_mounts=http_mounts)
