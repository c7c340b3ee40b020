"""The order machine: the lifecycle of DESIGN.md §4 as one `transitions` AsyncMachine.

`TRANSITIONS` below is the lifecycle table, read top to bottom like DESIGN.md's: trigger,
from, to, guards, effects and the event it emits. Where one trigger has several rows from the
same state (a review may reject, approve or leave the order in review), the machine tries them
in order and takes the first whose guards all pass; a row with `to=None` is an internal
transition (the order stays where it is, the effects still run).

The module reads in that order: the states, what guards look at (`Facts`) and what effects use
(`Effects`), the guards, the table; then how it runs, and the machine as data (`describe`,
`mermaid`). It runs on `machine.Machine`, the runner it shares with the change-request machine.
What the rows do lives beside it: `effects` (what a row changes on the order),
`payloads` (the event and the history row's reason), `terms` (the revision snapshot, the
amount settle invoices) and `credit_blocks` (the order's `credit` block).

How an order meets the machine:

- A loaded `Order` is bound through `OrderLifecycle` (a SQLModel row cannot be a `transitions`
  model) with `add_model(wrapper, initial=order.state)` and removed again in `finally`. The
  wrapper's `state` is the order's `state` column: the machine is the only writer of it.
- Guards are pure checks over `Facts` gathered before the trigger fires (credit's answer, the
  current opinions, today's date). `AsyncMachine` evaluates a transition's conditions
  concurrently, and it runs every callback *list* concurrently too, so nothing here shares the
  `AsyncSession` across one list: each row's effects are compiled into a single callback
  that runs them in order.
- Effects are local: nothing in the machine calls another service. A transition that needs
  credit or ledger to act first (reserve, release, invoice, convert, credit note) is a *step*
  (`steps.py`): its intent is committed, the other service is called with no transaction
  open, and only then does the trigger fire here, with the answers in `Facts` and the effects
  keeping them on the order. The table's `remote` column names those calls.
- After every fired transition (internal ones included) `record` bumps the
  order's version, writes an `order_history` row and, where the row names one, enqueues the
  event in the outbox (both from `payloads`), all in the caller's transaction.
- An illegal trigger is `InvalidTransition` (409, with the triggers the state allows); a failed
  guard is `GuardFailed` (409, guard and reason), or 422 for the preliminary check at submit.

From contract on: a prepaid order is invoiced at contract and start-fulfillment waits until
ledger shows it paid (`prepaid_received`); a delivery's quantities
are added to the lines before `deliver` fires, so the machine picks `delivered` (every line in
full) or stays in fulfilment; settle fires once ledger issued the invoice and credit converted
the reservation (`invoice_issued`, `reservation_converted`); close looks at the balance ledger
gave before the lock was taken. While a step is pending, every other trigger is refused
(`StepInProgress`, 409 `conflict`): the order cannot change under a half-done step.
While a change request is open (in review or approved; see `changes/lifecycle.py`), the
delivery that would complete the order, settle and close are refused (guard
`open_change_request`, naming the change request).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from transitions.extensions.asyncio import AsyncEventData

from services.orders import repository
from services.orders.clients import CreditProfile
from services.orders.credit_blocks import current_credit, holds_reservation
from services.orders.effects import (
    keep_conversion,
    keep_invoice,
    keep_release,
    keep_reservation,
    record_contract,
    schedule_review,
    start_new_revision,
    store_credit_answer,
    store_opinion,
)
from services.orders.errors import PreliminaryCheckFailed, StepInProgress
from services.orders.machine import Binding, Effect, Guard, Machine, Refusal, api_name, guard
from services.orders.models import CreditStatus, Order, OrderHistory, OrderState, PaymentMethod
from services.orders.payloads import event_extra, order_event, transition_reason
from shared.clock import Clock
from shared.errors import GuardFailed, InvalidTransition
from shared.money import format_money
from shared.observability import current_request_id
from shared.outbox import Outbox

log = logging.getLogger("o2c.orders.lifecycle")

DRAFT, IN_REVIEW, APPROVED, REJECTED = "draft", "in_review", "approved", "rejected"
CONTRACTED, IN_FULFILLMENT, DELIVERED = "contracted", "in_fulfillment", "delivered"
INVOICED, CLOSED, CANCELLED = "invoiced", "closed", "cancelled"
STATES: list[str] = [s.value for s in OrderState]
FINAL_STATES = (CLOSED, CANCELLED)


# --- What guards look at and what effects use -------------------------------------------


@dataclass(frozen=True)
class Opinion:
    department: str
    decision: str  # approve | reject
    comment: str | None = None


@dataclass
class Facts:
    """Everything the guards look at, gathered before a trigger fires; guards never do I/O.

    `None` means "not gathered": a guard that needs it refuses (fails closed).
    """

    today: date | None = None
    profile: CreditProfile | None = None          # credit's profile of the customer (submit)
    customer_known: bool = True                    # credit knows the customer (submit)
    required_departments: Sequence[str] = ()
    opinions: dict[str, Opinion] = field(default_factory=dict)  # current revision, incl. new one
    credit: dict[str, Any] | None = None           # the order's credit block after this trigger
    ledger_paid: bool | None = None                # later: start-fulfillment of prepaid orders
    invoice_paid_minor: int | None = None          # cancel of an order invoiced at contract
    outstanding_minor: int | None = None           # close; cancel of an order invoiced at contract
    open_exceptions: int | None = None             # later: close
    open_change_requests: Sequence[str] | None = None  # their numbers: deliveries in full, settle, close
    invoice_id: str | None = None                  # ledger's invoice issued by the step (contract, settle)
    reservation_converted: bool = False            # credit converted the reservation (settle step)


@dataclass
class Effects:
    """What effects need besides the order: the transaction, the outbox, time, who."""

    session: AsyncSession
    outbox: Outbox
    clock: Clock
    actor: str
    review_sla_working_days: int = 3
    holidays: Sequence[date] = ()


# --- Guards -------------------------------------------------------------------------------


@guard
def preliminary_check_passed(order: Order, facts: Facts) -> Refusal | None:
    """The application is complete and consistent (DESIGN §4 submit); lists every failure."""
    errors: list[dict[str, str]] = []

    def fail(path: str, message: str) -> None:
        errors.append({"field": path, "message": message})

    if not facts.customer_known:
        fail("customer_id", "unknown customer")
    if not order.lines:
        fail("lines", "at least one line is required")
    for i, line in enumerate(order.lines):
        if line.quantity is None or line.quantity <= 0:
            fail(f"lines[{i}].quantity", "must be greater than 0")
        if line.unit_price_minor is None or line.unit_price_minor < 0:
            fail(f"lines[{i}].unit_price_minor", "must be 0 or more")
    if order.delivery_date is None:
        fail("delivery_date", "required")
    elif facts.today is not None and order.delivery_date < facts.today:
        fail("delivery_date", f"must be {facts.today.isoformat()} or later")
    if not order.delivery_place:
        fail("delivery_place", "required")
    if order.payment_method is None:
        fail("payment_method", "required")
    elif order.payment_method == PaymentMethod.credit:
        if order.payment_terms_days is None:
            fail("payment_terms_days", "required for credit orders")
        if facts.profile is not None and facts.profile.policy == "prepaid_only":
            fail("payment_method", "the customer's credit policy is prepaid_only")
    profile = facts.profile
    if profile is not None and profile.currency and order.currency != profile.currency:
        fail("currency", f"must be the customer's credit currency {profile.currency}")
    if not errors:
        return None
    return Refusal(f"{len(errors)} field(s) need attention before the order can be submitted.",
                   errors)


@guard
def customer_not_blocked(order: Order, facts: Facts) -> str | None:
    """Credit has not blocked the customer: no new orders for a blocked customer."""
    if facts.profile is not None and facts.profile.status == "blocked":
        return (f"Customer {order.customer_id} is blocked in credit; orders for it cannot be "
                "submitted until a credit manager lifts the block.")
    return None


@guard
def a_department_rejected(order: Order, facts: Facts) -> str | None:
    """Some department's current opinion is a rejection (the order goes back with reasons)."""
    if any(o.decision == "reject" for o in facts.opinions.values()):
        return None
    return "No department rejected the order."


@guard
def all_departments_approved(order: Order, facts: Facts) -> str | None:
    """Every required department's current opinion is an approval."""
    missing = [d for d in facts.required_departments
               if d not in facts.opinions or facts.opinions[d].decision != "approve"]
    if not missing:
        return None
    return f"Waiting for the approval of: {', '.join(missing)}."


@guard
def credit_reserved(order: Order, facts: Facts) -> str | None:
    """Credit reserved the order's amount, or the order needs no credit (prepaid)."""
    credit = current_credit(order, facts)
    status = credit.get("status")
    reasons = "; ".join(credit.get("reasons") or [])
    if status in (CreditStatus.reserved, CreditStatus.not_required):
        return None
    if status == CreditStatus.pending:
        return ("Credit is pending: the credit service has not answered yet; the order is "
                "approved automatically once it reserves the amount.")
    if status == CreditStatus.requires_guarantee:
        return (f"Credit requires a guarantee: {reasons or 'no reason given'}. Ask for a "
                "credit-recheck once the guarantee is in place.")
    return f"Credit refused the reservation: {reasons or 'no reason given'}."


@guard
def credit_refused(order: Order, facts: Facts) -> str | None:
    """Credit's answer on a recheck is a refusal (the order is rejected with credit's reasons)."""
    if current_credit(order, facts).get("status") == CreditStatus.rejected:
        return None
    return "Credit did not refuse the reservation."


@guard
def invoice_checked(order: Order, facts: Facts) -> str | None:
    """An order invoiced at contract (prepaid) is cancelled once ledger said what its invoice
    holds: the credit note takes all of it off, and what was paid goes back to the customer's
    unapplied cash in ledger, to refund or apply elsewhere."""
    if order.invoice_id is None:
        return None
    if facts.invoice_paid_minor is None or facts.outstanding_minor is None:
        return "The invoice of the order has not been checked with ledger."
    return None


@guard
def prepaid_received(order: Order, facts: Facts) -> str | None:
    """A prepaid order starts production only once ledger shows it paid."""
    if order.payment_method != PaymentMethod.prepaid:
        return None
    if facts.ledger_paid is None:
        return "Payment of the prepaid order has not been checked with ledger."
    return None if facts.ledger_paid else "Ledger does not show the prepaid order as paid."


@guard
def all_lines_delivered(order: Order, facts: Facts) -> str | None:
    """Every line's delivered quantity reached its ordered quantity."""
    short = [line.position for line in order.lines if line.delivered_quantity < line.quantity]
    return None if not short else f"Lines not fully delivered: {', '.join(map(str, short))}."


@guard
def lines_outstanding(order: Order, facts: Facts) -> str | None:
    """Some line is not fully delivered yet (a partial delivery keeps the order in fulfilment)."""
    if all_lines_delivered.check(order, facts) is not None:
        return None
    return "Every line is delivered."


def _no_open_change_request(order: Order, facts: Facts) -> str | None:
    """No change request is open (in review or approved): the order's terms are settled."""
    if facts.open_change_requests is None:
        return "Open change requests have not been checked."
    if not facts.open_change_requests:
        return None
    return (f"Change request {', '.join(facts.open_change_requests)} is open on order "
            f"{order.number}: apply, withdraw or reject it first.")


# DESIGN.md names this guard `open_change_request` (what it looks for).
no_open_change_request = Guard("open_change_request", _no_open_change_request,
                               (_no_open_change_request.__doc__ or "").strip())


@guard
def no_open_exception(order: Order, facts: Facts) -> str | None:
    """No exception (delay, quality issue) is open on the order."""
    if facts.open_exceptions is None:
        return "Open exceptions have not been checked."
    return None if facts.open_exceptions == 0 else f"{facts.open_exceptions} exception(s) are open."


@guard
def nothing_outstanding(order: Order, facts: Facts) -> str | None:
    """Ledger shows nothing outstanding for the order (paid, credited or written off)."""
    if facts.outstanding_minor is None:
        return "The order's balance has not been checked with ledger."
    return None if facts.outstanding_minor == 0 else (
        f"{format_money(facts.outstanding_minor, order.currency)} is still outstanding.")


@guard
def prepaid_invoiced(order: Order, facts: Facts) -> str | None:
    """A prepaid order is contracted once ledger issued its invoice (due the day it is signed)."""
    if order.payment_method != PaymentMethod.prepaid or order.invoice_id or facts.invoice_id:
        return None
    return "Ledger has not issued the prepaid order's invoice."


@guard
def invoice_issued(order: Order, facts: Facts) -> str | None:
    """Ledger issued the order's invoice (a prepaid order's was issued at contract)."""
    if order.invoice_id or facts.invoice_id:
        return None
    return "Ledger has not issued the order's invoice."


@guard
def reservation_converted(order: Order, facts: Facts) -> str | None:
    """Credit turned the order's reservation into receivables (or the order holds none)."""
    if not holds_reservation(order.credit or {}) or facts.reservation_converted:
        return None
    return "Credit has not converted the order's reservation into receivables."


# --- The table ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Remote:
    """A call a step makes to another service before its trigger fires (steps.py), and the
    guard that the answer must satisfy when it does."""

    service: str
    call: str
    what: str
    guard: Guard | None = None


@dataclass(frozen=True)
class Row:
    trigger: str
    source: tuple[str, ...]
    dest: str | None  # None: internal transition, the order stays in its state
    guards: tuple[Guard, ...] = ()
    effects: tuple[Effect, ...] = ()
    event: str | None = None
    endpoint: str = ""
    remote: tuple[Remote, ...] = ()

    @property
    def conditions(self) -> list[Guard]:
        """What the machine checks when the trigger fires: the guards, then the remote answers."""
        return [*self.guards, *(r.guard for r in self.remote if r.guard is not None)]


def row(trigger: str, source: str | tuple[str, ...], dest: str | None, *,
        guards: Sequence[Guard] = (), effects: Sequence[Effect] = (), event: str | None = None,
        endpoint: str = "", remote: Sequence[Remote] = ()) -> Row:
    return Row(trigger, source if isinstance(source, tuple) else (source,), dest, tuple(guards),
               tuple(effects), event, endpoint, tuple(remote))


RESERVE = Remote("credit", "POST /v1/reservations", "reserve the order's total under the "
                 "revision's key; no answer leaves credit pending and a worker asks again")
RECHECK = Remote("credit", "POST /v1/reservations", "ask credit to decide the reservation again")
RELEASE = Remote("credit", "DELETE /v1/reservations/{id}", "give the reserved amount back")
INVOICE = Remote("ledger", "POST /v1/invoices", "issue the invoice: delivered value less returns, "
                 "issued and due as fixed at the first attempt", invoice_issued)
PREPAID_INVOICE = Remote("ledger", "POST /v1/invoices", "prepaid orders: the invoice for the "
                         "total, due the day the contract was signed", prepaid_invoiced)
CONVERT = Remote("credit", "POST /v1/reservations/{id}/convert", "the reservation becomes open "
                 "receivables", reservation_converted)
CREDIT_NOTE = Remote("ledger", "POST /v1/credit-notes", "an order invoiced at contract: credit "
                     "its invoice in full, what was paid back to the customer's unapplied cash")

P = "/v1/orders/{id}"
TRANSITIONS: tuple[Row, ...] = (
    # create (POST /v1/orders) makes a draft; it is the machine's initial state.
    row("update", DRAFT, None, endpoint=f"PATCH {P}"),
    row("submit", DRAFT, IN_REVIEW, guards=[preliminary_check_passed, customer_not_blocked],
        remote=[RESERVE], effects=[schedule_review, keep_reservation], event="order.submitted",
        endpoint=f"POST {P}/submit"),
    row("review", IN_REVIEW, REJECTED, guards=[a_department_rejected], effects=[store_opinion],
        event="order.rejected", endpoint=f"POST {P}/reviews"),
    row("review", IN_REVIEW, APPROVED, guards=[all_departments_approved, credit_reserved],
        effects=[store_opinion], event="order.approved", endpoint=f"POST {P}/reviews"),
    row("review", IN_REVIEW, None, effects=[store_opinion], endpoint=f"POST {P}/reviews"),
    row("approve", IN_REVIEW, APPROVED, guards=[all_departments_approved, credit_reserved],
        event="order.approved", endpoint=f"POST {P}/approve"),
    row("credit_recheck", IN_REVIEW, REJECTED, guards=[credit_refused], remote=[RECHECK],
        effects=[store_credit_answer], event="order.rejected", endpoint=f"POST {P}/credit-recheck"),
    row("credit_recheck", IN_REVIEW, APPROVED, guards=[all_departments_approved, credit_reserved],
        remote=[RECHECK], effects=[store_credit_answer], event="order.approved",
        endpoint=f"POST {P}/credit-recheck"),
    row("credit_recheck", IN_REVIEW, None, remote=[RECHECK], effects=[store_credit_answer],
        endpoint=f"POST {P}/credit-recheck"),
    row("revise", REJECTED, DRAFT, remote=[RELEASE], effects=[keep_release, start_new_revision],
        endpoint=f"POST {P}/revise"),
    row("sign_contract", APPROVED, CONTRACTED, remote=[PREPAID_INVOICE],
        effects=[record_contract, keep_invoice], event="order.contracted",
        endpoint=f"POST {P}/contract"),
    row("start_fulfillment", CONTRACTED, IN_FULFILLMENT, guards=[prepaid_received],
        event="order.fulfillment_started", endpoint=f"POST {P}/start-fulfillment"),
    row("deliver", IN_FULFILLMENT, DELIVERED, guards=[all_lines_delivered, no_open_change_request],
        event="order.delivered", endpoint=f"POST {P}/deliveries"),
    row("deliver", IN_FULFILLMENT, None, guards=[lines_outstanding], endpoint=f"POST {P}/deliveries"),
    row("settle", DELIVERED, INVOICED, guards=[no_open_change_request], remote=[INVOICE, CONVERT],
        effects=[keep_invoice, keep_conversion], event="order.invoiced",
        endpoint=f"POST {P}/settle"),
    row("close", INVOICED, CLOSED, guards=[nothing_outstanding, no_open_exception,
                                           no_open_change_request],
        event="order.closed", endpoint=f"POST {P}/close"),
    row("cancel", (DRAFT, IN_REVIEW, REJECTED, APPROVED, CONTRACTED), CANCELLED,
        guards=[invoice_checked], remote=[CREDIT_NOTE, RELEASE], effects=[keep_release],
        event="order.cancelled", endpoint=f"POST {P}/cancel"),
)


# --- Running the machine ------------------------------------------------------------------


async def record(r: Row, event: AsyncEventData) -> None:
    """After every fired row (internal ones too): the order's version, an `order_history` row and,
    where the row names one, its event in the outbox."""
    b: OrderLifecycle = event.model
    order, fx = b.order, b.effects
    now = fx.clock.now()
    order.version += 1
    order.updated_at = now
    from_state = event.transition.source
    fx.session.add(OrderHistory(
        order_id=order.id, revision=order.revision, from_state=from_state, to_state=order.state,
        trigger=api_name(r.trigger), actor=fx.actor, at=now,
        reason=transition_reason(r, order, b.facts, event.kwargs),
        request_id=current_request_id()))
    await fx.session.flush()
    if r.event is not None:
        await fx.outbox.enqueue(fx.session, order_event(
            fx.clock, r.event, order, **event_extra(r, order, b.facts, event.kwargs, from_state)))


def _refuse(name: str, refusal: Refusal) -> Exception:
    """The preliminary check's field errors are 422 `PreliminaryCheckFailed`; the rest `GuardFailed`."""
    if refusal.errors:
        return PreliminaryCheckFailed(refusal.reason, refusal.errors)
    return GuardFailed(name, refusal.reason)


MACHINE = Machine(name="order", states=STATES, initial=DRAFT, table=TRANSITIONS, record=record,
                  refuse=_refuse)


# --- Binding orders -----------------------------------------------------------------------


class OrderLifecycle(Binding):
    """A loaded order bound to the machine for one trigger; its `state` is the order's column."""

    def __init__(self, order: Order, facts: Facts, effects: Effects) -> None:
        super().__init__(facts, effects)
        self.order = order

    @property
    def subjects(self) -> tuple[Order]:
        return (self.order,)

    @property
    def state(self) -> str:
        return self.order.state

    @state.setter
    def state(self, value: str) -> None:
        self.order.state = value  # the only assignment of an order's state


def allowed_triggers(state: str) -> list[str]:
    """The triggers the table allows from `state`, as the API names them, in table order."""
    return MACHINE.allowed_triggers(state)


def allows(state: str, trigger: str) -> bool:
    """Whether the table has `trigger` from `state` (its guards aside)."""
    return MACHINE.allows(state, trigger)


def ensure_allowed(order: Order, trigger: str) -> None:
    """Refuse with `invalid_transition` unless the table has `trigger` from the order's state,
    and with `StepInProgress` while another trigger's remote step is pending on the order."""
    if not allows(order.state, trigger):
        raise InvalidTransition(
            f"Order {order.number} is {order.state}; {api_name(trigger)} is not possible from "
            f"{order.state}.", state=order.state, allowed=allowed_triggers(order.state))
    ensure_no_step(order, trigger)


def ensure_no_step(order: Order, kind: str | None = None) -> None:
    """Refuse (409 `conflict`) while a step other than `kind` is pending on the order."""
    step = order.pending_step
    if step is not None and step.get("kind") != kind:
        raise StepInProgress(order.number, step)


async def fire(order: Order, trigger: str, *, facts: Facts, effects: Effects, **kwargs: Any) -> Row:
    """Fire `trigger` on `order`; returns the row that fired, or raises why it could not."""
    ensure_allowed(order, trigger)
    return await MACHINE.fire(OrderLifecycle(order, facts, effects), trigger, **kwargs)


def check(order: Order, trigger: str, facts: Facts) -> Row:
    """The row `trigger` would fire with these facts, its remote answers aside — or raise why it
    would not, as `fire` would. Nothing runs: a step checks this before it calls out."""
    ensure_allowed(order, trigger)
    return MACHINE.check(order.state, trigger, (order,), facts)


async def opinions(session: AsyncSession, order: Order) -> dict[str, Opinion]:
    """The departments' current opinions on the order's revision."""
    rows = await repository.reviews_of(session, order.id, order.revision)
    return {r.department: Opinion(r.department, r.decision, r.comment) for r in rows}


async def after_transition(session: AsyncSession, order: Order) -> Order:
    """The order as the response shows it: flushed, with its current revision's reviews."""
    await session.flush()
    # One SELECT of the reviews (a refresh of the relationship would read the order's row too)
    set_committed_value(order, "reviews", await repository.reviews_of(session, order.id,
                                                                       order.revision))
    return order


# --- Description and diagram --------------------------------------------------------------


def describe() -> dict[str, Any]:
    """The machine as data: states and every transition with its guards, effects and event."""
    return {
        "initial": DRAFT,
        "states": STATES,
        "final_states": list(FINAL_STATES),
        "transitions": [{
            "trigger": api_name(r.trigger), "source": list(r.source), "dest": r.dest,
            "internal": r.dest is None, "endpoint": r.endpoint,
            "guards": [{"name": g.name, "description": g.doc} for g in r.conditions],
            "remote": [{"service": c.service, "call": c.call, "description": c.what}
                       for c in r.remote],
            "effects": [e.__name__ for e in r.effects], "event": r.event,
        } for r in TRANSITIONS],
    }


def mermaid(current: str | None = None) -> str:
    """The machine as a Mermaid `stateDiagram-v2`, with `current` highlighted."""
    labels: dict[tuple[str, str], list[str]] = {}
    for r in TRANSITIONS:
        for source in r.source:
            labels.setdefault((source, r.dest or source), [])
            name = api_name(r.trigger)
            if name not in labels[(source, r.dest or source)]:
                labels[(source, r.dest or source)].append(name)
    lines = ["stateDiagram-v2",
             "    classDef current fill:#fde68a,stroke:#b45309,stroke-width:3px,font-weight:bold",
             f"    [*] --> {DRAFT}"]
    lines += [f"    {src} --> {dst}: {' / '.join(names)}" for (src, dst), names in labels.items()]
    lines += [f"    {state} --> [*]" for state in FINAL_STATES]
    if current is not None:
        lines.append(f"    class {current} current")
    return "\n".join(lines) + "\n"
