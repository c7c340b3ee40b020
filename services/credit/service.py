"""Use cases of the credit service: lock or compare-and-set, check, change, outbox event."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.credit import profiles, repository, scorecard
from services.credit.clients import LedgerClient
from services.credit.errors import (
    ConvertAmountTooHigh,
    CreditIncreaseRefused,
    CurrencyMismatch,
    CustomerNotFound,
    EvaluationAlreadyApplied,
    EvaluationNotFound,
    GuaranteeNotFound,
    InvalidDate,
    NotYourCustomer,
    ReservationAmountConflict,
    ReservationNotFound,
    ReservationOtherCustomer,
    ReservationTransitionRefused,
)
from services.credit.models import (
    Asset,
    CreditInquiry,
    CreditProfile,
    Customer,
    Evaluation,
    Guarantee,
    GuaranteeStatus,
    Reservation,
    ReservationStatus,
    counters,
)
from services.credit.rules import decide
from services.credit.schemas import (
    AssetCreate,
    CustomerCreate,
    CustomerUpdate,
    EvaluationCreate,
    GuaranteeCreate,
    InquiryCreate,
    ReservationConvert,
    ReservationCreate,
)
from shared.auth import Principal
from shared.clock import Clock
from shared.errors import VersionConflict
from shared.events import new_event
from shared.money import format_money
from shared.numbering import next_number
from shared.outbox import Outbox


def _customer_event(clock: Clock, type_: str, customer: Customer, **extra: Any):
    return new_event(clock, type=type_, source="credit", subject=customer.id, data={
        "customer_id": customer.id, "number": customer.number, "name": customer.name,
        "salesperson_id": customer.salesperson_id, **extra})


async def get_visible(session: AsyncSession, principal: Principal, customer_id: str) -> Customer:
    """The customer, or 404 when it does not exist or belongs to another salesperson."""
    customer = await repository.get_customer(session, customer_id)
    if customer is None or not principal.can_see(customer.salesperson_id):
        raise CustomerNotFound(customer_id)
    return customer


async def create_customer(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                          principal: Principal, data: CustomerCreate) -> Customer:
    allowed, salesperson_id = principal.salesperson_scope(data.salesperson_id)
    if not allowed:
        raise NotYourCustomer(principal.restricted_to_salesperson)
    now = clock.now()
    customer = Customer(
        number=await next_number(session, counters, "customer", "CUS"),
        name=data.name, registration_no=data.registration_no, salesperson_id=salesperson_id,
        address=data.address, contacts=[c.model_dump(mode="json") for c in data.contacts],
        bank_accounts=[b.model_dump(mode="json") for b in data.bank_accounts],
        created_at=now, updated_at=now)
    session.add(customer)
    await session.flush()
    await outbox.enqueue(session, _customer_event(clock, "customer.created", customer))
    return customer


async def update_customer(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                          principal: Principal, customer: Customer, data: CustomerUpdate) -> Customer:
    changes = data.model_dump(mode="json", exclude_unset=True)
    own = principal.restricted_to_salesperson
    if own is not None and changes.get("salesperson_id", own) != own:
        raise NotYourCustomer(own)
    version = customer.version
    if not changes:
        return customer
    now: datetime = clock.now()
    if not await repository.bump_version(session, customer.id, version,
                                         {**changes, "updated_at": now}):
        raise VersionConflict("The customer was changed by another request; fetch it again.")
    await session.refresh(customer)
    await outbox.enqueue(session, _customer_event(clock, "customer.updated", customer,
                                                  changed=sorted(changes)))
    return customer


# ---------------------------------------------------------------- guarantees, inquiries, assets


def guarantee_status(guarantee: Guarantee, today: date) -> str:
    if guarantee.status == GuaranteeStatus.active and guarantee.expires_on < today:
        return GuaranteeStatus.expired
    return guarantee.status


async def add_guarantee(*, session: AsyncSession, clock: Clock, default_currency: str,
                        principal: Principal, customer: Customer, data: GuaranteeCreate) -> Guarantee:
    """Register a guarantee; it counts toward available credit until it expires or is released."""
    profile = await profiles.lock_profile(session, clock, default_currency, customer.id)
    if data.currency != profile.currency:
        raise CurrencyMismatch(data.currency, profile.currency, "the guarantee")
    if data.expires_on < clock.today():
        raise InvalidDate("expires_on", "is in the past: the guarantee has already expired")
    guarantee = Guarantee(customer_id=customer.id, kind=data.kind, amount_minor=data.amount_minor,
                          currency=data.currency, issuer=data.issuer, expires_on=data.expires_on,
                          status=GuaranteeStatus.active, created_by=principal.name,
                          created_at=clock.now())
    session.add(guarantee)
    await session.flush()
    return guarantee


async def release_guarantee(*, session: AsyncSession, clock: Clock, principal: Principal,
                            customer: Customer, guarantee_id: str) -> Guarantee:
    """Return a guarantee to its issuer: it stops counting at once. Idempotent."""
    guarantee = await repository.get_guarantee(session, guarantee_id)
    if guarantee is None or guarantee.customer_id != customer.id:
        raise GuaranteeNotFound(guarantee_id)
    if guarantee.status != GuaranteeStatus.released:
        guarantee.status = GuaranteeStatus.released
        guarantee.released_by, guarantee.released_at = principal.name, clock.now()
        await session.flush()
    return guarantee


async def add_inquiry(*, session: AsyncSession, clock: Clock, principal: Principal,
                      customer: Customer, data: InquiryCreate) -> CreditInquiry:
    """Record what an external enterprise credit system reported about the customer."""
    if data.inquired_on > clock.today():
        raise InvalidDate("inquired_on", "is in the future")
    inquiry = CreditInquiry(customer_id=customer.id, **data.model_dump(),
                            created_by=principal.name, created_at=clock.now())
    session.add(inquiry)
    await session.flush()
    return inquiry


async def add_asset(*, session: AsyncSession, clock: Clock, principal: Principal,
                    customer: Customer, data: AssetCreate) -> Asset:
    """Record an asset of the customer, and whether it is mortgaged or pledged."""
    asset = Asset(customer_id=customer.id, **data.model_dump(), created_by=principal.name,
                  created_at=clock.now())
    session.add(asset)
    await session.flush()
    return asset


# ---------------------------------------------------------------- reservations


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


# ---------------------------------------------------------------- evaluations


async def evaluate(*, session: AsyncSession, clock: Clock, principal: Principal, customer: Customer,
                   data: EvaluationCreate, ledger: LedgerClient) -> Evaluation:
    """Score the customer from the financials, the inquiry record, assets and payment history.

    Ledger is asked before the session's first statement (`customer` must come from a read
    session): on SQLite that statement takes the write lock, which must not be held across a
    call to another service (DESIGN.md §9).
    """
    fin = data.financials
    answer = await ledger.payment_history(customer.id, fin.currency)
    financials = scorecard.Financials(**fin.model_dump())
    if data.inquiry is not None:
        inquiry: scorecard.InquiryRecord | None = scorecard.InquiryRecord(
            **data.inquiry.model_dump(), source="given with the evaluation")
    else:
        on_file = await repository.latest_inquiry(session, customer.id)
        inquiry = None if on_file is None else scorecard.InquiryRecord(
            defaults_count=on_file.defaults_count, lawsuits_count=on_file.lawsuits_count,
            rating=on_file.rating, source=f"{on_file.source} {on_file.reference}, "
                                          f"{on_file.inquired_on.isoformat()}")
    total, pledged, count = await repository.asset_totals(session, customer.id, fin.currency)
    assets = scorecard.AssetFacts(total, pledged, count)
    card = scorecard.evaluate(financials, inquiry, assets, answer.history,
                              history_unavailable_because=answer.unavailable_because)
    evaluation = Evaluation(
        customer_id=customer.id,
        inputs={"financials": fin.model_dump(mode="json"),
                "inquiry": None if inquiry is None else asdict(inquiry),
                "assets": asdict(assets),
                "payment_history": None if answer.history is None else asdict(answer.history),
                "payment_history_note": answer.unavailable_because or None,
                "limit_basis": card.limit_basis},
        factors=card.factors_json(), score=card.score, grade=card.grade, currency=card.currency,
        recommended_limit_minor=card.recommended_limit_minor,
        recommended_terms_days=card.recommended_terms_days,
        recommended_policy=card.recommended_policy, created_by=principal.name,
        created_at=clock.now())
    session.add(evaluation)
    await session.flush()
    return evaluation


async def get_evaluation(session: AsyncSession, customer: Customer, evaluation_id: str,
                         *, for_update: bool = False) -> Evaluation:
    evaluation = await repository.get_evaluation(session, evaluation_id, for_update=for_update)
    if evaluation is None or evaluation.customer_id != customer.id:
        raise EvaluationNotFound(evaluation_id)
    return evaluation


async def apply_evaluation(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                           default_currency: str, principal: Principal, customer: Customer,
                           evaluation_id: str) -> tuple[Evaluation, CreditProfile]:
    """Make an evaluation the profile: limit, currency, terms, grade and policy; applied once."""
    await get_evaluation(session, customer, evaluation_id)
    profile = await profiles.lock_profile(session, clock, default_currency, customer.id)
    evaluation = await get_evaluation(session, customer, evaluation_id, for_update=True)
    if evaluation.applied_at is not None:
        raise EvaluationAlreadyApplied(evaluation.id, evaluation.applied_at.isoformat())
    profile = await profiles.change_terms(
        session, outbox, clock, principal, profile, {
            "limit_minor": evaluation.recommended_limit_minor, "currency": evaluation.currency,
            "terms_days": evaluation.recommended_terms_days, "grade": evaluation.grade,
            "policy": evaluation.recommended_policy, "evaluation_id": evaluation.id},
        f"evaluation {evaluation.id} applied: score {evaluation.score}, grade {evaluation.grade}",
        evaluation_id=evaluation.id)
    evaluation.applied_by, evaluation.applied_at = principal.name, clock.now()
    await session.flush()
    return evaluation, profile
