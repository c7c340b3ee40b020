"""The ledger service: double-entry journal, chart of accounts, invoices and receivables."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx
from fastapi import FastAPI

from services.ledger import api, chart
from services.ledger.collection import api as collection_api
from services.ledger.collection import scan as collection_scan
from services.ledger.config import LedgerSettings
from services.ledger.imports import api as imports_api
from services.ledger.models import idempotency_keys, metadata, outbox
from services.ledger.refunds import api as refunds_api
from services.ledger.reporting import api as reporting_api
from services.ledger.writeoffs import api as writeoffs_api
from shared.app import ServiceSpec, create_service_app
from shared.clock import Clock

log = logging.getLogger("o2c.ledger")


CHART_RETRY_SECONDS = 2.0


async def _seed_chart(app: FastAPI) -> None:
    """Seed the chart of accounts; before `o2c migrate ledger`, keep trying in the background
    until the tables are there (no restart needed)."""
    app.state.chart_seeder = None
    if not await chart.ensure_chart(app.state.db, app.state.clock):
        app.state.chart_seeder = asyncio.create_task(_seed_when_migrated(app), name="chart-seeder")


async def _seed_when_migrated(app: FastAPI) -> None:
    while True:
        await asyncio.sleep(CHART_RETRY_SECONDS)
        try:
            if await chart.ensure_chart(app.state.db, app.state.clock, quiet=True):
                return
        except Exception:  # e.g. the database unreachable for a moment: keep trying
            log.warning("seeding the ledger accounts failed; trying again", exc_info=True)


async def _stop_seeder(app: FastAPI) -> None:
    task = app.state.chart_seeder
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


SPEC = ServiceSpec(
    name="ledger",
    title="o2c ledger",
    description="The double-entry journal behind order-to-cash: chart of accounts, balanced and "
                "immutable journal entries (corrected by reversal), trial balance, the "
                "invoices that make up each customer's receivables, payments, credit and "
                "debit notes, statements and exposure.",
    metadata=metadata,
    idempotency=idempotency_keys,
    outbox=outbox,
    routers=[*api.routers, imports_api.router, refunds_api.router, writeoffs_api.router,
             reporting_api.router, *collection_api.routers],
    large_bodies=[(imports_api.PATH, "import_max_body_bytes", imports_api.IMPORTERS)],
    tags=[
        {"name": "accounts", "description": "The chart of accounts."},
        {"name": "journal", "description": "Balanced, immutable journal entries and reversals."},
        {"name": "reports", "description": "Trial balance, the ledger's self-check, and "
                                           "receivables reports as of a date: aging, DSO, "
                                           "collection effectiveness, salesperson performance."},
        {"name": "invoices", "description": "Invoices and what is still outstanding on them, "
                                            "and open invoices imported from another system."},
        {"name": "payments", "description": "Payments, their allocations, reversals and the "
                                            "customers' unapplied cash, and refunds of it."},
        {"name": "notes", "description": "Credit notes (returns, allowances) and debit notes "
                                         "(late-payment interest, fees) against invoices."},
        {"name": "receivables", "description": "Balances per order, customer statements and "
                                               "exposure for credit decisions."},
        {"name": "write-offs", "description": "Bad debt written off with four eyes (proposed by "
                                              "one finance principal, approved by another), and "
                                              "money recovered on it later."},
        {"name": "overdue", "description": "The overdue scan: `invoice.overdue` once per invoice "
                                           "and level crossed (daily and on request); promises "
                                           "to pay decided."},
        {"name": "collection", "description": "Collection work on an invoice: promises to pay, "
                                              "disputes (which pause dunning) and notes along "
                                              "the customer's payment chain."},
    ],
    periodic=[collection_scan.OVERDUE_SCAN],
    on_startup=_seed_chart,
    on_shutdown=_stop_seeder,
)


def create_app(settings: LedgerSettings | None = None, *, clock: Clock | None = None,
               http_mounts: dict[str, httpx.AsyncBaseTransport] | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or LedgerSettings(), clock=clock,
                              http_mounts=http_mounts)
