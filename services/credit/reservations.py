"""Reservations: the credit an order holds, decided under the customer's profile lock; changed,
released when the order is revised or cancelled, converted when it is invoiced."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.credit import profiles, repository
from services.credit.errors import (
    ConvertAmountTooHigh,
    CreditIncreaseRefused,
    CurrencyMismatch,
    CustomerNotFound,
    ReservationAmountConflict,
    ReservationNotFound,
    ReservationOtherCustomer,
    ReservationTransitionRefused,
)
from services.credit.models import CreditProfile, Reservation, ReservationStatus
from services.credit.rules import decide
from services.credit.schemas import ReservationConvert, ReservationCreate
from shared.auth import Principal
from shared.clock import Clock
from shared.events import new_event
from shared.money import format_money
from shared.outbox import Outbox


def _decided_event(clock: Clock, reservation: Reservation, **extra: Any):
    return new_event(clock, type="credit.reservation_decided", source="credit",
                     subject=reservation.id, data={
                         "reservation_id": reservation.id, "order_id": reservation.order_id,
                         "customer_id": reservation.customer_id,
                         "amount_minor": reservation.amount_minor,
                         "currency": reservation.currency, "decision": reservation.decision,
                         "status": reservation.status, "reasons": list(reservation.reasons),
                         **extra})


def _same_order(existing: Reservation, data: ReservationCreate) -> Reservation:
    if existing.customer_id != data.customer_id:
        raise ReservationOtherCustomer(existing.order_id, existing.id, existing.customer_id)
    if existing.amount_minor != data.amount_minor:
        raise ReservationAmountConflict(existing.order_id, existing.id, existing.amount_minor,
                                        existing.status)
    return existing


async def reserve(*, session: AsyncSession, outbox: Outbox, clock: Clock, default_currency: str,
                  principal: Principal, data: ReservationCreate) -> tuple[Reservation, bool]:
    """Decide on credit for an order; returns (reservation, created).

    Idempotent per order: while the order has an active (or converted) reservation, the same
    amount gives it back and another amount is a conflict. Declined and released ones do not
    count, so asking again after a guarantee or a limit change makes a new decision. The
    customer's profile row is locked before available credit is computed, so two orders racing
    for the last credit never both win.
    """
    customer = await repository.get_customer(session, data.customer_id)
    if customer is None:
        raise CustomerNotFound(data.customer_id)
    profile = await profiles.lock_profile(session, clock, default_currency, customer.id)
    currency = data.currency or profile.currency
    if currency != profile.currency:
        raise CurrencyMismatch(currency, profile.currency)
    existing = await repository.live_reservation_for_order(session, data.order_id)
    if existing is not None:
        return _same_order(existing, data), False
    verdict = decide(await profiles.facts(session, profile, clock.today()), data.amount_minor)
    now = clock.now()
    reservation = Reservation(
        customer_id=customer.id, order_id=data.order_id, amount_minor=data.amount_minor,
        currency=currency, decision=verdict.decision,
        status=ReservationStatus.active if verdict.reserved else ReservationStatus.declined,
        reasons=verdict.reasons, decided_at=now, decided_by=principal.name, created_at=now,
        updated_at=now)
    try:
        async with session.begin_nested():
            session.add(reservation)
            await session.flush()
    except IntegrityError:  # the same order reserved at once under another customer's lock
        existing = await repository.live_reservation_for_order(session, data.order_id)
        if existing is None:
            raise
        return _same_order(existing, data), False
    await outbox.enqueue(session, _decided_event(clock, reservation))
    return reservation, True


async def get_reservation(session: AsyncSession, reservation_id: str) -> Reservation:
    reservation = await repository.get_reservation(session, reservation_id)
    if reservation is None:
        raise ReservationNotFound(reservation_id)
    return reservation


async def _lock_reservation(session: AsyncSession, clock: Clock, default_currency: str,
                            reservation_id: str) -> tuple[Reservation, CreditProfile]:
    """The reservation and its customer's profile, locked in the same order as `reserve`."""
    found = await get_reservation(session, reservation_id)
    profile = await profiles.lock_profile(session, clock, default_currency, found.customer_id)
    reservation = await repository.get_reservation(session, reservation_id, for_update=True)
    assert reservation is not None
    return reservation, profile


async def change_reservation(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                             default_currency: str, principal: Principal, reservation_id: str,
                             amount_minor: int, check_version: profiles.VersionCheck) -> Reservation:
    """Change an active reservation's amount; an increase must fit in available credit."""
    reservation, profile = await _lock_reservation(session, clock, default_currency, reservation_id)
    check_version(reservation.version)
    if reservation.status != ReservationStatus.active:
        raise ReservationTransitionRefused(reservation.id, reservation.status, "change")
    old = reservation.amount_minor
    delta = amount_minor - old
    if delta == 0:
        return reservation
    cur = reservation.currency
    if delta > 0:
        verdict = decide(await profiles.facts(session, profile, clock.today()), delta)
        what = (f"increase of {format_money(delta, cur)} (from {format_money(old, cur)} to "
                f"{format_money(amount_minor, cur)})")
        if not verdict.reserved:
            raise CreditIncreaseRefused([f"{what} refused: {verdict.reasons[0]}",
                                         *verdict.reasons[1:]])
        reasons = [f"{what}: {verdict.reasons[0]}"]
    else:
        reasons = [f"reduced from {format_money(old, cur)} to {format_money(amount_minor, cur)}; "
                   f"{format_money(-delta, cur)} released"]
    now = clock.now()
    reservation.amount_minor, reservation.reasons = amount_minor, reasons
    reservation.decided_at, reservation.decided_by = now, principal.name
    reservation.version += 1
    reservation.updated_at = now
    await session.flush()
    await outbox.enqueue(session, _decided_event(clock, reservation, previous_amount_minor=old))
    return reservation


async def release_reservation(*, session: AsyncSession, clock: Clock, default_currency: str,
                              reservation_id: str) -> Reservation:
    """Give the credit back (order revised or cancelled); releasing twice is fine."""
    reservation, _ = await _lock_reservation(session, clock, default_currency, reservation_id)
    if reservation.status in (ReservationStatus.released, ReservationStatus.declined):
        return reservation
    if reservation.status != ReservationStatus.active:
        raise ReservationTransitionRefused(reservation.id, reservation.status, "release")
    now = clock.now()
    reservation.status, reservation.released_at = ReservationStatus.released, now
    reservation.version += 1
    reservation.updated_at = now
    await session.flush()
    return reservation


async def convert_reservation(*, session: AsyncSession, clock: Clock, default_currency: str,
                              reservation_id: str, data: ReservationConvert) -> Reservation:
    """The order was invoiced: the reservation becomes open receivable exposure. Idempotent."""
    reservation, _ = await _lock_reservation(session, clock, default_currency, reservation_id)
    if reservation.status == ReservationStatus.converted:
        return reservation
    if reservation.status != ReservationStatus.active:
        raise ReservationTransitionRefused(reservation.id, reservation.status, "convert")
    amount = data.amount_minor or reservation.amount_minor
    if amount > reservation.amount_minor:
        raise ConvertAmountTooHigh(amount, reservation.amount_minor)
    now = clock.now()
    reservation.status, reservation.converted_at = ReservationStatus.converted, now
    reservation.amount_minor, reservation.invoice_id = amount, data.invoice_id
    reservation.version += 1
    reservation.updated_at = now
    await session.flush()
    return reservation
