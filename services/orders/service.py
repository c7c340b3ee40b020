"""Use cases of the orders service: lock → gather facts → fire the machine → outbox event.

Transitions lock the order row first (`FOR UPDATE` on PostgreSQL; on SQLite the request's
write transaction began IMMEDIATE, so writers are serialized), gather what the guards need —
credit's answers included — and fire one trigger of `lifecycle`, which changes the order,
writes its history and enqueues its event in the same transaction.

Credit at submit, a deliberate split: the preliminary read of the customer's credit profile
(currency, policy, blocked) fails closed — if credit does not answer, submit is 503
`dependency_unavailable` and nothing changes, because those checks decide whether the order
may enter review at all. The reservation that follows degrades instead: without an answer
the order enters review with credit `pending`, a worker asks again with the same idempotency
key, and approval waits (`guard_failed`, guard `credit_reserved`) until credit reserved.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.orders import change_lifecycle, lifecycle, repository
from services.orders.clients import CreditClient, LedgerClient
from services.orders.config import OrdersSettings
from services.orders.errors import (
    AmountTooLarge,
    DeliveryDateInPast,
    NotADraft,
    NotTheDepartment,
    OrderChanged,
    OrderNotFound,
    ReasonRequired,
    SignedInFuture,
    UnknownCustomer,
    UnknownDepartment,
)
from services.orders.lifecycle import Effects, Facts, Opinion, order_event
from services.orders.models import (
    CreditStatus,
    Order,
    OrderDelivery,
    OrderDeliveryLine,
    OrderException,
    OrderHistory,
    OrderLine,
    OrderReturn,
    OrderReturnLine,
    OrderState,
    PaymentMethod,
    counters,
)
from services.orders.schemas import (
    DeliveryCreate,
    ExceptionCreate,
    OrderCreate,
    OrderLineIn,
    OrderUpdate,
    ReturnCreate,
)
from shared.auth import Principal
from shared.clock import Clock
from shared.db import Database
from shared.errors import (
    Conflict,
    DependencyUnavailable,
    GuardFailed,
    InvalidTransition,
    NotFound,
    ValidationFailed,
)
from shared.events import Event
from shared.money import MAX_MINOR, line_total
from shared.numbering import next_number
from shared.observability import work_request_id
from shared.outbox import Outbox

log = logging.getLogger("o2c.orders")


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


async def create_order(*, session: AsyncSession, outbox: Outbox, clock: Clock, credit: CreditClient,
                       principal: Principal, data: OrderCreate) -> Order:
    """Create a draft order for a customer credit knows; its salesperson is the customer's."""
    _check_delivery_date(clock, data.delivery_date)
    lines, total = _priced_lines(data.lines)
    # Ask credit before writing anything: if it does not answer, nothing is stored.
    customer = await credit.get_customer(data.customer_id)
    if customer is None or not principal.can_see(customer.salesperson_id):
        raise UnknownCustomer(data.customer_id)
    now = clock.now()
    order = Order(
        number=await next_number(session, counters, "order", "SO"),
        customer_id=customer.id, salesperson_id=customer.salesperson_id,
        external_ref=data.external_ref, currency=data.currency,
        payment_method=data.payment_method.value if data.payment_method else None,
        payment_terms_days=data.payment_terms_days, delivery_date=data.delivery_date,
        delivery_place=data.delivery_place, total_minor=total, lines=lines,
        created_by=principal.name, created_at=now, updated_at=now)
    session.add(order)
    await session.flush()
    await session.refresh(order, attribute_names=["reviews"])
    await outbox.enqueue(session, order_event(clock, "order.created", order))
    return order


async def update_order(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                       order: Order, data: OrderUpdate) -> Order:
    """Change a draft's terms or lines (lines replace the whole list); version + 1."""
    if not lifecycle.allows(order.state, "update"):
        raise NotADraft(order.id, order.state, lifecycle.allowed_triggers(order.state))
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


async def lock(session: AsyncSession, order: Order) -> Order:
    """Re-read a visible order under its row lock, so one transition at a time changes it."""
    locked = await repository.lock_order(session, order.id)
    if locked is None:
        raise OrderNotFound(order.id)
    return locked


def lifecycle_effects(*, session: AsyncSession, outbox: Outbox, clock: Clock, settings: OrdersSettings,
             actor: str, credit: CreditClient | None = None,
             ledger: LedgerClient | None = None) -> Effects:
    return Effects(session=session, outbox=outbox, clock=clock, actor=actor, credit=credit,
                   ledger=ledger,
                   review_sla_working_days=settings.review_sla_working_days,
                   holidays=tuple(settings.holidays))


async def _opinions(session: AsyncSession, order: Order) -> dict[str, Opinion]:
    rows = await repository.reviews_of(session, order.id, order.revision)
    return {r.department: Opinion(r.department, r.decision, r.comment) for r in rows}


async def after_transition(session: AsyncSession, order: Order) -> Order:
    await session.flush()
    await session.refresh(order, attribute_names=["reviews"])
    return order


async def submit_order(*, session: AsyncSession, outbox: Outbox, clock: Clock, credit: CreditClient,
                       settings: OrdersSettings, principal: Principal, order: Order) -> Order:
    """draft → in_review after the preliminary check; credit orders ask for a reservation."""
    lifecycle.ensure_allowed(order, "submit")
    profile = await credit.get_profile(order.customer_id)  # fails closed: 503, nothing changes
    facts = Facts(today=clock.today(), profile=profile, customer_known=profile is not None,
                  required_departments=tuple(settings.review_departments))
    await lifecycle.fire(order, "submit", facts=facts, effects=lifecycle_effects(
        session=session, outbox=outbox, clock=clock, settings=settings, actor=principal.name,
        credit=credit))
    return await after_transition(session, order)


def check_reviewer(principal: Principal, department: str, settings: OrdersSettings) -> None:
    """The department must be one that reviews orders, and the caller must hold its role."""
    if department not in settings.review_departments:
        raise UnknownDepartment(department, list(settings.review_departments))
    if not principal.has(department):
        raise NotTheDepartment(department)


async def review_order(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                       settings: OrdersSettings, principal: Principal, order: Order,
                       department: str, decision: str, comment: str | None) -> Order:
    """Store a department's opinion; a reject rejects, the last approval (with credit) approves."""
    check_reviewer(principal, department, settings)
    if decision == "reject" and not comment:
        raise ReasonRequired("comment", "A rejection needs a comment saying why.")
    lifecycle.ensure_allowed(order, "review")
    opinion = Opinion(department, decision, comment)
    opinions = {**await _opinions(session, order), department: opinion}
    facts = Facts(required_departments=tuple(settings.review_departments), opinions=opinions)
    await lifecycle.fire(order, "review", facts=facts, opinion=opinion, effects=lifecycle_effects(
        session=session, outbox=outbox, clock=clock, settings=settings, actor=principal.name))
    return await after_transition(session, order)


async def approve_order(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                        settings: OrdersSettings, actor: str, order: Order) -> Order:
    """in_review → approved when every department approved and credit reserved (or not needed)."""
    lifecycle.ensure_allowed(order, "approve")
    facts = Facts(required_departments=tuple(settings.review_departments),
                  opinions=await _opinions(session, order))
    await lifecycle.fire(order, "approve", facts=facts, effects=lifecycle_effects(
        session=session, outbox=outbox, clock=clock, settings=settings, actor=actor))
    return await after_transition(session, order)


async def recheck_credit(*, session: AsyncSession, outbox: Outbox, clock: Clock, credit: CreditClient,
                         settings: OrdersSettings, principal: Principal, order: Order) -> Order:
    """Ask credit again (say, after a guarantee or a limit change): approve, reject, or wait."""
    lifecycle.ensure_allowed(order, "credit_recheck")
    if order.payment_method != "credit" or order.total_minor == 0:
        answer = {"status": CreditStatus.not_required.value, "reservation_id": None, "reasons": []}
    else:
        # A new key per attempt (the version moves with every change), so credit decides anew;
        # no answer → 503 and nothing changes.
        reply = await credit.reserve(
            customer_id=order.customer_id, order_id=order.id, amount_minor=order.total_minor,
            currency=order.currency,
            idempotency_key=f"{lifecycle.reservation_key(order)}:recheck:v{order.version}")
        answer = lifecycle.credit_block(reply)
    facts = Facts(required_departments=tuple(settings.review_departments),
                  opinions=await _opinions(session, order), credit=answer)
    await lifecycle.fire(order, "credit_recheck", facts=facts, effects=lifecycle_effects(
        session=session, outbox=outbox, clock=clock, settings=settings, actor=principal.name))
    return await after_transition(session, order)


async def revise_order(*, session: AsyncSession, outbox: Outbox, clock: Clock, credit: CreditClient,
                       settings: OrdersSettings, principal: Principal, order: Order,
                       reason: str | None) -> Order:
    """rejected → draft as revision + 1; the reservation is released (503 if credit is down)."""
    await lifecycle.fire(order, "revise", facts=Facts(), reason=reason, effects=lifecycle_effects(
        session=session, outbox=outbox, clock=clock, settings=settings, actor=principal.name,
        credit=credit))
    return await after_transition(session, order)


async def cancel_order(*, session: AsyncSession, outbox: Outbox, clock: Clock, credit: CreditClient,
                       settings: OrdersSettings, principal: Principal, order: Order,
                       reason: str, ledger: LedgerClient | None = None) -> Order:
    """Cancel before fulfilment; the reservation is released (503 if credit is down).

    An order invoiced at contract (prepaid) has its invoice credited in full — refused while
    anything was paid on it (503 if ledger is down). An open change request of the order is
    withdrawn with it (it could never be applied).
    """
    lifecycle.ensure_allowed(order, "cancel")
    facts = Facts()
    if order.invoice_id is not None:
        if ledger is None:
            raise DependencyUnavailable("The ledger service is not configured.", dependency="ledger")
        balance = await ledger.order_balance(order.id)  # no answer: 503, nothing changes
        facts.invoice_paid_minor = balance.paid_minor if balance is not None else 0
        facts.outstanding_minor = balance.outstanding_minor if balance is not None else 0
    await lifecycle.fire(order, "cancel", facts=facts, reason=reason, effects=lifecycle_effects(
        session=session, outbox=outbox, clock=clock, settings=settings, actor=principal.name,
        credit=credit, ledger=ledger))
    await change_lifecycle.withdraw_open(session=session, outbox=outbox, clock=clock,
                                         actor=principal.name, order=order,
                                         reason=f"order {order.number} cancelled: {reason}")
    return await after_transition(session, order)


async def sign_contract(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                        settings: OrdersSettings, principal: Principal, order: Order,
                        contract_number: str, signed_at: datetime,
                        ledger: LedgerClient | None = None) -> Order:
    """approved → contracted with the signed contract's number and time; the reservation stays.

    A prepaid order is invoiced now, due the day it was signed (ledger down: 503, no change).
    """
    lifecycle.ensure_allowed(order, "sign_contract")
    if signed_at > clock.now():
        raise SignedInFuture(clock.now().isoformat())
    await lifecycle.fire(order, "sign_contract", facts=Facts(), contract_number=contract_number,
                         signed_at=signed_at, effects=lifecycle_effects(
                             session=session, outbox=outbox, clock=clock, settings=settings,
                             actor=principal.name, ledger=ledger))
    return await after_transition(session, order)


async def start_fulfillment(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                            ledger: LedgerClient, settings: OrdersSettings, principal: Principal,
                            order: Order) -> Order:
    """contracted → in_fulfillment; a prepaid order only once ledger shows it paid."""
    lifecycle.ensure_allowed(order, "start_fulfillment")
    facts = Facts()
    if order.payment_method == PaymentMethod.prepaid:
        balance = await ledger.order_balance(order.id)  # no answer: 503, nothing changes
        facts.ledger_paid = balance is not None and balance.outstanding_minor == 0
    await lifecycle.fire(order, "start_fulfillment", facts=facts, effects=lifecycle_effects(
        session=session, outbox=outbox, clock=clock, settings=settings, actor=principal.name))
    return await after_transition(session, order)


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


async def record_delivery(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                          settings: OrdersSettings, principal: Principal, order: Order,
                          data: DeliveryCreate) -> Order:
    """Record a (partial) delivery; the last one in full moves the order to delivered."""
    lifecycle.ensure_allowed(order, "deliver")
    if data.delivered_at > clock.now():
        raise ValidationFailed("A delivery cannot be recorded before it happens.", errors=[
            {"field": "delivered_at", "message": f"must be {clock.now().isoformat()} or earlier"}])
    delivered = _apply_delivery(order, data)
    now = clock.now()
    delivery = OrderDelivery(order_id=order.id, delivered_at=data.delivered_at,
                             recorded_by=principal.name, recorded_at=now, lines=[
                                 OrderDeliveryLine(line_id=line.id, quantity=quantity)
                                 for line, quantity in delivered])
    session.add(delivery)
    for line, quantity in delivered:
        line.delivered_quantity += quantity
    open_changes = await repository.open_change_request_numbers(session, order.id)
    await lifecycle.fire(order, "deliver", facts=Facts(open_change_requests=open_changes),
                         reason=f"delivery {delivery.id}", effects=lifecycle_effects(
                             session=session, outbox=outbox, clock=clock, settings=settings,
                             actor=principal.name))
    return await after_transition(session, order)


async def settle_order(*, session: AsyncSession, outbox: Outbox, clock: Clock, credit: CreditClient,
                       ledger: LedgerClient, settings: OrdersSettings, principal: Principal,
                       order: Order, due_date: date | None) -> Order:
    """delivered → invoiced: ledger issues the invoice, credit converts the reservation.

    Either not answering is 503 and the order stays delivered; asking again issues the same
    invoice (ledger is idempotent per order) and converts once.
    """
    lifecycle.ensure_allowed(order, "settle")
    today = clock.today()
    if due_date is None:
        due_date = today + timedelta(days=order.payment_terms_days or 0)
    elif due_date < today:
        raise ValidationFailed("The due date cannot be before the settlement date.", errors=[
            {"field": "due_date", "message": f"must be {today.isoformat()} or later"}])
    open_changes = await repository.open_change_request_numbers(session, order.id)
    await lifecycle.fire(order, "settle", facts=Facts(open_change_requests=open_changes),
                         due_date=due_date, effects=lifecycle_effects(
                             session=session, outbox=outbox, clock=clock, settings=settings,
                             actor=principal.name, credit=credit, ledger=ledger))
    return await after_transition(session, order)


async def close_order(*, session: AsyncSession, outbox: Outbox, clock: Clock, ledger: LedgerClient,
                      settings: OrdersSettings, actor: str, order: Order,
                      reason: str | None = None) -> Order:
    """invoiced → closed once ledger shows nothing outstanding (ledger down: 503, no change)."""
    lifecycle.ensure_allowed(order, "close")
    balance = await ledger.order_balance(order.id)
    facts = Facts(outstanding_minor=balance.outstanding_minor if balance is not None else None,
                  open_exceptions=await repository.count_open_exceptions(session, order.id),
                  open_change_requests=await repository.open_change_request_numbers(
                      session, order.id))
    await lifecycle.fire(order, "close", facts=facts, reason=reason, effects=lifecycle_effects(
        session=session, outbox=outbox, clock=clock, settings=settings, actor=actor))
    return await after_transition(session, order)


async def on_invoice_paid(session: AsyncSession, app: Any, event: Event) -> None:
    """`invoice.paid` from ledger (via notifier): close the order if its guards hold."""
    order_id = str(event.data.get("order_id") or "")
    order = await repository.lock_order(session, order_id) if order_id else None
    if order is None or order.state != OrderState.invoiced:
        log.info("invoice.paid for order %s: nothing to close", order_id or "?")
        return
    state = app.state
    try:
        await close_order(session=session, outbox=state.outbox, clock=state.clock,
                          ledger=LedgerClient(state.http), settings=state.settings,
                          actor=SYSTEM_ACTOR, order=order, reason="invoice paid")
    except GuardFailed as refused:
        log.info("order %s stays invoiced: %s", order.id, refused.detail)


# --- Returns ------------------------------------------------------------------------------

RETURNABLE_STATES = (OrderState.delivered, OrderState.invoiced)


def _returned_lines(order: Order, data: ReturnCreate) -> list[tuple[OrderLine, Decimal]]:
    """Returned quantities never exceed what was delivered and not returned yet."""
    return _line_quantities(order, data.lines,
                            lambda line: line.delivered_quantity - line.returned_quantity,
                            "delivered and not returned",
                            "The return does not fit what was delivered.")


async def record_return(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                        ledger: LedgerClient, principal: Principal, order: Order,
                        data: ReturnCreate) -> OrderReturn:
    """Goods back after delivery; on an invoiced order ledger credits their value (fail closed).

    The return's id follows from the order's version, so a retry after ledger did not answer
    asks ledger with the same key (`return:{id}`) and never credits twice.
    """
    if order.state not in RETURNABLE_STATES:
        raise InvalidTransition(
            f"Order {order.number} is {order.state}; goods can be returned once delivered.",
            state=order.state, allowed=lifecycle.allowed_triggers(order.state))
    returned = _returned_lines(order, data)
    amount = sum(line_total(q, line.unit_price_minor) for line, q in returned)
    return_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"o2c:orders:{order.id}:return:v{order.version}"))
    credit_note_id = None
    if order.invoice_id is not None and amount > 0:  # invoiced (prepaid: since the contract)
        credit_note_id = await ledger.credit_note(
            invoice_id=order.invoice_id, amount_minor=amount, reason=f"Return: {data.reason}",
            idempotency_key=f"return:{return_id}")
    now = clock.now()
    record = OrderReturn(id=return_id, order_id=order.id, reason=data.reason, amount_minor=amount,
                         credit_note_id=credit_note_id, recorded_by=principal.name,
                         recorded_at=now, lines=[OrderReturnLine(line_id=line.id, quantity=q)
                                                 for line, q in returned])
    session.add(record)
    for line, q in returned:
        line.returned_quantity += q
    order.version += 1
    order.updated_at = now
    await session.flush()
    await outbox.enqueue(session, order_event(
        clock, "order.returned", order, return_id=return_id, amount_minor=amount,
        credit_note_id=credit_note_id, reason=data.reason, state=order.state))
    return record


# --- Exceptions ---------------------------------------------------------------------------


def _exception_event(clock: Clock, type_: str, order: Order, exc: OrderException,
                     **extra: Any) -> Event:
    return order_event(clock, type_, order, exception_id=exc.id, kind=exc.kind,
                       owner_department=exc.owner_department, due_at=exc.due_at.isoformat(),
                       state=order.state, **extra)


async def open_exception(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                         settings: OrdersSettings, principal: Principal, order: Order,
                         data: ExceptionCreate) -> OrderException:
    """Open an exception on an order that is not closed or cancelled; it blocks close."""
    if order.state in lifecycle.FINAL_STATES:
        raise InvalidTransition(
            f"Order {order.number} is {order.state}; exceptions cannot be opened on it.",
            state=order.state, allowed=lifecycle.allowed_triggers(order.state))
    if data.owner_department not in settings.review_departments:
        raise ValidationFailed(f"{data.owner_department} is not a department.", errors=[{
            "field": "owner_department",
            "message": f"must be one of {', '.join(settings.review_departments)}"}])
    exc = OrderException(order_id=order.id, kind=data.kind.value, description=data.description,
                         owner_department=data.owner_department, due_at=data.due_at,
                         opened_by=principal.name, opened_at=clock.now())
    session.add(exc)
    await session.flush()
    await outbox.enqueue(session, _exception_event(
        clock, "order.exception_opened", order, exc, description=exc.description))
    return exc


async def resolve_exception(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                            principal: Principal, order: Order, exception_id: str,
                            resolution: str) -> OrderException:
    """Resolve an open exception (resolving it again is a conflict)."""
    exc = await repository.get_exception(session, order.id, exception_id)
    if exc is None:
        raise NotFound(f"Order {order.number} has no exception {exception_id}.")
    if exc.status != "open":
        raise Conflict(f"Exception {exception_id} was already resolved.")
    exc.status, exc.resolution = "resolved", resolution
    exc.resolved_by, exc.resolved_at = principal.name, clock.now()
    await session.flush()
    await outbox.enqueue(session, _exception_event(
        clock, "order.exception_resolved", order, exc, resolution=resolution))
    return exc


async def scan_overdue_exceptions(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                                  as_of: datetime) -> list[str]:
    """Emit `order.exception_overdue` once per open exception past its due time."""
    reported = []
    for exc in await repository.claim_overdue_exceptions(session, as_of=as_of):
        order = await repository.get_order(session, exc.order_id)
        if order is None:
            continue
        exc.overdue_notified_at = clock.now()
        await outbox.enqueue(session, _exception_event(
            clock, "order.exception_overdue", order, exc, as_of=as_of.isoformat()))
        reported.append(exc.id)
    await session.flush()
    return reported


async def history(session: AsyncSession, order: Order, *, limit: int,
                  after_seq: int | None) -> list[OrderHistory]:
    """The order's transitions, oldest first."""
    return await repository.list_history(session, order.id, limit=limit, after_seq=after_seq)


# --- Workers ------------------------------------------------------------------------------

SYSTEM_ACTOR = "system"


async def retry_pending_credit(*, db: Database, outbox: Outbox, clock: Clock, credit: CreditClient,
                               settings: OrdersSettings, limit: int = 100) -> int:
    """Ask credit again for every order whose reservation has no answer; returns how many got one.

    Each order is asked with the idempotency key of its unanswered request, so credit never
    reserves twice; once it answers, the order is approved if its departments already did.
    Stops at the first order credit does not answer for (credit is still down).
    """
    with work_request_id():
        async with db.session(read_only=True) as session:
            order_ids = await repository.orders_awaiting_credit(session, limit=limit)
        answered = 0
        for order_id in order_ids:
            async with db.session() as session, session.begin():
                order = await repository.lock_order(session, order_id, skip_locked=True)
                if order is None or order.state != OrderState.in_review or \
                        (order.credit or {}).get("status") != CreditStatus.pending:
                    continue
                key = (order.credit or {}).get("request_key") or lifecycle.reservation_key(order)
                try:
                    reply = await credit.reserve(
                        customer_id=order.customer_id, order_id=order.id,
                        amount_minor=order.total_minor, currency=order.currency, idempotency_key=key)
                except DependencyUnavailable:
                    log.info("credit still does not answer; %d order(s) wait for a reservation",
                             len(order_ids) - answered)
                    break
                order.credit = lifecycle.credit_block(reply)
                order.version += 1
                order.updated_at = clock.now()
                answered += 1
                await _approve_if_ready(session=session, outbox=outbox, clock=clock,
                                        settings=settings, order=order)
        return answered


async def _approve_if_ready(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                            settings: OrdersSettings, order: Order) -> None:
    """Fire `approve` after a credit answer; its guards refusing just leaves the order in review."""
    try:
        await approve_order(session=session, outbox=outbox, clock=clock, settings=settings,
                            actor=SYSTEM_ACTOR, order=order)
    except GuardFailed as refused:
        log.info("order %s stays in review: %s", order.id, refused.detail)


async def scan_review_deadlines(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                                settings: OrdersSettings, as_of: datetime) -> list[str]:
    """Emit `order.review_overdue` once per revision for orders in review past their deadline."""
    reported = []
    for order in await repository.claim_overdue_reviews(session, as_of=as_of):
        opinions = await _opinions(session, order)
        waiting = [d for d in settings.review_departments if d not in opinions]
        order.review_overdue_notified_at = clock.now()
        await outbox.enqueue(session, order_event(
            clock, "order.review_overdue", order, revision=order.revision,
            review_due_at=order.review_due_at.isoformat() if order.review_due_at else None,
            as_of=as_of.isoformat(), waiting_for=waiting))
        reported.append(order.id)
    await session.flush()
    return reported


async def scan_review_deadlines_once(*, db: Database, outbox: Outbox, clock: Clock,
                                     settings: OrdersSettings) -> list[str]:
    """The periodic scan: one transaction, as of now."""
    with work_request_id():
        async with db.session() as session, session.begin():
            return await scan_review_deadlines(session=session, outbox=outbox, clock=clock,
                                               settings=settings, as_of=clock.now())
