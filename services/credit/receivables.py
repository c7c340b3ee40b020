"""Credit's exposure follows ledger: the events credit subscribes to and what it does on each.

Ledger's events say *that* a customer's receivables changed; ledger's
`GET /v1/customers/{id}/exposure?currency=` says *what they are*. On every event below credit
asks ledger for the customer's figures in the event's currency and overwrites its
receivables snapshot with them, so the order events arrive in, a redelivery or a missed
event do not matter: the next refresh is right again. On `invoice.issued` the order's
active reservation is converted in the same transaction, so reserved drops as open
receivables rise. If ledger does not answer, the handler raises, the transaction (inbox
row included) rolls back, the inbox answers 503 and notifier delivers the event again later.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.credit import repository, service
from services.credit.clients import LedgerClient
from services.credit.models import ReservationStatus
from services.credit.schemas import ReservationConvert
from shared.events import Event
from shared.subscriptions import Handler

log = logging.getLogger("o2c.credit.receivables")

# Every ledger event that changes a customer's open or overdue receivables. `invoice.paid`
# always comes with the `payment.received` or `unapplied_cash.applied` that paid it.
RECEIVABLE_EVENTS = ("invoice.issued", "payment.received", "credit_note.issued",
                     "debit_note.issued", "payment.reversed", "unapplied_cash.applied",
                     "writeoff.approved")


async def _convert_for_invoice(session: AsyncSession, app: FastAPI, data: dict[str, Any]) -> None:
    """The order was invoiced: its active reservation becomes open receivable (if it has one)."""
    reservation = await repository.live_reservation_for_order(session, str(data["order_id"]))
    if reservation is None or reservation.status != ReservationStatus.active or \
            reservation.customer_id != data["customer_id"]:
        return
    amount = reservation.amount_minor
    if reservation.currency == data.get("currency") and 0 < data.get("amount_minor", 0) < amount:
        amount = int(data["amount_minor"])
    await service.convert_reservation(
        session=session, clock=app.state.clock, default_currency=app.state.settings.default_currency,
        reservation_id=reservation.id,
        data=ReservationConvert(invoice_id=data.get("invoice_id"), amount_minor=amount))


async def refresh_receivables(session: AsyncSession, app: FastAPI, event: Event) -> None:
    """Handler of every event in RECEIVABLE_EVENTS: refresh the snapshot from ledger."""
    data = event.data
    customer_id, currency = data.get("customer_id"), data.get("currency")
    if not customer_id or not currency:
        log.warning("%s %s names no customer or currency; ignored", event.type, event.id)
        return
    # Ledger is asked first: its answer includes whatever the event reports (ledger commits
    # before it publishes), and a failure here leaves nothing changed.
    figures = await LedgerClient(app.state.http).receivables(customer_id, currency)
    invoiced_order = data.get("order_id") if event.type == "invoice.issued" else None
    if invoiced_order:
        await _convert_for_invoice(session, app, data)
    now = app.state.clock.now()
    await repository.save_snapshot(session, {
        "customer_id": customer_id, "currency": currency,
        "open_receivables_minor": figures.open_receivables_minor,
        "overdue_minor": figures.overdue_minor, "max_days_overdue": figures.max_days_overdue,
        "as_of": app.state.clock.today(), "refreshed_at": now,
        "last_event_id": str(event.id), "last_event_type": event.type})
    if invoiced_order:
        await repository.mark_receivable_seen(session, str(invoiced_order), customer_id, now)


def handlers() -> dict[str, Handler]:
    """What credit does on each receivable event (the automatic holds add theirs after, holds.py)."""
    return {t: refresh_receivables for t in RECEIVABLE_EVENTS}
