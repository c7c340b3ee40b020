"""The credit profile: limit, currency, terms, grade, policy and status, and its exposure.

Every use case that decides on credit or changes a customer's credit state locks the profile
row first (`lock_profile`); the reservation decision reads its facts (`facts`) under that lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.credit import repository
from services.credit.errors import CurrencyChangeRefused
from services.credit.models import (
    CreditHold,
    CreditPolicy,
    CreditProfile,
    CreditStatus,
    Customer,
    ReservationStatus,
)
from services.credit.rules import CreditFacts, Exposure
from services.credit.schemas import CreditLimitUpdate, CreditPolicyUpdate
from shared.auth import Principal
from shared.clock import Clock
from shared.events import new_event
from shared.outbox import Outbox

DEFAULT_TERMS_DAYS = 30


@dataclass
class ProfileView:
    """A profile with what its response shows beside the row: exposure and active holds."""

    profile: CreditProfile
    exposure: Exposure
    holds: list[CreditHold]
    persisted: bool = True
    overdue_minor: int = 0
    max_days_overdue: int = 0


def _profile_defaults(currency: str, now: datetime) -> dict[str, Any]:
    return {"limit_minor": 0, "currency": currency, "terms_days": DEFAULT_TERMS_DAYS,
            "grade": None, "policy": CreditPolicy.credit.value,
            "status": CreditStatus.active.value, "version": 1, "created_at": now,
            "updated_at": now}


async def lock_profile(session: AsyncSession, clock: Clock, default_currency: str,
                       customer_id: str) -> CreditProfile:
    return await repository.lock_profile(
        session, customer_id, defaults=_profile_defaults(default_currency, clock.now()))


async def _use(session: AsyncSession, profile: CreditProfile, today: date) -> repository.CreditUse:
    """Limit, guarantees and use in the profile's currency, in one query (repository.credit_use).

    Open receivables are ledger's (the receivables snapshot, refreshed on ledger's events)
    plus reservations converted on invoicing whose `invoice.issued` has not refreshed the
    snapshot yet, so an invoice never drops out of exposure between the conversion and the
    event's delivery. Reserved is the active reservations only: a converted one is open
    receivable, never both.
    """
    return await repository.credit_use(session, profile.customer_id, profile.currency, today)


def _exposure_of(profile: CreditProfile, use: repository.CreditUse) -> Exposure:
    return Exposure(limit_minor=profile.limit_minor,
                    open_receivables_minor=use.open_receivables_minor + use.in_transit_minor,
                    reserved_minor=use.reserved_minor, guarantees_minor=use.guarantees_minor)


async def _exposure(session: AsyncSession, profile: CreditProfile, today: date) -> Exposure:
    return _exposure_of(profile, await _use(session, profile, today))


async def facts(session: AsyncSession, profile: CreditProfile, today: date) -> CreditFacts:
    holds = await repository.active_holds(session, profile.customer_id)
    use = await _use(session, profile, today)
    return CreditFacts(
        currency=profile.currency, policy=profile.policy, status=profile.status,
        exposure=_exposure_of(profile, use), hold_reasons=tuple(h.reason for h in holds),
        active_guarantees=use.guarantees)


async def view_profile(session: AsyncSession, clock: Clock, profile: CreditProfile,
                       *, persisted: bool = True) -> ProfileView:
    use = await _use(session, profile, clock.today())
    return ProfileView(profile, _exposure_of(profile, use),
                       await repository.active_holds(session, profile.customer_id), persisted,
                       overdue_minor=use.overdue_minor, max_days_overdue=use.max_days_overdue)


async def read_profile(session: AsyncSession, clock: Clock, default_currency: str,
                       customer: Customer) -> ProfileView:
    """The customer's credit profile; a customer never changed shows the defaults (not stored:
    reads never write; the row is created by the first change, hold or reservation)."""
    profile = await repository.get_profile(session, customer.id)
    if profile is None:
        defaults = _profile_defaults(default_currency, clock.now())
        return await view_profile(session, clock, CreditProfile(customer_id=customer.id, **defaults),
                                  persisted=False)
    return await view_profile(session, clock, profile)


async def _currency_blockers(session: AsyncSession, profile: CreditProfile, today: date) -> list[str]:
    blockers = []
    if await repository.count_reservations(session, profile.customer_id, [ReservationStatus.active]):
        blockers.append("active reservations")
    if (await _exposure(session, profile, today)).open_receivables_minor:
        blockers.append("open receivables")
    if await repository.count_active_guarantees(session, profile.customer_id, today):
        blockers.append("active guarantees")
    return blockers


async def change_terms(session: AsyncSession, outbox: Outbox, clock: Clock, principal: Principal,
                       profile: CreditProfile, changes: dict[str, Any], reason: str,
                       evaluation_id: str | None = None) -> CreditProfile:
    """Apply `changes` to the locked profile and emit `credit.limit_changed`; no-op if equal."""
    changed = sorted(k for k, v in changes.items() if getattr(profile, k) != v)
    if not changed:
        return profile
    new_currency = changes.get("currency", profile.currency)
    if new_currency != profile.currency:
        blockers = await _currency_blockers(session, profile, clock.today())
        if blockers:
            raise CurrencyChangeRefused(profile.currency, new_currency, blockers)
    old_limit, old_currency = profile.limit_minor, profile.currency
    for key in changed:
        setattr(profile, key, changes[key])
    if evaluation_id is not None:
        profile.evaluation_id = evaluation_id
    profile.version += 1
    profile.updated_at = clock.now()
    await session.flush()
    await outbox.enqueue(session, new_event(
        clock, type="credit.limit_changed", source="credit", subject=profile.customer_id, data={
            "customer_id": profile.customer_id, "old_limit_minor": old_limit,
            "new_limit_minor": profile.limit_minor, "old_currency": old_currency,
            "currency": profile.currency, "terms_days": profile.terms_days,
            "grade": profile.grade, "policy": profile.policy, "status": profile.status,
            "changed": changed, "reason": reason, "evaluation_id": evaluation_id,
            "by": principal.name}))
    return profile


VersionCheck = Callable[[int], None]


async def set_credit_limit(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                           default_currency: str, principal: Principal, customer: Customer,
                           data: CreditLimitUpdate, check_version: VersionCheck) -> CreditProfile:
    """Set limit, currency and terms; the currency is fixed while anything is owed or secured in it."""
    profile = await lock_profile(session, clock, default_currency, customer.id)
    check_version(profile.version)
    return await change_terms(session, outbox, clock, principal, profile, {
        "limit_minor": data.limit_minor, "currency": data.currency,
        "terms_days": data.terms_days}, data.reason)


async def set_credit_policy(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                            default_currency: str, principal: Principal, customer: Customer,
                            data: CreditPolicyUpdate, check_version: VersionCheck) -> CreditProfile:
    """Change the policy and/or block or unblock; unblocking returns to on_hold if a hold remains."""
    profile = await lock_profile(session, clock, default_currency, customer.id)
    check_version(profile.version)
    changes: dict[str, Any] = {}
    if data.policy is not None:
        changes["policy"] = data.policy.value
    if data.status == CreditStatus.blocked:
        changes["status"] = CreditStatus.blocked.value
    elif data.status == CreditStatus.active and profile.status == CreditStatus.blocked:
        held = await repository.active_holds(session, customer.id)
        changes["status"] = (CreditStatus.on_hold if held else CreditStatus.active).value
    return await change_terms(session, outbox, clock, principal, profile, changes, data.reason)
