"""The orders service: orders from intake to contract, their review, history and machine."""

from __future__ import annotations

from datetime import datetime

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.orders import api, steps, workers
from services.orders.changes import api as changes_api
from services.orders.changes import lifecycle as change_lifecycle
from services.orders.config import OrdersSettings
from services.orders.context import OrdersContext
from services.orders.inbox import close_when_paid, close_when_paid_prepare
from services.orders.models import idempotency_keys, inbox, metadata, outbox, subscriptions
from shared.app import Periodic, ServiceSpec, create_service_app
from shared.clock import Clock
from shared.observability import work_request_id
from shared.subscriptions import Subscriber, TwoPhase


def build_context(app: FastAPI) -> OrdersContext:
    """The one place the orders context is made: from what `create_service_app` put on
    `app.state` (database, outbox, clock, settings, the HTTP client for credit and ledger)."""
    state = app.state
    return OrdersContext(db=state.db, outbox=state.outbox, clock=state.clock,
                         settings=state.settings, keys=idempotency_keys, http=lambda: state.http)


async def _credit_retry_once(app: FastAPI) -> int:
    """One pass of the credit retry: ask credit again for every unanswered reservation."""
    ctx: OrdersContext = app.state.context
    return await workers.retry_pending_credit(ctx=ctx)


async def _review_sla_scan_once(app: FastAPI, as_of: datetime | None = None) -> list[str]:
    """One pass of the review deadline scan, as of now unless told otherwise."""
    ctx: OrdersContext = app.state.context
    return await workers.scan_review_deadlines_once(ctx=ctx, as_of=as_of)


async def _step_recovery_once(app: FastAPI) -> int:
    """One pass of the recovery worker: finish the steps whose time has come."""
    ctx: OrdersContext = app.state.context

    def env_for(session: AsyncSession, actor: str) -> steps.Env:
        return steps.Env.of(ctx, session, actor)

    with work_request_id():
        return await steps.resume_due(db=ctx.db, env_for=env_for, clock=ctx.clock,
                                      settings=ctx.settings)


async def start_up(app: FastAPI) -> None:
    """Make the context once."""
    app.state.context = build_context(app)


PERIODIC = [
    # Ask credit again for reservations it has not answered.
    Periodic("credit-retry", _credit_retry_once, every="credit_retry_seconds"),
    # Finish steps a dead request or an outage left pending (steps.py).
    Periodic("step-recovery", _step_recovery_once, every="step_recovery_seconds"),
    # Report reviews past their deadline (`order.review_overdue`); POST /v1/review-sla-scans.
    Periodic("review-sla-scan", _review_sla_scan_once, every="review_sla_scan_seconds"),
]


# Change requests (`changes/`) join the core here: their routes below, their machine served
# with the order's, and (loaded with their routes) their apply step and what a cancel does to
# them, registered with `steps`.
api.MACHINES["change_request_machine"] = change_lifecycle.describe

SPEC = ServiceSpec(
    name="orders",
    title="o2c orders",
    description="Orders from intake to close: draft orders with their lines and totals, "
                "submission and the preliminary check, department reviews, credit "
                "reservations, contracts, fulfilment, deliveries, settlement and close; the "
                "order machine, its history and diagram.",
    metadata=metadata,
    idempotency=idempotency_keys,
    outbox=outbox,
    routers=[api.router, api.lifecycle_router, changes_api.router],
    tags=[{"name": "orders", "description": "Orders and their lines."},
          {"name": "lifecycle", "description": "Moving an order through its machine: submit, "
                                               "reviews, credit, contract, cancel; its history."},
          {"name": "change requests", "description": "Changing an approved order's terms: the "
                                                     "request, department reviews, withdrawal, "
                                                     "apply with the signed change agreement; "
                                                     "past revisions' terms."}],
    periodic=PERIODIC,
    on_startup=start_up,
    subscriber=Subscriber(service="orders", handlers={"invoice.paid": TwoPhase(
        close_when_paid_prepare, close_when_paid)},
        subscriptions=subscriptions, inbox=inbox),
)


def create_app(settings: OrdersSettings | None = None, *, clock: Clock | None = None,
               http_mounts: dict[str, httpx.AsyncBaseTransport] | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or OrdersSettings(), clock=clock,
                              http_mounts=http_mounts)
