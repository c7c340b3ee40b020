"""Credit's exposure follows ledger: the events credit subscribes to and what it does on each.

Ledger's events say *that* a customer's receivables changed; ledger's
`GET /v1/customers/{id}/exposure?currency=` says *what they are*. On every event below credit
asks ledger for the customer's figures in the event's currency and overwrites its
receivables snapshot with them, so the order events arrive in, a redelivery or a missed
event do not matter: the next refresh is right again. On `invoice.issued` the order's
active reservation is converted in the same transaction, so reserved drops as open
receivables rise.

The handler is two-phase (shared.subscriptions.TwoPhase, DESIGN.md §9): ledger is asked
before the inbox opens its write transaction, and the answer is written after. Events about
one customer and currency that arrive together share one ask that began after each arrived
(shared.coalesce), so a burst costs ledger at most two reads, not one per event. If ledger
does not answer, nothing is recorded (not even the inbox row), the inbox answers 503 and
notifier delivers the event again later. Two refreshes of one customer may cross between
asking and writing; the snapshot keeps the figures asked last (`refreshed_at`), never a
slower, older answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.credit import repository, reservations
from services.credit.clients import LedgerClient, LedgerReceivables
from services.credit.models import ReservationStatus
from services.credit.schemas import ReservationConvert
from shared.coalesce import Coalesced
from shared.events import Event
from shared.subscriptions import Handler, TwoPhase

log = logging.getLogger("o2c.credit.receivables")

# Every ledger event that changes a customer's open or overdue receivables. `invoice.paid`
# always comes with the `payment.received` or `unapplied_cash.applied` that paid it.
RECEIVABLE_EVENTS = ("invoice.issued", "invoice.imported", "payment.received", "credit_note.issued",
                     "debit_note.issued", "payment.reversed", "unapplied_cash.applied",
                     "writeoff.approved")


@dataclass(frozen=True)
class Figures:
    """Ledger's receivables of the event's customer in the event's currency, and when asked."""

    customer_id: str
    currency: str
    receivables: LedgerReceivables
    asked_at: datetime


async def ask_ledger(app: FastAPI, event: Event) -> Figures | None:
    """Ledger's figures for the event's customer and currency; None when the event names none.

    Raises `DependencyUnavailable` when ledger does not answer. Ledger commits before it
    publishes, so its answer includes whatever the event reports.
    """
    data = event.data
    customer_id, currency = data.get("customer_id"), data.get("currency")
    if not customer_id or not currency:
        log.warning("%s %s names no customer or currency; ignored", event.type, event.id)
        return None
    customer_id, currency = str(customer_id), str(currency)

    async def fetch() -> Figures:
        asked_at = app.state.clock.now()
        figures = await LedgerClient(app.state.http).receivables(customer_id, currency)
        return Figures(customer_id, currency, figures, asked_at)

    # A burst of events about one customer shares fetches begun after each event arrived.
    asks: Coalesced[Figures] = app.state.receivables_asks
    return await asks.ask((customer_id, currency), fetch)


async def _convert_for_invoice(session: AsyncSession, app: FastAPI, data: dict[str, Any]) -> None:
    """The order was invoiced: its active reservation becomes open receivable (if it has one)."""
    reservation = await repository.live_reservation_for_order(session, str(data["order_id"]))
    if reservation is None or reservation.status != ReservationStatus.active or \
            reservation.customer_id != data["customer_id"]:
        return
    amount = reservation.amount_minor
    if reservation.currency == data.get("currency") and 0 < data.get("amount_minor", 0) < amount:
        amount = int(data["amount_minor"])
    await reservations.convert_reservation(
        session=session, clock=app.state.clock, default_currency=app.state.settings.default_currency,
        reservation_id=reservation.id,
        data=ReservationConvert(invoice_id=data.get("invoice_id"), amount_minor=amount))


async def save_figures(session: AsyncSession, app: FastAPI, event: Event,
                       figures: Figures | None) -> None:
    """Overwrite the snapshot with ledger's figures; on `invoice.issued` convert the order's
    reservation first, in the same transaction."""
    if figures is None:
        return
    data = event.data
    invoiced_order = data.get("order_id") if event.type == "invoice.issued" else None
    if invoiced_order:
        await _convert_for_invoice(session, app, data)
    r = figures.receivables
    await repository.save_snapshot(session, {
        "customer_id": figures.customer_id, "currency": figures.currency,
        "open_receivables_minor": r.open_receivables_minor,
        "overdue_minor": r.overdue_minor, "max_days_overdue": r.max_days_overdue,
        "as_of": app.state.clock.today(), "refreshed_at": figures.asked_at,
        "last_event_id": str(event.id), "last_event_type": event.type})
    if invoiced_order:
        await repository.mark_receivable_seen(session, str(invoiced_order), figures.customer_id,
                                              app.state.clock.now())


# Handler of every event in RECEIVABLE_EVENTS: ask ledger, then refresh the snapshot.
refresh_receivables: TwoPhase[Figures | None] = TwoPhase(ask_ledger, save_figures)


def handlers() -> dict[str, Handler]:
    """What credit does on each receivable event (the automatic holds add theirs after, holds.py)."""
    return {t: refresh_receivables for t in RECEIVABLE_EVENTS}
