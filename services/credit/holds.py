"""Automatic credit holds from overdue invoices (DESIGN.md §5, "Holds").

Ledger's overdue scan emits `invoice.overdue` once per threshold an unpaid invoice crosses.
At `credit_hold_days_overdue` (`O2C_CREDIT_HOLD_DAYS_OVERDUE`, 30) days overdue or more,
credit puts the customer on an automatic hold *for that invoice*: one active automatic hold per
overdue invoice (its `source_ref` is the invoice id; a unique partial index backs the rule), so
a redelivery or the next level of the same invoice changes nothing, and a customer with two
overdue invoices has two holds, each naming its invoice in the reason a refused reservation
gives ("customer on credit hold: invoice INV-000045 31 days overdue"). Before placing, credit
asks ledger whether the invoice is still outstanding, so an `invoice.overdue` delivered after
the invoice was paid holds nobody; if ledger does not answer, the hold is placed anyway (fail
closed) and the recheck releases it if it was not due.

Release: an automatic hold is released (`credit.hold_released`, with `released_because`) once
ledger shows its invoice settled: paid, credited to zero or written off (or unknown to ledger).
A customer's automatic holds are rechecked on `invoice.paid`, `payment.received`,
`credit_note.issued` and `writeoff.approved`, and every held customer by a periodic worker, so a
lost event never leaves a customer held for ever. Every invoice of the customer is asked about
before any hold is released: when ledger does not answer, nothing is released (the event is
delivered again later; the worker tries again on its next pass). Manual holds are never
released here; the customer is `active` again only when no hold of any kind is active. A credit
manager may release an automatic hold by hand (`DELETE …/holds/{id}`); the invoice's next
overdue level then holds the customer again.

A reversed payment (`payment.reversed`) that makes an invoice owed again holds the customer
again at once when ledger shows that invoice overdue by the setting or more (and not
disputed): its `invoice.overdue` for that level was sent before it was paid.

`invoice.overdue` also refreshes the receivables snapshot (overdue_minor, max_days_overdue);
when ledger does not answer that refresh is skipped and the next ledger event brings it back.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.credit import receivables, repository, service
from services.credit.clients import LedgerClient
from services.credit.models import CreditHold
from shared.errors import DependencyUnavailable
from shared.events import Event
from shared.observability import work_request_id
from shared.subscriptions import Handler

log = logging.getLogger("o2c.credit.holds")

# Who places and releases automatic holds (`placed_by`, `released_by`, the events' `by`).
OVERDUE_RULE = "credit:overdue-rule"


def _days(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0


async def hold_for_overdue(session: AsyncSession, app: FastAPI, event: Event) -> CreditHold | None:
    """Place the automatic hold `invoice.overdue` calls for, if it calls for one; None if not."""
    data = event.data
    invoice_id, customer_id = data.get("invoice_id"), data.get("customer_id")
    days = _days(data.get("days_overdue"))
    if not invoice_id or not customer_id or days < app.state.settings.credit_hold_days_overdue:
        return None
    invoice_id, customer_id = str(invoice_id), str(customer_id)
    if await repository.get_customer(session, customer_id) is None:
        log.warning("invoice.overdue %s: customer %s is not a credit customer; no hold",
                    event.id, customer_id)
        return None
    number = str(data.get("invoice_number") or data.get("number") or invoice_id)
    try:
        invoice = await LedgerClient(app.state.http).invoice(invoice_id)
    except DependencyUnavailable:
        log.warning("ledger does not answer for invoice %s; holding customer %s anyway "
                    "(the recheck releases the hold if it was not due)", invoice_id, customer_id)
    else:
        if invoice is None or invoice.customer_id != customer_id:
            log.warning("invoice.overdue %s: ledger knows no invoice %s of customer %s; no hold",
                        event.id, invoice_id, customer_id)
            return None
        if invoice.settled:
            log.info("invoice.overdue %s arrived after invoice %s was %s; no hold",
                     event.id, invoice.number, invoice.how_settled)
            return None
        number = invoice.number
    settings = app.state.settings
    hold, placed = await service.place_automatic_hold(
        session=session, outbox=app.state.outbox, clock=app.state.clock,
        default_currency=settings.default_currency, customer_id=customer_id,
        invoice_id=invoice_id, invoice_number=number, days_overdue=days, by=OVERDUE_RULE)
    if placed:
        log.info("customer %s on credit hold: %s", customer_id, hold.reason)
    return hold


@dataclass(frozen=True)
class Settled:
    hold_id: str
    customer_id: str
    because: str


async def _settled(app: FastAPI, holds: list[CreditHold]) -> list[Settled]:
    """The holds whose invoice ledger shows settled; raises if ledger does not answer for any."""
    ledger = LedgerClient(app.state.http)
    settled = []
    for hold in holds:
        if not hold.source_ref:  # every automatic hold names its invoice; nothing to ask
            continue
        invoice = await ledger.invoice(hold.source_ref)
        if invoice is None:
            because = f"ledger knows no invoice {hold.source_ref}"
        elif invoice.settled:
            because = f"invoice {invoice.number} {invoice.how_settled}"
        else:
            continue
        settled.append(Settled(hold.id, hold.customer_id, because))
    return settled


async def _release(session: AsyncSession, app: FastAPI, settled: list[Settled]) -> int:
    released = 0
    for item in settled:
        hold = await service.release_automatic_hold(
            session=session, outbox=app.state.outbox, clock=app.state.clock,
            default_currency=app.state.settings.default_currency, customer_id=item.customer_id,
            hold_id=item.hold_id, by=OVERDUE_RULE, because=item.because)
        if hold is not None:
            released += 1
            log.info("customer %s: automatic hold released, %s", hold.customer_id, item.because)
    return released


async def recheck_customer(session: AsyncSession, app: FastAPI, customer_id: str) -> int:
    """Release the customer's automatic holds whose invoices are settled; how many were released.

    Raises `DependencyUnavailable` (nothing released) when ledger does not answer.
    """
    holds = await repository.active_automatic_holds(session, [customer_id])
    if not holds:
        return 0
    return await _release(session, app, await _settled(app, holds))


async def recheck_all(app: FastAPI, *, page: int = 200, raise_unavailable: bool = False) -> int:
    """One pass of the periodic recheck over every customer with an automatic hold.

    Ledger is asked outside any transaction; each customer's releases are one transaction.
    Stops at the first customer ledger does not answer for (ledger is down: the next pass tries
    again), re-raising with `raise_unavailable`. Returns how many holds were released.
    """
    db = app.state.db
    released, after = 0, None
    with work_request_id():
        while True:
            async with db.session(read_only=True) as session:
                customers = await repository.customers_with_automatic_holds(
                    session, after=after, limit=page)
                held = await repository.active_automatic_holds(session, customers)
            for _, holds in itertools.groupby(held, key=lambda hold: hold.customer_id):
                try:
                    settled = await _settled(app, list(holds))
                except DependencyUnavailable as exc:
                    log.warning("hold recheck stopped after %d release(s), ledger does not "
                                "answer: %s", released, exc.detail)
                    if raise_unavailable:
                        raise
                    return released
                if settled:
                    async with db.session() as session, session.begin():
                        released += await _release(session, app, settled)
            if len(customers) < page:
                return released
            after = customers[-1]


# ---------------------------------------------------------------- event handlers


def _customer(event: Event) -> str | None:
    customer_id = event.data.get("customer_id")
    return str(customer_id) if customer_id else None


async def on_invoice_overdue(session: AsyncSession, app: FastAPI, event: Event) -> None:
    """Hold the customer if the invoice is overdue long enough; refresh the overdue figures."""
    await hold_for_overdue(session, app, event)
    try:
        await receivables.refresh_receivables(session, app, event)
    except DependencyUnavailable as exc:
        log.warning("receivables of %s not refreshed on %s: %s", _customer(event), event.id,
                    exc.detail)


async def on_invoice_settling(session: AsyncSession, app: FastAPI, event: Event) -> None:
    """`invoice.paid`, `payment.received`, `credit_note.issued`, `writeoff.approved`: release the
    automatic holds whose invoices are settled now (after receivables refreshed the snapshot)."""
    customer_id = _customer(event)
    if customer_id:
        await recheck_customer(session, app, customer_id)


async def on_payment_reversed(session: AsyncSession, app: FastAPI, event: Event) -> None:
    """`payment.reversed`: hold again for each invoice it made owed again that ledger shows
    overdue by the setting or more (its `invoice.overdue` was already sent)."""
    customer_id = _customer(event)
    restored = event.data.get("restored") or []
    if not customer_id or not restored or await repository.get_customer(session, customer_id) is None:
        return
    ledger, settings = LedgerClient(app.state.http), app.state.settings
    for item in restored:
        invoice = await ledger.invoice(str(item.get("invoice_id") or ""))
        if invoice is None or invoice.customer_id != customer_id or invoice.settled or \
                invoice.disputed or invoice.days_overdue < settings.credit_hold_days_overdue:
            continue
        hold, placed = await service.place_automatic_hold(
            session=session, outbox=app.state.outbox, clock=app.state.clock,
            default_currency=settings.default_currency, customer_id=customer_id,
            invoice_id=invoice.id, invoice_number=invoice.number,
            days_overdue=invoice.days_overdue, by=OVERDUE_RULE)
        if placed:
            log.info("customer %s on credit hold again (payment reversed): %s", customer_id,
                     hold.reason)


def handlers() -> dict[str, Handler]:
    """Ledger's events that place or release automatic holds; they run after
    receivables.handlers() for the same event (shared.subscriptions.handlers_of)."""
    return {"invoice.overdue": on_invoice_overdue, "invoice.paid": on_invoice_settling,
            "payment.received": on_invoice_settling, "credit_note.issued": on_invoice_settling,
            "writeoff.approved": on_invoice_settling, "payment.reversed": on_payment_reversed}
