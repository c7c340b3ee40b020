"""Use cases of change requests: lock the order → check → fire the change-request machine
(`lifecycle.py`) → outbox. The apply step (credit first) is registered with `steps.py` here.

Every step locks the order's row first (the lifecycle's `lock`: `FOR UPDATE` on PostgreSQL,
the IMMEDIATE write transaction on SQLite) and only then reads the change request, so two
concurrent steps on one order — two applies of the same change request, an apply racing a
withdraw, two requests racing to be the one open change — run one after the other and the second
sees what the first did (409).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.orders import lifecycle, repository, steps
from services.orders.changes import lifecycle as change_lifecycle
from services.orders.changes.lifecycle import CHANGEABLE_ORDER_STATES, ChangeFacts
from services.orders.changes.plan import plan_change
from services.orders.context import OrdersContext
from services.orders.errors import (
    AgreementSignedInFuture,
    BadChange,
    ChangeRequestAlreadyOpen,
    ChangeRequestNotFound,
    OrderNotChangeable,
    ReasonRequired,
)
from services.orders.lifecycle import Facts, Opinion
from services.orders.models import (
    Order,
    OrderChangeRequest,
    OrderRevision,
    OrderState,
    counters,
)
from services.orders.payloads import order_event
from services.orders.schemas import ChangeRequestCreate, ChangeRequestPublic, ChangeSet
from services.orders.service import (
    IfMatch,
    after_transition,
    check_reviewer,
    lock,
    no_if_match,
)
from services.orders.steps import SYSTEM_ACTOR, Env
from services.orders.terms import terms_of
from shared.auth import Principal
from shared.errors import Conflict, GuardFailed
from shared.idempotency import StoredResponse
from shared.numbering import next_number


def _opinions(cr: OrderChangeRequest) -> dict[str, Opinion]:
    """The current opinions on the change: its reviews, loaded with it after the order's lock."""
    return {r.department: Opinion(r.department, r.decision, r.comment) for r in cr.reviews}


async def load(session: AsyncSession, order: Order, change_request_id: str) -> OrderChangeRequest:
    """The order's change request (read again: the caller holds the order's lock), or 404."""
    cr = await repository.get_change_request(session, order.id, change_request_id, fresh=True)
    if cr is None:
        raise ChangeRequestNotFound(order.number, change_request_id)
    return cr


async def _fresh(session: AsyncSession, cr: OrderChangeRequest) -> OrderChangeRequest:
    """The change request with its reviews read again: a new one never loaded them, and a review
    is stored by an upsert the loaded collection does not see."""
    await session.flush()
    await session.refresh(cr, attribute_names=["reviews"])
    return cr


async def request_change(*, session: AsyncSession, ctx: OrdersContext, principal: Principal, order: Order,
                         data: ChangeRequestCreate) -> OrderChangeRequest:
    """Ask to change an approved, contracted or in-fulfilment order's terms (→ in_review).

    The change is checked as strictly as a new order (every problem at once, 422); only one
    change request per order may be open (409 `conflict`).
    """
    if order.state not in CHANGEABLE_ORDER_STATES:
        raise OrderNotChangeable(order.number, order.state, CHANGEABLE_ORDER_STATES,
                                 lifecycle.allowed_triggers(order.state))
    lifecycle.ensure_no_step(order)
    open_numbers = await repository.open_change_request_numbers(session, order.id)
    if open_numbers:
        raise ChangeRequestAlreadyOpen(order.number, open_numbers)
    plan = plan_change(order, data.changes, today=ctx.clock.today())
    if plan.errors:
        raise BadChange(plan.errors)
    # A prepaid order invoiced at contract: refuse now what apply would refuse.
    refused = change_lifecycle.invoiced_amount_refusal(order, plan)
    if refused is not None:
        raise GuardFailed(change_lifecycle.prepaid_invoice_unchanged.name, refused)
    now = ctx.clock.now()
    cr = OrderChangeRequest(
        number=await next_number(session, counters, "change_request", "CR"), order_id=order.id,
        base_revision=order.revision,
        changes=data.changes.model_dump(mode="json", exclude_unset=True),
        differences=plan.differences, reason=data.reason, impact=data.impact,
        requested_by=principal.name, requested_at=now, updated_at=now)
    session.add(cr)
    await session.flush()
    change_lifecycle.record_step(session, order, cr, trigger="change-request", actor=principal.name,
                                 at=now, reason=f"{cr.number} requested: {data.reason}",
                                 from_state=None)
    await session.flush()
    await ctx.outbox.enqueue(session, order_event(
        ctx.clock, "order.change_requested", order, **change_lifecycle.change_event_data(cr, order),
        changes=cr.changes, differences=plan.differences, reason=cr.reason, impact=cr.impact,
        departments=list(ctx.settings.review_departments)))
    return await _fresh(session, cr)


async def review_change(*, session: AsyncSession, ctx: OrdersContext, principal: Principal, order: Order,
                        cr: OrderChangeRequest, department: str, decision: str,
                        comment: str | None) -> OrderChangeRequest:
    """A department's opinion on a change: any rejection rejects it, the last approval approves it."""
    check_reviewer(principal, department, ctx.settings)
    if decision == "reject" and not comment:
        raise ReasonRequired("comment", "A rejection needs a comment saying why.")
    change_lifecycle.ensure_allowed(cr, "review")
    lifecycle.ensure_no_step(order)
    opinion = Opinion(department, decision, comment)
    facts = ChangeFacts(required_departments=tuple(ctx.settings.review_departments),
                        opinions={**_opinions(cr), department: opinion})
    await change_lifecycle.fire(cr, order, "review", facts=facts, opinion=opinion,
                                effects=change_lifecycle.change_effects(ctx, session, principal.name))
    return await _fresh(session, cr)


async def withdraw_change(*, session: AsyncSession, ctx: OrdersContext, principal: Principal,
                          order: Order, cr: OrderChangeRequest,
                          reason: str) -> OrderChangeRequest:
    """Sales withdraws an open change request (in review or approved); the order's terms stay.

    Refused (409) while its apply is in progress: credit may already hold the new total, and
    the apply finishes once credit answers.
    """
    lifecycle.ensure_no_step(order)
    await change_lifecycle.fire(cr, order, "withdraw", facts=ChangeFacts(), reason=reason,
                                effects=change_lifecycle.change_effects(ctx, session, principal.name))
    return cr  # flushed by the machine; its reviews, loaded with it, did not change


async def apply_change(*, env: Env, order: Order, change_request_id: str, agreement_number: str,
                       signed_at: datetime, if_match: IfMatch = no_if_match) -> OrderChangeRequest:
    """Apply an approved change with its signed agreement: credit first, then the new terms.

    Credit refusing the increase: 409 `guard_failed` (`credit_reserved`), nothing changes;
    credit not answering: 503, and the apply finishes once credit answers (the caller's retry
    or the recovery worker). The old terms stay readable as a revision.
    """
    order = await lock(env.session, order)
    step = steps.pending(order, "change_apply")
    if step is not None and step["args"]["change_request_id"] == change_request_id:
        if (agreement_number, signed_at.isoformat()) != (step["args"]["agreement_number"],
                                                         step["args"]["signed_at"]):
            raise Conflict(f"The apply of this change request is in progress under agreement "
                           f"{step['args']['agreement_number']} signed at "
                           f"{step['args']['signed_at']}; retry with those.")
        return await steps.run(env, order.id, step)
    cr = await load(env.session, order, change_request_id)
    if_match(cr.version)
    lifecycle.ensure_no_step(order)
    if signed_at > env.ctx.clock.now():
        raise AgreementSignedInFuture(env.ctx.clock.now().isoformat())
    plan = plan_change(order, ChangeSet.model_validate(cr.changes), today=None)
    change_lifecycle.check(cr, order, "apply", ChangeFacts(
        required_departments=tuple(env.ctx.settings.review_departments), opinions=_opinions(cr),
        plan=plan))
    args = {"change_request_id": cr.id, "agreement_number": agreement_number,
            "signed_at": signed_at.isoformat(),
            "adjustment": change_lifecycle.plan_credit(order, plan, cr)}
    if args["adjustment"]["action"] == "none":
        return await finish_apply(env, order, cr, args, {"adjustment": args["adjustment"]})
    step = await steps.begin(env, order, "change_apply", args)
    return await steps.run(env, order.id, step)


async def finish_apply(env: Env, order: Order, cr: OrderChangeRequest, args: dict[str, Any],
                       answers: dict[str, Any]) -> OrderChangeRequest:
    """The apply once credit did its part: the new terms as revision + 1 (steps.py, part 3)."""
    plan = plan_change(order, ChangeSet.model_validate(cr.changes), today=None)
    facts = ChangeFacts(required_departments=tuple(env.ctx.settings.review_departments),
                        opinions=_opinions(cr), plan=plan, credit_answers=answers)
    await change_lifecycle.fire(cr, order, "apply", facts=facts,
                                agreement_number=args["agreement_number"],
                                signed_at=datetime.fromisoformat(args["signed_at"]),
                                effects=change_lifecycle.change_effects(env.ctx, env.session, env.actor))
    await after_transition(env.session, order)
    await _deliver_if_complete(session=env.session, ctx=env.ctx, order=order, cr=cr)
    return cr  # flushed by the machine; its reviews, loaded with it, did not change


async def _deliver_if_complete(*, session: AsyncSession, ctx: OrdersContext, order: Order,
                               cr: OrderChangeRequest) -> None:
    """A change that leaves every line delivered in full completes the order's delivery."""
    if order.state != OrderState.in_fulfillment or any(
            line.delivered_quantity < line.quantity for line in order.lines):
        return
    await lifecycle.fire(order, "deliver", facts=Facts(open_change_requests=()),
                         reason=f"{cr.number} applied: every line is delivered in full",
                         effects=ctx.effects(session, SYSTEM_ACTOR))
    await after_transition(session, order)


async def revision_of(session: AsyncSession, order: Order, revision: int) -> dict[str, Any] | None:
    """The terms of one revision of the order: kept for past ones, the order's for the current."""
    made_by = await repository.change_request_applied_as(session, order.id, revision)
    if revision == order.revision:
        return {"order_id": order.id, "revision": revision, "current": True,
                "terms": terms_of(order), "made_by_change_request_id": made_by}
    kept: OrderRevision | None = await repository.get_revision(session, order.id, revision)
    if kept is None:
        return None
    return {"order_id": order.id, "revision": revision, "current": False, "terms": kept.terms,
            "made_by_change_request_id": made_by, "replaced_at": kept.replaced_at,
            "replaced_by": kept.replaced_by, "replaced_by_trigger": kept.replaced_by_trigger,
            "replaced_by_change_request_id": kept.replaced_by_change_request_id}


# --- The steps it takes part in (registered with steps.py) --------------------------------

# apply of a change request: credit sets the reservation to the new total.

@steps.finishes("change_apply")
async def _finish_apply(env: Env, order: Order, args: dict[str, Any],
                        answers: dict[str, Any]) -> OrderChangeRequest:
    cr = await load(env.session, order, args["change_request_id"])
    return await finish_apply(env, order, cr, args, answers)


async def _current_change(env: Env, order: Order, args: dict[str, Any]) -> OrderChangeRequest:
    cr = await load(env.session, order, args["change_request_id"])
    await env.session.refresh(cr, attribute_names=["reviews"])
    return cr


def _change_response(cr: OrderChangeRequest, order: Order) -> StoredResponse:
    return StoredResponse(200, steps.json_headers(cr.version),
                          ChangeRequestPublic.model_validate(cr).model_dump_json().encode())


@steps.kind("change_apply", "credit", current=_current_change, render=_change_response)
async def _call_apply(env: Env, args: dict[str, Any]) -> dict[str, Any]:
    return await change_lifecycle.adjust_credit(env.ctx.credit, args["adjustment"])


# cancel of the order: its open change requests are withdrawn with it.

@steps.on_cancel
async def _withdraw_when_cancelled(env: Env, order: Order, reason: str) -> None:
    await change_lifecycle.withdraw_open(
        session=env.session, outbox=env.ctx.outbox, clock=env.ctx.clock, actor=env.actor, order=order,
        reason=f"order {order.number} cancelled: {reason}")
