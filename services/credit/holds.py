"""Credit holds: manual ones a credit manager places, automatic ones from overdue invoices
(DESIGN.md §5, "Holds").

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

No lock across the network (DESIGN.md §9): the handlers are two-phase
(shared.subscriptions.TwoPhase). Each first reads what it needs through a read session and
asks ledger, with no write transaction open; then, in the inbox's write transaction, it
places or releases under the customer's profile lock. The periodic recheck does the same,
one customer's releases per transaction. What ledger said may be a moment old when it is
written: placing re-checks that no hold for the invoice is active yet, releasing that the
hold is still active, and a hold placed for an invoice paid in between is released by the
recheck (`invoice.paid`'s, or the periodic one).
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.credit import profiles, receivables, repository
from services.credit.clients import LedgerClient
from services.credit.errors import HoldNotFound
from services.credit.models import CreditHold, CreditProfile, CreditStatus, Customer, HoldKind, HoldStatus
from shared.auth import Principal
from shared.clock import Clock
from shared.errors import DependencyUnavailable
from shared.events import Event, new_event
from shared.observability import work_request_id
from shared.outbox import Outbox
from shared.subscriptions import Handler, TwoPhase

log = logging.getLogger("o2c.credit.holds")

# Who places and releases automatic holds (`placed_by`, `released_by`, the events' `by`).
OVERDUE_RULE = "credit:overdue-rule"


# ---------------------------------------------------------------- placing and releasing


def _hold_event(clock: Clock, type_: str, hold: CreditHold, by: str, **extra: Any):
    automatic = hold.kind == HoldKind.automatic
    return new_event(clock, type=type_, source="credit", subject=hold.customer_id, data={
        "hold_id": hold.id, "customer_id": hold.customer_id, "kind": hold.kind,
        "reason": hold.reason, "source_ref": hold.source_ref,
        "invoice_id": hold.source_ref if automatic else None, "by": by, **extra})


async def _place_hold(session: AsyncSession, outbox: Outbox, clock: Clock, profile: CreditProfile,
                      hold: CreditHold, **extra: Any) -> CreditHold:
    """Store `hold` under the locked profile, put the customer on hold, emit `credit.hold_placed`."""
    session.add(hold)
    if profile.status == CreditStatus.active:
        profile.status = CreditStatus.on_hold
    profile.version += 1
    profile.updated_at = hold.placed_at
    await session.flush()
    await outbox.enqueue(session, _hold_event(clock, "credit.hold_placed", hold, hold.placed_by,
                                              **extra))
    return hold


async def _release_hold(session: AsyncSession, outbox: Outbox, clock: Clock, profile: CreditProfile,
                        hold: CreditHold, by: str, **extra: Any) -> CreditHold:
    """Release the locked, active `hold`; the customer is active again when no hold remains."""
    now = clock.now()
    hold.status, hold.released_by, hold.released_at = HoldStatus.released, by, now
    await session.flush()
    if profile.status == CreditStatus.on_hold and not await repository.active_holds(
            session, profile.customer_id):
        profile.status = CreditStatus.active
    profile.version += 1
    profile.updated_at = now
    await session.flush()
    await outbox.enqueue(session, _hold_event(clock, "credit.hold_released", hold, by, **extra))
    return hold


async def place_hold(*, session: AsyncSession, outbox: Outbox, clock: Clock, default_currency: str,
                     principal: Principal, customer: Customer, reason: str) -> CreditHold:
    """Put the customer on a manual credit hold: every new reservation is rejected until released."""
    profile = await profiles.lock_profile(session, clock, default_currency, customer.id)
    hold = CreditHold(customer_id=customer.id, kind=HoldKind.manual, reason=reason,
                      status=HoldStatus.active, placed_by=principal.name, placed_at=clock.now())
    return await _place_hold(session, outbox, clock, profile, hold)


async def release_hold(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                       default_currency: str, principal: Principal, customer: Customer,
                       hold_id: str) -> CreditHold:
    """Release a hold; the customer is active again when no active hold remains. Idempotent."""
    hold = await repository.get_hold(session, hold_id)
    if hold is None or hold.customer_id != customer.id:
        raise HoldNotFound(hold_id)
    profile = await profiles.lock_profile(session, clock, default_currency, customer.id)
    hold = await repository.get_hold(session, hold_id, for_update=True)
    assert hold is not None
    if hold.status == HoldStatus.released:
        return hold
    return await _release_hold(session, outbox, clock, profile, hold, principal.name)


def overdue_reason(invoice_number: str, days_overdue: int) -> str:
    """"invoice INV-000045 31 days overdue": what a refused reservation tells the salesperson."""
    return f"invoice {invoice_number} {days_overdue} day{'' if days_overdue == 1 else 's'} overdue"


async def place_automatic_hold(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                               default_currency: str, customer_id: str, invoice_id: str,
                               invoice_number: str, days_overdue: int, by: str
                               ) -> tuple[CreditHold, bool]:
    """Hold the customer for an overdue invoice; returns (hold, placed).

    One active automatic hold per invoice: while one is active, a redelivery or a higher level
    of the same invoice returns it unchanged (its reason keeps the days it was placed at).
    """
    profile = await profiles.lock_profile(session, clock, default_currency, customer_id)
    existing = await repository.active_automatic_hold(session, customer_id, invoice_id)
    if existing is not None:
        return existing, False
    hold = CreditHold(customer_id=customer_id, kind=HoldKind.automatic,
                      reason=overdue_reason(invoice_number, days_overdue), source_ref=invoice_id,
                      status=HoldStatus.active, placed_by=by, placed_at=clock.now())
    return await _place_hold(session, outbox, clock, profile, hold, invoice_number=invoice_number,
                             days_overdue=days_overdue), True


async def release_automatic_hold(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                                 default_currency: str, customer_id: str, hold_id: str, by: str,
                                 because: str) -> CreditHold | None:
    """Release the customer's automatic hold whose invoice is settled; None if no longer active."""
    profile = await profiles.lock_profile(session, clock, default_currency, customer_id)
    hold = await repository.get_hold(session, hold_id, for_update=True)
    if hold is None or hold.customer_id != customer_id or hold.kind != HoldKind.automatic or \
            hold.status != HoldStatus.active:
        return None
    return await _release_hold(session, outbox, clock, profile, hold, by, released_because=because)


# ---------------------------------------------------------------- automatic holds from overdue invoices


def _days(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True)
class WantedHold:
    """An automatic hold to place: the customer, the overdue invoice and its days overdue."""

    customer_id: str
    invoice_id: str
    invoice_number: str
    days_overdue: int


async def _is_customer(app: FastAPI, customer_id: str) -> bool:
    async with app.state.db.session(read_only=True) as session:
        return await repository.get_customer(session, customer_id) is not None


async def overdue_hold(app: FastAPI, event: Event) -> WantedHold | None:
    """The automatic hold `invoice.overdue` calls for, asking ledger first; None if it calls
    for none. Reads and asks only: no write transaction is open."""
    data = event.data
    invoice_id, customer_id = data.get("invoice_id"), data.get("customer_id")
    days = _days(data.get("days_overdue"))
    if not invoice_id or not customer_id or days < app.state.settings.credit_hold_days_overdue:
        return None
    invoice_id, customer_id = str(invoice_id), str(customer_id)
    if not await _is_customer(app, customer_id):
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
    return WantedHold(customer_id, invoice_id, number, days)


async def place(session: AsyncSession, app: FastAPI, wanted: WantedHold,
                *, why: str = "") -> CreditHold:
    """Place the wanted automatic hold (or find the one already active for its invoice)."""
    settings = app.state.settings
    hold, placed = await place_automatic_hold(
        session=session, outbox=app.state.outbox, clock=app.state.clock,
        default_currency=settings.default_currency, customer_id=wanted.customer_id,
        invoice_id=wanted.invoice_id, invoice_number=wanted.invoice_number,
        days_overdue=wanted.days_overdue, by=OVERDUE_RULE)
    if placed:
        log.info("customer %s on credit hold%s: %s", wanted.customer_id, why, hold.reason)
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
        hold = await release_automatic_hold(
            session=session, outbox=app.state.outbox, clock=app.state.clock,
            default_currency=app.state.settings.default_currency, customer_id=item.customer_id,
            hold_id=item.hold_id, by=OVERDUE_RULE, because=item.because)
        if hold is not None:
            released += 1
            log.info("customer %s: automatic hold released, %s", hold.customer_id, item.because)
    return released


async def settled_holds(app: FastAPI, customer_id: str) -> list[Settled]:
    """The customer's active automatic holds whose invoices ledger shows settled, read and
    asked with no write transaction open.

    Raises `DependencyUnavailable` (so nothing is released) when ledger does not answer for any.
    """
    async with app.state.db.session(read_only=True) as session:
        holds = await repository.active_automatic_holds(session, [customer_id])
    return await _settled(app, holds) if holds else []


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
# Each is a TwoPhase: `prepare` reads and asks ledger, `apply` writes what it found.


def _customer(event: Event) -> str | None:
    customer_id = event.data.get("customer_id")
    return str(customer_id) if customer_id else None


@dataclass(frozen=True)
class Overdue:
    """What `invoice.overdue` found: the hold to place, ledger's figures for the snapshot."""

    hold: WantedHold | None
    figures: receivables.Figures | None


async def _ask_overdue(app: FastAPI, event: Event) -> Overdue:
    hold = await overdue_hold(app, event)
    try:
        figures = await receivables.ask_ledger(app, event)
    except DependencyUnavailable as exc:
        log.warning("receivables of %s not refreshed on %s: %s", _customer(event), event.id,
                    exc.detail)
        figures = None
    return Overdue(hold, figures)


async def _apply_overdue(session: AsyncSession, app: FastAPI, event: Event,
                         found: Overdue) -> None:
    if found.hold is not None:
        await place(session, app, found.hold)
    await receivables.save_figures(session, app, event, found.figures)


# `invoice.overdue`: hold the customer if the invoice is overdue long enough; refresh the
# overdue figures.
on_invoice_overdue: TwoPhase[Overdue] = TwoPhase(_ask_overdue, _apply_overdue)


async def _ask_settled(app: FastAPI, event: Event) -> list[Settled]:
    customer_id = _customer(event)
    return await settled_holds(app, customer_id) if customer_id else []


async def _apply_settled(session: AsyncSession, app: FastAPI, event: Event,
                         settled: list[Settled]) -> None:
    await _release(session, app, settled)


# `invoice.paid`, `payment.received`, `credit_note.issued`, `writeoff.approved`: release the
# automatic holds whose invoices are settled now (after receivables refreshed the snapshot).
# A hold placed after the prepare read the holds waits for the next event or recheck.
on_invoice_settling: TwoPhase[list[Settled]] = TwoPhase(_ask_settled, _apply_settled)


async def _ask_reversed(app: FastAPI, event: Event) -> list[WantedHold]:
    customer_id = _customer(event)
    restored = event.data.get("restored") or []
    if not customer_id or not restored or not await _is_customer(app, customer_id):
        return []
    ledger, settings = LedgerClient(app.state.http), app.state.settings
    wanted = []
    for item in restored:
        invoice = await ledger.invoice(str(item.get("invoice_id") or ""))
        if invoice is None or invoice.customer_id != customer_id or invoice.settled or \
                invoice.disputed or invoice.days_overdue < settings.credit_hold_days_overdue:
            continue
        wanted.append(WantedHold(customer_id, invoice.id, invoice.number, invoice.days_overdue))
    return wanted


async def _apply_reversed(session: AsyncSession, app: FastAPI, event: Event,
                          wanted: list[WantedHold]) -> None:
    for hold in wanted:
        await place(session, app, hold, why=" again (payment reversed)")


# `payment.reversed`: hold again for each invoice it made owed again that ledger shows overdue
# by the setting or more (its `invoice.overdue` was already sent).
on_payment_reversed: TwoPhase[list[WantedHold]] = TwoPhase(_ask_reversed, _apply_reversed)


def handlers() -> dict[str, Handler]:
    """Ledger's events that place or release automatic holds; they run after
    receivables.handlers() for the same event (shared.subscriptions.handlers_of)."""
    return {"invoice.overdue": on_invoice_overdue, "invoice.paid": on_invoice_settling,
            "payment.received": on_invoice_settling, "credit_note.issued": on_invoice_settling,
            "writeoff.approved": on_invoice_settling, "payment.reversed": on_payment_reversed}
