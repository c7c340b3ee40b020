"""The credit service: customers, credit profiles, reservations, holds."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.credit import api, receivables
from services.credit.config import CreditSettings
from services.credit.models import idempotency_keys, metadata, outbox
from shared.app import ServiceSpec, create_service_app
from shared.clock import Clock

SPEC = ServiceSpec(
    name="credit",
    title="o2c credit",
    description="Customers and their contacts along the payment chain; credit profiles, "
                "limits, evaluations, guarantees, reservations and holds.",
    metadata=metadata,
    idempotency=idempotency_keys,
    outbox=outbox,
    routers=api.routers,
    subscriber=receivables.subscriber(),
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
