"""Use cases of the orders service: lock → gather facts → fire the machine → outbox event.

Transitions lock the order row (`FOR UPDATE` on PostgreSQL; on SQLite the request's write
transaction began IMMEDIATE, so writers are serialized), gather what the guards need and fire
one trigger of `lifecycle`, which changes the order, writes its history and enqueues its event
in the same transaction.

Another service is never waited for under that lock (DESIGN.md §9). What is only *read* from
credit or ledger — the customer's credit profile at submit, the order's balance at cancel,
start-fulfillment and close — is asked first, with no transaction open, and fails closed: no
answer is 503 and nothing changes. What another service must *do* — reserve, release, invoice,
convert, credit — is a step (`steps.py`): its intent is committed first, the call follows,
and the trigger fires after it; a step interrupted by a crash or an outage finishes on the
caller's retry or by the recovery worker.

Credit at submit, a deliberate split: the profile read fails closed (those checks decide
whether the order may enter review at all); the reservation degrades — without an answer the
order enters review with credit `pending`, a worker asks again with the same idempotency key,
and approval waits (`guard_failed`, guard `credit_reserved`) until credit reserved.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from services.orders import credit_blocks, lifecycle, repository, steps, terms
from services.orders.config import OrdersSettings
from services.orders.context import OrdersContext
from services.orders.errors import (
    AmountTooLarge,
    DeliveryDateInPast,
    NotADraft,
    NotOwnSalesperson,
    NotTheDepartment,
    OrderChanged,
    OrderNotFound,
    ReasonRequired,
    SignedInFuture,
    StepInProgress,
    UnknownCustomer,
    UnknownDepartment,
)
from services.orders.lifecycle import Facts, Opinion
from services.orders.models import (
    Order,
    OrderDelivery,
    OrderDeliveryLine,
    OrderException,
    OrderHistory,
    OrderLine,
    OrderReturn,
    OrderState,
    PaymentMethod,
    counters,
)
from services.orders.payloads import order_event
from services.orders.schemas import (
    DeliveryCreate,
    ExceptionCreate,
    OrderCreate,
    OrderLineIn,
    OrderUpdate,
    ReturnCreate,
)
from services.orders.steps import Env
from shared.auth import Principal
from shared.clock import Clock
from shared.db import checkpoint
from shared.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from shared.events import Event
from shared.money import MAX_MINOR, line_total
from shared.numbering import next_number
from shared.outbox import Outbox


def _check_delivery_date(clock: Clock, delivery_date: date | None) -> None:
    today = clock.today()
    if delivery_date is not None and delivery_date < today:
        raise DeliveryDateInPast(today.isoformat())


def _priced_lines(lines: Sequence[OrderLineIn]) -> tuple[list[OrderLine], int]:
    """Order lines with their half-even totals, and the order total; refuses absurd amounts."""
    priced, errors, total = [], [], 0
    for i, line in enumerate(lines):
        amount = line_total(line.quantity, line.unit_price_minor)
        if amount > MAX_MINOR:
            errors.append({"field": f"lines[{i}]",
                           "message": f"quantity × unit_price_minor exceeds {MAX_MINOR} minor units"})
        total += amount
        priced.append(OrderLine(
            position=i + 1, sku=line.sku, name=line.name, specification=line.specification,
            quantity=line.quantity, unit_price_minor=line.unit_price_minor,
            quality_standard=line.quality_standard, total_minor=amount))
    if not errors and total > MAX_MINOR:
        errors.append({"field": "lines", "message": f"order total exceeds {MAX_MINOR} minor units"})
    if errors:
        raise AmountTooLarge(errors)
    return priced, total


async def get_visible(session: AsyncSession, principal: Principal, order_id: str) -> Order:
    """The order, or 404 when it does not exist or belongs to another salesperson."""
    order = await repository.get_order(session, order_id)
    if order is None or not principal.can_see(order.salesperson_id):
        raise OrderNotFound(order_id)
    return order


async def create_order(*, session: AsyncSession, ctx: OrdersContext, principal: Principal,
                       data: OrderCreate) -> Order:
    """Create a draft order for a customer credit knows; its salesperson defaults to the customer's."""
    visible, _ = principal.salesperson_scope(data.salesperson_id)
    if not visible:  # a sales principal bound to a salesperson may only name its own
        raise NotOwnSalesperson(principal.restricted_to_salesperson or "")
    _check_delivery_date(ctx.clock, data.delivery_date)
    lines, total = _priced_lines(data.lines)
    # Ask credit before writing anything: if it does not answer, nothing is stored.
    customer = await ctx.credit.get_customer(data.customer_id)
    if customer is None or not principal.can_see(customer.salesperson_id):
        raise UnknownCustomer(data.customer_id)
    now = ctx.clock.now()
    order = Order(
        number=await next_number(session, counters, "order", "SO"),
        customer_id=customer.id, salesperson_id=data.salesperson_id or customer.salesperson_id,
        external_ref=data.external_ref, currency=data.currency,
        payment_method=data.payment_method.value if data.payment_method else None,
        payment_terms_days=data.payment_terms_days, delivery_date=data.delivery_date,
        delivery_place=data.delivery_place, total_minor=total, lines=lines,
        created_by=principal.name, created_at=now, updated_at=now)
    session.add(order)
    await session.flush()
    set_committed_value(order, "reviews", [])  # a new order has none: no SELECT to learn it
    await ctx.outbox.enqueue(session, order_event(ctx.clock, "order.created", order))
    return order


async def update_order(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                       order: Order, data: OrderUpdate) -> Order:
    """Change a draft's terms or lines (lines replace the whole list); version + 1."""
    if not lifecycle.allows(order.state, "update"):
        raise NotADraft(order.id, order.state, lifecycle.allowed_triggers(order.state))
    lifecycle.ensure_no_step(order)  # a submit in progress reserves the terms it was given
    changes = data.model_dump(exclude_unset=True, exclude={"lines"})
    changed = sorted(data.model_fields_set)
    if not changed:
        return order
    if "delivery_date" in changes:
        _check_delivery_date(clock, changes["delivery_date"])
    if changes.get("payment_method") is not None:
        changes["payment_method"] = changes["payment_method"].value
    lines: list[OrderLine] | None = None
    if data.lines is not None:
        lines, changes["total_minor"] = _priced_lines(data.lines)
    if not await repository.bump_draft_version(session, order.id, order.version,
                                               {**changes, "updated_at": clock.now()}):
        raise OrderChanged(order.id)
    if lines is not None:
        order.lines.clear()
        await session.flush()  # delete the old lines before their positions are reused
        order.lines.extend(lines)
        await session.flush()
    await session.refresh(order)
    await outbox.enqueue(session, order_event(clock, "order.updated", order, changed=changed))
    return order


# --- The lifecycle ------------------------------------------------------------------------

IfMatch = Callable[[int], None]


def no_if_match(version: int) -> None:
    """The caller sent no `If-Match` (workers, internal calls): any version will do."""


async def lock(session: AsyncSession, order: Order) -> Order:
    """Re-read a visible order under its row lock, so one transition at a time changes it."""
    locked = await repository.lock_order(session, order.id)
    if locked is None:
        raise OrderNotFound(order.id)
    return locked


after_transition = lifecycle.after_transition


async def _resume_or_lock(env: Env, order: Order, kind: str) -> tuple[Order, dict[str, Any] | None]:
    """The order under its lock, and its pending step of `kind` if a retry should resume it."""
    order = await lock(env.session, order)
    return order, steps.pending(order, kind)


def _same_request(step: dict[str, Any], what: str, given: Any, stored_field: str) -> None:
    """A retry may resume a pending step only with what the step was begun with."""
    stored = step["args"].get(stored_field)
    if given is not None and given != stored:
        raise Conflict(f"A {step['kind'].replace('_', '-')} of this order is in progress with "
                       f"{what} {stored}; retry with that {what} (or none).")


async def submit_order(*, env: Env, order: Order, if_match: IfMatch = no_if_match) -> Order:
    """draft → in_review after the preliminary check; credit orders ask for a reservation."""
    profile, asked = None, False
    for _ in range(2):  # a pending submit seen before the lock may have finished meanwhile
        if steps.pending(order, "submit") is None:
            lifecycle.ensure_allowed(order, "submit")
            await checkpoint(env.session)
            profile, asked = await env.ctx.credit.get_profile(order.customer_id), True  # no answer: 503
        order, step = await _resume_or_lock(env, order, "submit")
        if step is not None or asked:
            break
    if step is None:
        if not asked:
            raise Conflict("The order's submit was finishing while this one began; retry it.")
        if_match(order.version)
        args = {"today": env.ctx.clock.today().isoformat(),
                "profile": profile.model_dump() if profile is not None else None,
                "key": credit_blocks.reservation_key(order),
                "reservation": steps.reservation_request(order)}
        lifecycle.check(order, "submit", steps.submit_facts(env.ctx.settings, args, None))
        if not credit_blocks.needs_reservation(order):
            await lifecycle.fire(order, "submit", facts=steps.submit_facts(env.ctx.settings, args, None),
                                 effects=env.effects())
            return await after_transition(env.session, order)
        step = await steps.begin(env, order, "submit", args)
    return await steps.run(env, order.id, step)


def check_reviewer(principal: Principal, department: str, settings: OrdersSettings) -> None:
    """The department must be one that reviews orders, and the caller must hold its role."""
    if department not in settings.review_departments:
        raise UnknownDepartment(department, list(settings.review_departments))
    if not principal.has(department):
        raise NotTheDepartment(department)


async def review_order(*, session: AsyncSession, ctx: OrdersContext, principal: Principal, order: Order,
                       department: str, decision: str, comment: str | None) -> Order:
    """Store a department's opinion; a reject rejects, the last approval (with credit) approves."""
    check_reviewer(principal, department, ctx.settings)
    if decision == "reject" and not comment:
        raise ReasonRequired("comment", "A rejection needs a comment saying why.")
    lifecycle.ensure_allowed(order, "review")
    opinion = Opinion(department, decision, comment)
    opinions = {**await lifecycle.opinions(session, order), department: opinion}
    facts = Facts(required_departments=tuple(ctx.settings.review_departments), opinions=opinions)
    await lifecycle.fire(order, "review", facts=facts, opinion=opinion,
                         effects=ctx.effects(session, principal.name))
    return await after_transition(session, order)


async def approve_order(*, session: AsyncSession, ctx: OrdersContext, actor: str, order: Order) -> Order:
    """in_review → approved when every department approved and credit reserved (or not needed)."""
    lifecycle.ensure_allowed(order, "approve")
    facts = Facts(required_departments=tuple(ctx.settings.review_departments),
                  opinions=await lifecycle.opinions(session, order))
    await lifecycle.fire(order, "approve", facts=facts, effects=ctx.effects(session, actor))
    return await after_transition(session, order)


async def recheck_credit(*, env: Env, order: Order, if_match: IfMatch = no_if_match) -> Order:
    """Ask credit again (say, after a guarantee or a limit change): approve, reject, or wait.

    Each recheck asks under a key of its own (the order's version moves with every change),
    so credit decides anew; no answer → 503, and the recheck finishes once credit answers.
    """
    order, step = await _resume_or_lock(env, order, "credit_recheck")
    if step is None:
        if_match(order.version)
        lifecycle.ensure_allowed(order, "credit_recheck")
        if not credit_blocks.needs_reservation(order):
            facts = Facts(required_departments=tuple(env.ctx.settings.review_departments),
                          opinions=await lifecycle.opinions(env.session, order),
                          credit=credit_blocks.not_required_block())
            await lifecycle.fire(order, "credit_recheck", facts=facts, effects=env.effects())
            return await after_transition(env.session, order)
        step = await steps.begin(env, order, "credit_recheck", {
            "key": f"{credit_blocks.reservation_key(order)}:recheck:v{order.version}",
            "reservation": steps.reservation_request(order)})
    return await steps.run(env, order.id, step)


async def revise_order(*, env: Env, order: Order, reason: str | None,
                       if_match: IfMatch = no_if_match) -> Order:
    """rejected → draft as revision + 1; credit's reservation is given back first."""
    order, step = await _resume_or_lock(env, order, "revise")
    if step is None:
        if_match(order.version)
        lifecycle.ensure_allowed(order, "revise")
        if not steps.needs_release(order.credit or {}):
            await lifecycle.fire(order, "revise", facts=Facts(credit=order.credit), reason=reason,
                                 effects=env.effects())
            return await after_transition(env.session, order)
        step = await steps.begin(env, order, "revise", {
            "reason": reason, "credit": order.credit,
            "reservation": steps.reservation_request(order)})
    return await steps.run(env, order.id, step)


async def cancel_order(*, env: Env, order: Order, reason: str,
                       if_match: IfMatch = no_if_match) -> Order:
    """Cancel before fulfilment; the reservation is given back.

    An order invoiced at contract (prepaid) has what is left of its invoice credited — refused
    while anything was paid on it; ledger is asked for the balance before anything changes
    (503 if it does not answer). An open change request of the order is withdrawn with it.
    """
    balance, asked = None, False
    for _ in range(2):  # the invoice of a prepaid contract signed meanwhile: ask ledger again
        if steps.pending(order, "cancel") is None:
            lifecycle.ensure_allowed(order, "cancel")
            if order.invoice_id is not None:
                await checkpoint(env.session)
                balance, asked = await env.ctx.ledger.order_balance(order.id), True  # no answer: 503
        order, step = await _resume_or_lock(env, order, "cancel")
        if step is not None or order.invoice_id is None or asked:
            break
    if step is None:
        if order.invoice_id is not None and not asked:
            raise Conflict("The order's cancel was finishing while this one began; retry it.")
        if_match(order.version)
        args: dict[str, Any] = {"reason": reason, "credit": order.credit,
                                "reservation": steps.reservation_request(order),
                                "balance": None, "credit_note": None}
        if order.invoice_id is not None:
            args["balance"] = {"paid_minor": balance.paid_minor if balance else 0,
                               "outstanding_minor": balance.outstanding_minor if balance else 0}
        facts = steps.cancel_facts(args, order.credit)
        lifecycle.check(order, "cancel", facts)
        owed_or_paid = (facts.outstanding_minor or 0) + (facts.invoice_paid_minor or 0)
        if order.invoice_id is not None and owed_or_paid > 0:
            args["credit_note"] = {
                "invoice_id": order.invoice_id, "amount_minor": owed_or_paid,
                "paid_to_unapplied": bool(facts.invoice_paid_minor),
                "reason": f"Order {order.number} cancelled: {reason or ''}".strip()[:400],
                "idempotency_key": f"cancel:{order.id}"}
        if args["credit_note"] is None and not steps.needs_release(order.credit or {}):
            return await steps.finish_now(env, order, "cancel", args, {"credit": order.credit})
        step = await steps.begin(env, order, "cancel", args)
    return await steps.run(env, order.id, step)


async def sign_contract(*, env: Env, order: Order, contract_number: str, signed_at: datetime,
                        if_match: IfMatch = no_if_match) -> Order:
    """approved → contracted with the signed contract's number and time; the reservation stays.

    A prepaid order is invoiced now, due the day it was signed (ledger down: 503, and the
    contract is recorded once ledger answers).
    """
    order, step = await _resume_or_lock(env, order, "sign_contract")
    if step is not None:
        _same_request(step, "contract number", contract_number, "contract_number")
        _same_request(step, "signing time", signed_at.isoformat(), "signed_at")
        return await steps.run(env, order.id, step)
    if_match(order.version)
    lifecycle.ensure_allowed(order, "sign_contract")
    if signed_at > env.ctx.clock.now():
        raise SignedInFuture(env.ctx.clock.now().isoformat())
    lifecycle.check(order, "sign_contract", Facts())
    if order.payment_method != PaymentMethod.prepaid:
        await lifecycle.fire(order, "sign_contract", facts=Facts(), contract_number=contract_number,
                             signed_at=signed_at, effects=env.effects())
        return await after_transition(env.session, order)
    step = await steps.begin(env, order, "sign_contract", {
        "contract_number": contract_number, "signed_at": signed_at.isoformat(),
        "invoice": steps.invoice_body(order, amount_minor=order.total_minor, issued_at=signed_at,
                                      due_date=signed_at.date())})
    return await steps.run(env, order.id, step)


async def start_fulfillment(*, env: Env, order: Order, if_match: IfMatch = no_if_match) -> Order:
    """contracted → in_fulfillment; a prepaid order only once ledger shows it paid (asked before
    the lock: no answer is 503 and nothing changes)."""
    lifecycle.ensure_allowed(order, "start_fulfillment")
    facts = Facts()
    if order.payment_method == PaymentMethod.prepaid:
        await checkpoint(env.session)
        balance = await env.ctx.ledger.order_balance(order.id)
        facts.ledger_paid = balance is not None and balance.outstanding_minor == 0
    order = await lock(env.session, order)
    if_match(order.version)
    await lifecycle.fire(order, "start_fulfillment", facts=facts, effects=env.effects())
    return await after_transition(env.session, order)


def _line_quantities(order: Order, items: Sequence[Any], room: Callable[[OrderLine], Decimal],
                     room_says: str, refused: str) -> list[tuple[OrderLine, Decimal]]:
    """Check quantities per line against `room(line)`; lists every problem at once."""
    lines = {line.id: line for line in order.lines}
    wanted: dict[str, Decimal] = {}
    errors: list[dict[str, str]] = []
    for i, item in enumerate(items):
        line = lines.get(item.line_id)
        if line is None:
            errors.append({"field": f"lines[{i}].line_id", "message": "not a line of this order"})
            continue
        if item.line_id in wanted:
            errors.append({"field": f"lines[{i}].line_id", "message": "listed twice"})
            continue
        left = room(line)
        if item.quantity > left:
            errors.append({"field": f"lines[{i}].quantity",
                           "message": f"only {left.quantize(Decimal('0.001'))} {room_says}"})
        wanted[item.line_id] = item.quantity
    if errors:
        raise ValidationFailed(refused, errors=errors)
    return [(lines[line_id], quantity) for line_id, quantity in wanted.items()]


def _apply_delivery(order: Order, data: DeliveryCreate) -> list[tuple[OrderLine, Decimal]]:
    """Delivered quantities never exceed what is left of each line."""
    return _line_quantities(order, data.lines, lambda line: line.quantity - line.delivered_quantity,
                            "left to deliver", "The delivery does not fit the order.")


async def record_delivery(*, session: AsyncSession, ctx: OrdersContext, principal: Principal, order: Order,
                          data: DeliveryCreate) -> Order:
    """Record a (partial) delivery; the last one in full moves the order to delivered."""
    lifecycle.ensure_allowed(order, "deliver")
    if data.delivered_at > ctx.clock.now():
        raise ValidationFailed("A delivery cannot be recorded before it happens.", errors=[
            {"field": "delivered_at", "message": f"must be {ctx.clock.now().isoformat()} or earlier"}])
    delivered = _apply_delivery(order, data)
    now = ctx.clock.now()
    delivery = OrderDelivery(order_id=order.id, delivered_at=data.delivered_at,
                             recorded_by=principal.name, recorded_at=now, lines=[
                                 OrderDeliveryLine(line_id=line.id, quantity=quantity)
                                 for line, quantity in delivered])
    session.add(delivery)
    for line, quantity in delivered:
        line.delivered_quantity += quantity
    open_changes = await repository.open_change_request_numbers(session, order.id)
    await lifecycle.fire(order, "deliver", facts=Facts(open_change_requests=open_changes),
                         reason=f"delivery {delivery.id}", effects=ctx.effects(session, principal.name))
    return await after_transition(session, order)


async def settle_order(*, env: Env, order: Order, due_date: date | None,
                       if_match: IfMatch = no_if_match) -> Order:
    """delivered → invoiced: ledger issues the invoice, credit converts the reservation.

    The invoice's issue time and due date are fixed at the first attempt, so every retry asks
    ledger for the same invoice. Either service not answering: 503, and the settlement
    finishes once it answers (a retry resumes it; so does the recovery worker).
    """
    order, step = await _resume_or_lock(env, order, "settle")
    if step is not None:
        _same_request(step, "due date", due_date.isoformat() if due_date else None, "due_date")
        return await steps.run(env, order.id, step)
    if_match(order.version)
    lifecycle.ensure_allowed(order, "settle")
    today = env.ctx.clock.today()
    if due_date is None:
        due_date = today + timedelta(days=order.payment_terms_days or 0)
    elif due_date < today:
        raise ValidationFailed("The due date cannot be before the settlement date.", errors=[
            {"field": "due_date", "message": f"must be {today.isoformat()} or later"}])
    facts = Facts(open_change_requests=await repository.open_change_request_numbers(
        env.session, order.id))
    lifecycle.check(order, "settle", facts)
    credit = order.credit or {}
    reservation_id = credit["reservation_id"] if credit_blocks.holds_reservation(credit) else None
    invoice = None if order.invoice_id is not None else steps.invoice_body(  # prepaid: at contract
        order, amount_minor=terms.settlement_amount(order), issued_at=env.ctx.clock.now(),
        due_date=due_date)
    step = await steps.begin(env, order, "settle", {
        "order_id": order.id, "due_date": due_date.isoformat(), "invoice_id": order.invoice_id,
        "invoice": invoice, "reservation_id": reservation_id})
    return await steps.run(env, order.id, step)


async def order_balance_of(env: Env, order: Order) -> int | None:
    """What ledger says is outstanding on the order (asked with no transaction open)."""
    await checkpoint(env.session)
    balance = await env.ctx.ledger.order_balance(order.id)
    return balance.outstanding_minor if balance is not None else None


async def close_order(*, session: AsyncSession, ctx: OrdersContext, actor: str, order: Order,
                      outstanding_minor: int | None, reason: str | None = None) -> Order:
    """invoiced → closed once ledger shows nothing outstanding; `order` is locked, and ledger was
    asked before the lock (ledger down: 503, no change)."""
    lifecycle.ensure_allowed(order, "close")
    facts = Facts(outstanding_minor=outstanding_minor,
                  open_exceptions=await repository.count_open_exceptions(session, order.id),
                  open_change_requests=await repository.open_change_request_numbers(
                      session, order.id))
    await lifecycle.fire(order, "close", facts=facts, reason=reason, effects=ctx.effects(session, actor))
    return await after_transition(session, order)


# --- Returns ------------------------------------------------------------------------------

RETURNABLE_STATES = (OrderState.delivered, OrderState.invoiced)


def _returned_lines(order: Order, data: ReturnCreate) -> list[tuple[OrderLine, Decimal]]:
    """Returned quantities never exceed what was delivered and not returned yet."""
    return _line_quantities(order, data.lines,
                            lambda line: line.delivered_quantity - line.returned_quantity,
                            "delivered and not returned",
                            "The return does not fit what was delivered.")


async def record_return(*, env: Env, order: Order, data: ReturnCreate,
                        if_match: IfMatch = no_if_match) -> OrderReturn:
    """Goods back after delivery; on an invoiced order ledger credits their value first.

    The return's id follows from the order's version and is fixed with the step, so every
    attempt asks ledger with the same key (`return:{id}`) and it never credits twice; ledger
    down: 503, and the return is recorded once ledger answers.
    """
    order, step = await _resume_or_lock(env, order, "return")
    if step is not None:
        asked = [[line.line_id, str(line.quantity.quantize(Decimal("0.001")))] for line in data.lines]
        if (asked, data.reason) != (step["args"]["lines"], step["args"]["reason"]):
            raise StepInProgress(order.number, step)  # another return is half done
        return await steps.run(env, order.id, step)
    if_match(order.version)
    if order.state not in RETURNABLE_STATES:
        raise InvalidTransition(
            f"Order {order.number} is {order.state}; goods can be returned once delivered.",
            state=order.state, allowed=lifecycle.allowed_triggers(order.state))
    lifecycle.ensure_no_step(order)
    returned = _returned_lines(order, data)
    amount = sum(line_total(q, line.unit_price_minor) for line, q in returned)
    return_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"o2c:orders:{order.id}:return:v{order.version}"))
    if order.invoice_id is None or amount == 0:  # before settlement: settle invoices less
        return await steps.keep_return(env, order, return_id=return_id, reason=data.reason,
                                       lines=returned, credit_note_id=None)
    step = await steps.begin(env, order, "return", {
        "return_id": return_id, "reason": data.reason,
        "lines": [[line.id, str(q.quantize(Decimal("0.001")))] for line, q in returned],
        "credit_note": {"invoice_id": order.invoice_id, "amount_minor": amount,
                        "reason": f"Return: {data.reason}", "idempotency_key": f"return:{return_id}"}})
    return await steps.run(env, order.id, step)


# --- Exceptions ---------------------------------------------------------------------------


def _exception_event(clock: Clock, type_: str, order: Order, exc: OrderException,
                     **extra: Any) -> Event:
    return order_event(clock, type_, order, exception_id=exc.id, kind=exc.kind,
                       owner_department=exc.owner_department, due_at=exc.due_at.isoformat(),
                       state=order.state, **extra)


async def open_exception(*, session: AsyncSession, ctx: OrdersContext, principal: Principal, order: Order,
                         data: ExceptionCreate) -> OrderException:
    """Open an exception on an order that is not closed or cancelled; it blocks close."""
    if order.state in lifecycle.FINAL_STATES:
        raise InvalidTransition(
            f"Order {order.number} is {order.state}; exceptions cannot be opened on it.",
            state=order.state, allowed=lifecycle.allowed_triggers(order.state))
    if data.owner_department not in ctx.settings.review_departments:
        raise ValidationFailed(f"{data.owner_department} is not a department.", errors=[{
            "field": "owner_department",
            "message": f"must be one of {', '.join(ctx.settings.review_departments)}"}])
    exc = OrderException(order_id=order.id, kind=data.kind.value, description=data.description,
                         owner_department=data.owner_department, due_at=data.due_at,
                         opened_by=principal.name, opened_at=ctx.clock.now())
    session.add(exc)
    await session.flush()
    await ctx.outbox.enqueue(session, _exception_event(
        ctx.clock, "order.exception_opened", order, exc, description=exc.description))
    return exc


async def resolve_exception(*, session: AsyncSession, ctx: OrdersContext, principal: Principal,
                            order: Order, exception_id: str,
                            resolution: str) -> OrderException:
    """Resolve an open exception (resolving it again is a conflict)."""
    exc = await repository.get_exception(session, order.id, exception_id)
    if exc is None:
        raise NotFound(f"Order {order.number} has no exception {exception_id}.")
    if exc.status != "open":
        raise Conflict(f"Exception {exception_id} was already resolved.")
    exc.status, exc.resolution = "resolved", resolution
    exc.resolved_by, exc.resolved_at = principal.name, ctx.clock.now()
    await session.flush()
    await ctx.outbox.enqueue(session, _exception_event(
        ctx.clock, "order.exception_resolved", order, exc, resolution=resolution))
    return exc


async def scan_overdue_exceptions(*, session: AsyncSession, ctx: OrdersContext, as_of: datetime) -> list[str]:
    """Emit `order.exception_overdue` once per open exception past its due time."""
    reported = []
    for exc in await repository.claim_overdue_exceptions(session, as_of=as_of):
        order = await repository.get_order(session, exc.order_id)
        if order is None:
            continue
        exc.overdue_notified_at = ctx.clock.now()
        await ctx.outbox.enqueue(session, _exception_event(
            ctx.clock, "order.exception_overdue", order, exc, as_of=as_of.isoformat()))
        reported.append(exc.id)
    await session.flush()
    return reported


async def history(session: AsyncSession, order: Order, *, limit: int,
                  after_seq: int | None) -> list[OrderHistory]:
    """The order's transitions, oldest first."""
    return await repository.list_history(session, order.id, limit=limit, after_seq=after_seq)
