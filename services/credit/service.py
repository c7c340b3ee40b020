"""Use cases of the credit service: lock or compare-and-set, check, change, outbox event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.credit import repository
from services.credit.errors import CustomerNotFound, NotYourCustomer
from services.credit.models import Customer, counters
from services.credit.schemas import CustomerCreate, CustomerUpdate
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
    own = principal.restricted_to_salesperson
    salesperson_id = data.salesperson_id
    if own is not None:
        if salesperson_id not in (None, own):
            raise NotYourCustomer(own)
        salesperson_id = own
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
