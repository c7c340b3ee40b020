"""Use cases of the credit service: lock or compare-and-set, check, change, outbox event."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.credit import profiles, repository, scorecard
from services.credit.clients import LedgerClient
from services.credit.errors import (
    CurrencyMismatch,
    CustomerNotFound,
    EvaluationAlreadyApplied,
    EvaluationNotFound,
    GuaranteeNotFound,
    InvalidDate,
    NotYourCustomer,
)
from services.credit.models import (
    Asset,
    CreditInquiry,
    CreditProfile,
    Customer,
    Evaluation,
    Guarantee,
    GuaranteeStatus,
    counters,
)
from services.credit.schemas import (
    AssetCreate,
    CustomerCreate,
    CustomerUpdate,
    EvaluationCreate,
    GuaranteeCreate,
    InquiryCreate,
)
from shared.auth import Principal
from shared.clock import Clock
from shared.errors import VersionConflict
from shared.events import new_event
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
