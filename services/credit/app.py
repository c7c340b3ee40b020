"""The credit service: customers, credit profiles, reservations, holds."""

from __future__ import annotations

import asyncio
import functools

import httpx
from fastapi import FastAPI

from services.credit import api, holds, receivables
from services.credit.config import CreditSettings
from services.credit.models import idempotency_keys, inbox, metadata, outbox, subscriptions
from shared.app import ServiceSpec, create_service_app, run_periodically
from shared.clock import Clock
from shared.coalesce import Coalesced
from shared.subscriptions import Subscriber, handlers_of


async def expose_workers(app: FastAPI) -> None:
    """Put one pass of each worker on `app.state`, so tests (and operators) can drive them,
    and the coalesced asks of ledger's receivables the event handlers share."""
    app.state.hold_recheck_once = functools.partial(holds.recheck_all, app)
    app.state.receivables_asks = Coalesced()


async def hold_recheck_worker(app: FastAPI, stop: asyncio.Event) -> None:
    """Background loop: release automatic holds whose invoices ledger shows settled."""
    await run_periodically(stop, app.state.settings.hold_recheck_seconds,
                           app.state.hold_recheck_once, "hold-recheck", app.state.clock)


def subscriber() -> Subscriber:
    """Ledger's events credit acts on: receivables snapshot refreshes and automatic holds."""
    return Subscriber(service="credit", handlers=handlers_of(receivables.handlers(), holds.handlers()),
                      subscriptions=subscriptions, inbox=inbox)


SPEC = ServiceSpec(
    name="credit",
    title="o2c credit",
    description="Customers and their contacts along the payment chain; credit profiles, "
                "limits, evaluations, guarantees, reservations and holds.",
    metadata=metadata,
    idempotency=idempotency_keys,
    outbox=outbox,
    routers=api.routers,
    subscriber=subscriber(),
    workers=[hold_recheck_worker],
    on_startup=expose_workers,
    tags=[{"name": "customers", "description": "Customers and their contacts."},
          {"name": "credit", "description": "Credit profiles (limit, terms, grade, policy, "
                                            "status, exposure), holds, guarantees, credit "
                                            "inquiries and assets."},
          {"name": "evaluations", "description": "Credit scorecards and applying them to the "
                                                 "profile."},
          {"name": "reservations", "description": "Credit decisions for orders: reserve, "
                                                  "change, release, convert on invoicing."}],
)


def create_app(settings: CreditSettings | None = None, *, clock: Clock | None = None,
               http_mounts: dict[str, httpx.AsyncBaseTransport] | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or CreditSettings(), clock=clock,
                              http_mounts=http_mounts)
