"""Use cases on customers and what is on file about them (guarantees, credit inquiries, assets):
lock or compare-and-set, check, change, outbox event. The profile, holds, reservations and
evaluations have their own modules (profiles.py, holds.py, reservations.py, evaluations.py)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.credit import profiles, repository
from services.credit.errors import (
    CurrencyMismatch,
    CustomerNotFound,
    GuaranteeNotFound,
    InvalidDate,
    NotYourCustomer,
)
from services.credit.models import (
    Asset,
    CreditInquiry,
    Customer,
    Guarantee,
    GuaranteeStatus,
    counters,
)
from services.credit.schemas import (
    AssetCreate,
    CustomerCreate,
    CustomerUpdate,
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
