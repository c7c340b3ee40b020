"""The change-request machine: a change of an approved order's terms, as one `transitions` machine.

DESIGN.md §4: a change request is made (`in_review`) while its order is approved, contracted or
in fulfilment; the same departments review it as reviewed the order; any rejection → `rejected`
with every reason, the last approval → `approved`; sales may withdraw it while it is open
(`in_review` or `approved`); `apply` with the signed change agreement → `applied`, and the order
works to the new terms as revision + 1. `TRANSITIONS` below is that table, read top to bottom.
What a change set does to the order (its check, its differences) is `plan.py`'s; the use
cases that fire this machine are `service.py`'s.

It runs on the order machine's runner (`machine.Machine`) and works the way `lifecycle` does:

- A change request is bound through `ChangeRequestLifecycle` (with its order) for one trigger and
  removed in `finally`; the wrapper's `state` is the change request's `state` column and the
  machine is its only writer.
- Guards are pure checks over `ChangeFacts` gathered before the trigger fires. Each row's effects
  run in order inside one callback (AsyncMachine would run a callback list concurrently).
- After each fired transition the change request's version moves, an `order_history` row records
  the step (the order's state stays; `change_request_from/to` carry the change request's states)
  and the row's event goes to the outbox, in the caller's transaction.

Apply, in the order it happens (an `apply` step of `steps.py`): under the order's lock the guards
check that the order still accepts changes, that the change still fits what was delivered since
it was requested (`change_fits_deliveries`), and that a prepaid order already invoiced keeps its
amount (`prepaid_invoice_unchanged`: its invoice was issued at contract and must not silently
diverge); the adjustment credit must make is fixed (`plan_credit`) and recorded as the order's
pending step. Then, with no transaction open, credit is asked to set the reservation to the new
total (`adjust_credit`: `PATCH`, an absolute amount, so asking twice never adjusts twice).
Credit refusing an increase is `guard_failed` with guard `credit_reserved` and credit's reason,
and nothing has changed. Once credit answered, the trigger fires: the old terms are kept as a
revision snapshot and the new ones replace them. While the apply is pending, the change request
cannot be withdrawn (409): the reservation never ends up at a total the order does not have.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from transitions.extensions.asyncio import AsyncEventData

from services.orders import repository
from services.orders.changes.plan import ChangePlan, amount_changes
from services.orders.clients import CreditClient
from services.orders.context import OrdersContext
from services.orders.credit_blocks import credit_block, holds_reservation
from services.orders.lifecycle import Opinion
from services.orders.machine import Binding, Effect, Guard, Machine, api_name, guard
from services.orders.models import (
    OPEN_CHANGE_REQUEST_STATES,
    ChangeRequestState,
    CreditStatus,
    Order,
    OrderChangeRequest,
    OrderHistory,
    OrderLine,
    OrderState,
    PaymentMethod,
)
from services.orders.payloads import order_event
from services.orders.terms import keep_revision
from shared.clock import Clock
from shared.errors import GuardFailed, InvalidTransition
from shared.money import line_total
from shared.observability import current_request_id
from shared.outbox import Outbox

IN_REVIEW, APPROVED, APPLIED = "in_review", "approved", "applied"
REJECTED, WITHDRAWN = "rejected", "withdrawn"
STATES: list[str] = [s.value for s in ChangeRequestState]
FINAL_STATES = (APPLIED, REJECTED, WITHDRAWN)
OPEN_STATES = OPEN_CHANGE_REQUEST_STATES  # in_review, approved (the repository's query too)
# The order states in which its terms may be changed (DESIGN.md §4).
CHANGEABLE_ORDER_STATES = (OrderState.approved.value, OrderState.contracted.value,
                           OrderState.in_fulfillment.value)


# --- What guards look at and what effects use -------------------------------------------


@dataclass
class ChangeFacts:
    """Everything the change request's guards look at, gathered before a trigger fires."""

    required_departments: Sequence[str] = ()
    opinions: dict[str, Opinion] = field(default_factory=dict)
    plan: ChangePlan | None = None  # apply: the change set checked against the order as it is now
    credit_answers: dict[str, Any] | None = None  # apply: what credit did (`adjust_credit`)


@dataclass
class ChangeEffects:
    session: AsyncSession
    outbox: Outbox
    clock: Clock
    actor: str


def change_effects(ctx: OrdersContext, session: AsyncSession, actor: str) -> ChangeEffects:
    """What the change-request machine's effects need, for one transaction and who acts."""
    return ChangeEffects(session=session, outbox=ctx.outbox, clock=ctx.clock, actor=actor)


@guard
def a_department_rejected(cr: OrderChangeRequest, order: Order, facts: ChangeFacts) -> str | None:
    """Some department's current opinion on the change is a rejection."""
    if any(o.decision == "reject" for o in facts.opinions.values()):
        return None
    return "No department rejected the change request."


@guard
def all_departments_approved(cr: OrderChangeRequest, order: Order, facts: ChangeFacts) -> str | None:
    """Every required department's current opinion on the change is an approval."""
    missing = [d for d in facts.required_departments
               if d not in facts.opinions or facts.opinions[d].decision != "approve"]
    return None if not missing else f"Waiting for the approval of: {', '.join(missing)}."


@guard
def order_accepts_changes(cr: OrderChangeRequest, order: Order, facts: ChangeFacts) -> str | None:
    """The order is still approved, contracted or in fulfilment (its terms can change)."""
    if order.state in CHANGEABLE_ORDER_STATES:
        return None
    return (f"Order {order.number} is {order.state}; its terms can change only while it is "
            f"{', '.join(CHANGEABLE_ORDER_STATES)}.")


@guard
def change_fits_deliveries(cr: OrderChangeRequest, order: Order, facts: ChangeFacts) -> str | None:
    """The change still fits the order as it is now (deliveries since it was requested)."""
    if facts.plan is None:
        return "The change has not been checked against the order."
    if not facts.plan.errors:
        return None
    return "The change no longer fits the order: " + "; ".join(
        f"{e['field']} {e['message']}" for e in facts.plan.errors) + "."


@guard
def prepaid_invoice_unchanged(cr: OrderChangeRequest, order: Order, facts: ChangeFacts) -> str | None:
    """A prepaid order invoiced at contract keeps its amount: the invoice must not diverge."""
    return invoiced_amount_refusal(order, facts.plan)


def invoiced_amount_refusal(order: Order, plan: ChangePlan | None) -> str | None:
    """Why the plan may not change a prepaid order's amount (it was invoiced at contract)."""
    if order.payment_method != PaymentMethod.prepaid or order.invoice_id is None:
        return None
    if plan is None or not amount_changes(order, plan):
        return None
    return (f"Order {order.number} is prepaid and was invoiced at contract for "
            f"{order.total_minor} {order.currency} minor units; a change of its amount would "
            "diverge from that invoice. Change quantities or prices only together (same total), "
            "or settle the difference with ledger (credit or debit note) and cancel and re-order.")


# --- Effects ------------------------------------------------------------------------------


def _b(event: AsyncEventData) -> ChangeRequestLifecycle:
    return event.model


def opinion_reasons(facts: ChangeFacts) -> list[dict[str, str]]:
    """Every rejecting department's comment, in the departments' order."""
    order = list(facts.required_departments) or sorted(facts.opinions)
    return [{"source": d, "reason": o.comment or "rejected without a comment"}
            for d in order if (o := facts.opinions.get(d)) is not None and o.decision == "reject"]


async def store_opinion(event: AsyncEventData) -> None:
    """Store the department's opinion on the change, replacing its earlier one."""
    b = _b(event)
    opinion: Opinion = event.kwargs["opinion"]
    await repository.upsert_change_review(
        b.effects.session, change_request_id=b.change_request.id, department=opinion.department,
        decision=opinion.decision, comment=opinion.comment, by=b.effects.actor,
        at=b.effects.clock.now())


async def record_rejection(event: AsyncEventData) -> None:
    """Keep the rejecting departments' reasons on the change request."""
    b = _b(event)
    b.change_request.rejection_reasons = opinion_reasons(b.facts)
    b.change_request.decided_at = b.effects.clock.now()


async def record_approval(event: AsyncEventData) -> None:
    """Every department approved: note when."""
    _b(event).change_request.decided_at = _b(event).effects.clock.now()


async def record_withdrawal(event: AsyncEventData) -> None:
    """Keep why, who and when the change request was withdrawn."""
    b = _b(event)
    b.change_request.withdrawn_reason = event.kwargs["reason"]
    b.change_request.closed_by, b.change_request.closed_at = b.effects.actor, b.effects.clock.now()


def plan_credit(order: Order, plan: ChangePlan, cr: OrderChangeRequest) -> dict[str, Any]:
    """What credit must do for the change to apply, fixed before it is asked: the reservation
    set to the new total (`increased`/`decreased`), released (a total of 0), a first one
    reserved (a free order that now costs something), or nothing. An order that holds no
    reservation and needs one refuses here (`guard_failed`, `credit_reserved`)."""
    credit = dict(order.credit or {})
    old, new = order.total_minor, plan.total_minor
    adjustment: dict[str, Any] = {"reservation_id": credit.get("reservation_id"),
                                  "from_minor": old, "to_minor": new, "action": "none"}
    if order.payment_method != PaymentMethod.credit or old == new:
        return adjustment
    if holds_reservation(credit):
        adjustment["action"] = "released" if new == 0 else "increased" if new > old else "decreased"
    elif credit.get("status") == CreditStatus.not_required and new > 0:
        adjustment.update(action="reserved", reservation_id=None, request={
            "customer_id": order.customer_id, "order_id": order.id, "amount_minor": new,
            "currency": order.currency, "idempotency_key": f"change:{cr.id}"},
            change_request_number=cr.number)
    elif new > 0:
        raise GuardFailed("credit_reserved", f"Order {order.number} holds no credit reservation "
                          f"(credit {credit.get('status')}); the new total cannot be reserved.")
    if adjustment["action"] == "released":
        adjustment["change_request_number"] = cr.number
    return adjustment


async def adjust_credit(credit: CreditClient, adjustment: dict[str, Any]) -> dict[str, Any]:
    """Ask credit for the planned adjustment (the apply step's remote part); what it answered.

    Asking twice never adjusts twice: the amount is absolute, a release of a released
    reservation is a no-op, a reservation is asked under the change request's key. Credit
    refusing an increase is `guard_failed` (`credit_reserved`); no answer is 503.
    """
    action = adjustment["action"]
    kept = {k: v for k, v in adjustment.items() if k not in ("request", "change_request_number")}
    if action == "released":
        await credit.release(adjustment["reservation_id"])
        return {"adjustment": kept, "credit": {
            "status": CreditStatus.not_required.value, "reservation_id": None,
            "reasons": [f"{adjustment['change_request_number']} made the order's total 0; the "
                        "reservation was released"]}}
    if action in ("increased", "decreased"):
        await credit.change_amount(adjustment["reservation_id"], amount_minor=adjustment["to_minor"])
        return {"adjustment": kept}
    if action == "reserved":
        answer = await credit.reserve(**adjustment["request"])
        if answer.decision != "reserved":
            raise GuardFailed("credit_reserved", "Credit did not reserve the new total: "
                              + ("; ".join(answer.reasons) or answer.decision) + ".")
        return {"adjustment": {**kept, "reservation_id": answer.id},
                "credit": credit_block(answer)}
    return {"adjustment": kept}


async def keep_adjustment(event: AsyncEventData) -> None:
    """Keep what credit did for the change (asked before the trigger fired: `adjust_credit`)."""
    b = _b(event)
    answers = b.facts.credit_answers or {}
    if answers.get("credit") is not None:
        b.order.credit = dict(answers["credit"])
    b.change_request.credit_adjustment = answers.get("adjustment")


async def replace_terms(event: AsyncEventData) -> None:
    """Keep the old terms as a revision, put the new ones in place; revision + 1."""
    b = _b(event)
    order, plan, cr, fx = b.order, b.facts.plan, b.change_request, b.effects
    assert plan is not None
    now = fx.clock.now()
    keep_revision(fx.session, order, actor=fx.actor, at=now,
                  trigger="change-request-apply", change_request_id=cr.id)
    differences = plan.differences  # planned against the order as it is now: `from` is the old value
    by_id = {line.id: line for line in order.lines}
    for line_id, updates in plan.line_updates.items():
        line = by_id[line_id]
        for f, v in updates.items():
            setattr(line, f, v)
        line.total_minor = line_total(line.quantity, line.unit_price_minor)
    for line_id in plan.removals:
        order.lines.remove(by_id[line_id])
    added_lines = [OrderLine(
        position=a["position"], sku=a.get("sku"), name=a["name"], specification=a.get("specification"),
        quantity=a["quantity"], unit_price_minor=a["unit_price_minor"],
        quality_standard=a.get("quality_standard"), total_minor=a["total_minor"])
        for a in plan.additions]
    order.lines.extend(added_lines)
    for diff, line in zip([d for d in differences if d["field"] == "line" and d["from"] is None],
                          added_lines, strict=True):
        diff["line_id"] = line.id
    for f, v in plan.terms.items():
        setattr(order, f, v)
    order.total_minor = plan.total_minor
    order.revision += 1
    cr.differences = differences
    await fx.session.flush()
    # The departments approved this revision through the change request: its opinions are the
    # new revision's reviews.
    for opinion in facts_opinions(b.facts):
        await repository.upsert_review(
            fx.session, order_id=order.id, revision=order.revision, department=opinion.department,
            decision=opinion.decision, comment=opinion.comment, by=opinion_by(b, opinion), at=now)


def facts_opinions(facts: ChangeFacts) -> list[Opinion]:
    return [facts.opinions[d] for d in sorted(facts.opinions)]


def opinion_by(b: ChangeRequestLifecycle, opinion: Opinion) -> str:
    for review in b.change_request.reviews:
        if review.department == opinion.department:
            return review.by
    return b.effects.actor


async def record_agreement(event: AsyncEventData) -> None:
    """Keep the change agreement (number, signed at) and the revision it made."""
    b = _b(event)
    cr = b.change_request
    cr.agreement_number = event.kwargs["agreement_number"]
    cr.signed_at = event.kwargs["signed_at"]
    cr.applied_revision = b.order.revision
    cr.closed_by, cr.closed_at = b.effects.actor, b.effects.clock.now()


# --- The table ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    trigger: str
    source: tuple[str, ...]
    dest: str | None
    guards: tuple[Guard, ...] = ()
    effects: tuple[Effect, ...] = ()
    event: str | None = None
    endpoint: str = ""
    checked_by_effects: tuple[tuple[str, str], ...] = ()  # (guard, description) asked of credit

    @property
    def conditions(self) -> list[Guard]:
        """What the machine checks when the trigger fires: the guards."""
        return list(self.guards)


def row(trigger: str, source: str | tuple[str, ...], dest: str | None, *,
        guards: Sequence[Guard] = (), effects: Sequence[Effect] = (), event: str | None = None,
        endpoint: str = "", checked_by_effects: Sequence[tuple[str, str]] = ()) -> Row:
    return Row(trigger, source if isinstance(source, tuple) else (source,), dest, tuple(guards),
               tuple(effects), event, endpoint, tuple(checked_by_effects))


C = "/v1/orders/{id}/change-requests/{cid}"
TRANSITIONS: tuple[Row, ...] = (
    # request (POST /v1/orders/{id}/change-requests) makes one in_review: the initial state.
    row("review", IN_REVIEW, REJECTED, guards=[a_department_rejected],
        effects=[store_opinion, record_rejection], event="order.change_request_rejected",
        endpoint=f"POST {C}/reviews"),
    row("review", IN_REVIEW, APPROVED, guards=[all_departments_approved],
        effects=[store_opinion, record_approval], event="order.change_request_approved",
        endpoint=f"POST {C}/reviews"),
    row("review", IN_REVIEW, None, effects=[store_opinion], endpoint=f"POST {C}/reviews"),
    row("withdraw", OPEN_STATES, WITHDRAWN, effects=[record_withdrawal],
        event="order.change_request_withdrawn", endpoint=f"POST {C}/withdraw"),
    row("apply", APPROVED, APPLIED,
        guards=[order_accepts_changes, change_fits_deliveries, prepaid_invoice_unchanged],
        effects=[keep_adjustment, replace_terms, record_agreement], event="order.changed",
        endpoint=f"POST {C}/apply",
        checked_by_effects=[("credit_reserved", "Credit holds the new total: the apply step asks "
                             "it to adjust the reservation before the trigger fires "
                             "(adjust_credit), and a refused increase stops the apply with "
                             "nothing changed.")]),
)
TRIGGER_NAMES = {"review": "change-request-review", "withdraw": "change-request-withdraw",
                 "apply": "change-request-apply"}


def record_step(session: AsyncSession, order: Order, cr: OrderChangeRequest, *, trigger: str,
                actor: str, at: Any, reason: str | None, from_state: str | None) -> None:
    """An `order_history` row for a change request's step; the order's state stays."""
    session.add(OrderHistory(
        order_id=order.id, revision=order.revision, from_state=order.state, to_state=order.state,
        trigger=trigger, actor=actor, at=at, reason=reason, request_id=current_request_id(),
        change_request_id=cr.id, change_request_from=from_state, change_request_to=cr.state))


def change_event_data(cr: OrderChangeRequest, order: Order) -> dict[str, Any]:
    """The fields every change request event carries besides the order's."""
    return {"change_request_id": cr.id, "change_request_number": cr.number,
            "change_request_state": cr.state, "state": order.state, "revision": order.revision}


def _reason(r: Row, b: ChangeRequestLifecycle, kwargs: dict[str, Any]) -> str:
    cr = b.change_request
    opinion: Opinion | None = kwargs.get("opinion")
    if opinion is not None:
        said = f": {opinion.comment}" if opinion.comment else ""
        text = f"{cr.number} {opinion.department} {opinion.decision}{said}"
        if r.dest == REJECTED:
            text += "; rejected: " + "; ".join(f"{x['source']}: {x['reason']}"
                                               for x in cr.rejection_reasons)
        elif r.dest == APPROVED:
            text += "; approved by every department"
        return text
    if r.trigger == "withdraw":
        return f"{cr.number} withdrawn: {kwargs['reason']}"
    return (f"{cr.number} applied as revision {b.order.revision} under change agreement "
            f"{cr.agreement_number}")


def _event_extra(r: Row, b: ChangeRequestLifecycle) -> dict[str, Any]:
    cr, order = b.change_request, b.order
    extra = change_event_data(cr, order)
    if r.dest == REJECTED:
        extra["reasons"] = list(cr.rejection_reasons)
    if r.dest == WITHDRAWN:
        extra["reason"] = cr.withdrawn_reason
    if r.dest == APPLIED:
        extra.update(previous_revision=order.revision - 1, differences=list(cr.differences),
                     agreement_number=cr.agreement_number,
                     signed_at=cr.signed_at.isoformat() if cr.signed_at else None,
                     credit_adjustment=cr.credit_adjustment)
    return extra


async def record(r: Row, event: AsyncEventData) -> None:
    """After every fired row: the change request's version (and the order's, once applied), an
    `order_history` row for the step and, where the row names one, its event in the outbox."""
    b = _b(event)
    cr, order, fx = b.change_request, b.order, b.effects
    now = fx.clock.now()
    cr.version += 1
    cr.updated_at = now
    if r.dest == APPLIED:
        order.version += 1
        order.updated_at = now
    record_step(fx.session, order, cr, trigger=TRIGGER_NAMES[r.trigger], actor=fx.actor,
                at=now, reason=_reason(r, b, event.kwargs),
                from_state=event.transition.source)
    await fx.session.flush()
    if r.event is not None:
        await fx.outbox.enqueue(fx.session, order_event(
            fx.clock, r.event, order, **_event_extra(r, b)))


MACHINE = Machine(name="change_request", states=STATES, initial=IN_REVIEW, table=TRANSITIONS,
                  record=record)


class ChangeRequestLifecycle(Binding):
    """A change request bound to the machine for one trigger; `state` is its column."""

    def __init__(self, change_request: OrderChangeRequest, order: Order, facts: ChangeFacts,
                 effects: ChangeEffects) -> None:
        super().__init__(facts, effects)
        self.change_request = change_request
        self.order = order

    @property
    def subjects(self) -> tuple[OrderChangeRequest, Order]:
        return (self.change_request, self.order)

    @property
    def state(self) -> str:
        return self.change_request.state

    @state.setter
    def state(self, value: str) -> None:
        self.change_request.state = value  # the only assignment of a change request's state


def allowed_triggers(state: str) -> list[str]:
    """The triggers the table allows from `state`, in table order."""
    return MACHINE.allowed_triggers(state)


def ensure_allowed(cr: OrderChangeRequest, trigger: str) -> None:
    """Refuse with `invalid_transition` unless the table has `trigger` from the request's state."""
    if not MACHINE.allows(cr.state, trigger):
        raise InvalidTransition(
            f"Change request {cr.number} is {cr.state}; {api_name(trigger)} is not possible from "
            f"{cr.state}.", state=cr.state, allowed=allowed_triggers(cr.state))


def check(cr: OrderChangeRequest, order: Order, trigger: str, facts: ChangeFacts) -> Row:
    """The row `trigger` would fire with these facts — or raise why not, as `fire` would.
    Nothing runs: the apply step checks this before it asks credit."""
    ensure_allowed(cr, trigger)
    return MACHINE.check(cr.state, trigger, (cr, order), facts)


async def fire(cr: OrderChangeRequest, order: Order, trigger: str, *, facts: ChangeFacts,
               effects: ChangeEffects, **kwargs: Any) -> Row:
    """Fire `trigger` on the change request; returns the row that fired, or raises why not."""
    ensure_allowed(cr, trigger)
    return await MACHINE.fire(ChangeRequestLifecycle(cr, order, facts, effects), trigger, **kwargs)


async def withdraw_open(*, session: AsyncSession, outbox: Outbox, clock: Clock, actor: str,
                        order: Order, reason: str) -> list[str]:
    """Withdraw the order's open change requests (say, the order was cancelled); their numbers."""
    withdrawn = []
    for cr in await repository.change_requests_of(session, order.id):
        if cr.state in OPEN_STATES:
            await fire(cr, order, "withdraw", facts=ChangeFacts(), reason=reason,
                       effects=ChangeEffects(session=session, outbox=outbox, clock=clock, actor=actor))
            withdrawn.append(cr.number)
    return withdrawn


def describe() -> dict[str, Any]:
    """The change-request machine as data (the order machine's shape)."""
    return {
        "initial": IN_REVIEW,
        "states": STATES,
        "final_states": list(FINAL_STATES),
        "transitions": [{
            "trigger": api_name(r.trigger), "source": list(r.source), "dest": r.dest,
            "internal": r.dest is None, "endpoint": r.endpoint,
            "guards": [{"name": g.name, "description": g.doc} for g in r.guards]
            + [{"name": n, "description": d} for n, d in r.checked_by_effects],
            "remote": [{"service": "credit", "call": "PATCH /v1/reservations/{id}",
                        "description": "set the order's reservation to the new total (or release "
                                       "it, or reserve a first one)"}] if r.trigger == "apply" else [],
            "effects": [e.__name__ for e in r.effects], "event": r.event,
        } for r in TRANSITIONS],
    }
