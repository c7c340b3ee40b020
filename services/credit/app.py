"""The credit service: customers, credit profiles, reservations, holds."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.credit import api, holds, receivables
from services.credit.config import CreditSettings
from services.credit.models import idempotency_keys, inbox, metadata, outbox, subscriptions
from shared.app import Periodic, ServiceSpec, create_service_app
from shared.clock import Clock
from shared.coalesce import Coalesced
from shared.subscriptions import Subscriber, handlers_of


async def start_up(app: FastAPI) -> None:
    """The coalesced asks of ledger's receivables the event handlers share."""
    app.state.receivables_asks = Coalesced()


# Release automatic holds whose invoices ledger shows settled; POST /v1/hold-rechecks.
PERIODIC = [Periodic("hold-recheck", holds.recheck_all, every="hold_recheck_seconds")]


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
    periodic=PERIODIC,
    on_startup=start_up,
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
