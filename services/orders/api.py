"""Routes of the orders service: parse, authorize, call the service, shape the response."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response, status

from services.orders import lifecycle, repository, service, steps
from services.orders.context import OrdersContext
from services.orders.models import (
    Order,
    OrderException,
    OrderHistory,
    OrderReturn,
    OrderState,
)
from services.orders.schemas import (
    CancelRequest,
    ContractRequest,
    DeliveryCreate,
    DiagramPublic,
    ExceptionCreate,
    ExceptionPublic,
    ExceptionResolve,
    ExceptionScanPublic,
    ExceptionScanRequest,
    HistoryEntryPublic,
    OrderCreate,
    OrderPublic,
    OrderUpdate,
    ReturnCreate,
    ReturnPublic,
    ReviewCreate,
    ReviewSlaScanPublic,
    ReviewSlaScanRequest,
    ReviseRequest,
    SettleRequest,
    StateMachinePublic,
)
from shared.app import Job, job
from shared.auth import CurrentPrincipal, Role, require
from shared.dates import AwareTimestamp
from shared.db import COMMIT_OWNER, SessionDep
from shared.errors import ValidationFailed, problem_responses
from shared.openapi import IF_MATCH
from shared.pagination import (
    Cursor,
    Limit,
    Page,
    decode_cursor,
    decode_time_cursor,
    encode_cursor,
)
from shared.versioning import check_if_match, set_etag

WRITERS = (Role.sales,)
READERS = (Role.sales, Role.finance, Role.production, Role.technical, Role.quality,
           Role.credit_manager, Role.auditor, Role.service)
REVIEWERS = (Role.sales, Role.production, Role.technical, Role.quality, Role.finance)
PRODUCTION = (Role.production,)
FINANCE = (Role.finance,)
CLOSERS = (Role.sales, Role.finance)
DEPARTMENT_ROLES = REVIEWERS  # every department's role: sales, production, technical, quality, finance

router = APIRouter(prefix="/v1", tags=["orders"], responses=problem_responses(401, 403, 422))
lifecycle_router = APIRouter(prefix="/v1", tags=["lifecycle"],
                             responses=problem_responses(401, 403, 422))


async def orders_context(request: Request) -> OrdersContext:
    """The orders context, made once at start-up (app.build_context)."""
    return request.app.state.context


Ctx = Annotated[OrdersContext, Depends(orders_context)]


async def load_order(
    session: SessionDep, principal: CurrentPrincipal,
    order_id: Annotated[str, Path(max_length=36)],
) -> Order:
    return await service.get_visible(session, principal, order_id)


OrderOr404 = Annotated[Order, Depends(load_order)]


async def lock_order(order: OrderOr404, session: SessionDep, request: Request) -> Order:
    """The visible order under its row lock; `If-Match` is checked against the locked version."""
    locked = await service.lock(session, order)
    check_if_match(request, locked.version)
    return locked


LockedOrder = Annotated[Order, Depends(lock_order)]
TRANSITION_ERRORS = problem_responses(404, 409, 412)


async def step_env(request: Request, ctx: Ctx, session: SessionDep,
                   principal: CurrentPrincipal) -> steps.Env:
    """Where a transition that calls credit or ledger runs (steps.py): this request's session,
    clients, principal and Idempotency-Key."""
    owner = getattr(request.state, COMMIT_OWNER, None)
    return steps.Env.of(ctx, session, principal.name,
                        request_key=getattr(owner, "ref", None))


StepEnv = Annotated[steps.Env, Depends(step_env)]


async def if_match(request: Request) -> service.IfMatch:
    """`If-Match` checked against the version of the order once it is locked."""
    return lambda version: check_if_match(request, version)


IfMatchDep = Annotated[service.IfMatch, Depends(if_match)]


@router.post("/orders", status_code=status.HTTP_201_CREATED, response_model=OrderPublic,
             dependencies=[require(*WRITERS)], responses=problem_responses(503))
async def create_order(body: OrderCreate, ctx: Ctx, response: Response,
                       session: SessionDep, principal: CurrentPrincipal) -> Order:
    """Create a draft order for a customer known to credit; totals are computed here."""
    order = await service.create_order(
        session=session, ctx=ctx, principal=principal, data=body)
    response.headers["Location"] = f"/v1/orders/{order.id}"
    set_etag(response, order.version)
    return order


@router.get("/orders", response_model=Page[OrderPublic], dependencies=[require(*READERS)])
async def list_orders(
    session: SessionDep, principal: CurrentPrincipal, limit: Limit = 50, cursor: Cursor = None,
    customer_id: Annotated[str | None, Query(max_length=36)] = None,
    salesperson_id: Annotated[str | None, Query(max_length=64)] = None,
    state: OrderState | None = None,
    created_from: Annotated[AwareTimestamp | None, Query(
        description="Created at or after (ISO 8601 with offset).")] = None,
    created_to: Annotated[AwareTimestamp | None, Query(
        description="Created before (ISO 8601 with offset).")] = None,
    external_ref: Annotated[str | None, Query(max_length=100)] = None,
) -> Page[Order]:
    """List orders, oldest first; sales principals see only their own."""
    visible, salesperson_id = principal.salesperson_scope(salesperson_id)
    if not visible:
        decode_time_cursor(cursor)  # an invalid cursor is refused even when nothing is visible
        return Page(items=[])
    return await repository.list_orders(
        session, limit=limit, cursor=cursor, customer_id=customer_id,
        salesperson_id=salesperson_id, state=state.value if state else None,
        created_from=created_from, created_to=created_to, external_ref=external_ref)


@router.get("/orders/{order_id}", response_model=OrderPublic, dependencies=[require(*READERS)],
            responses=problem_responses(404))
async def get_order(order: OrderOr404, response: Response) -> Order:
    """One order with its lines."""
    set_etag(response, order.version)
    return order


@router.patch("/orders/{order_id}", response_model=OrderPublic, dependencies=[require(*WRITERS)],
              responses=problem_responses(404, 409, 412),
              openapi_extra=IF_MATCH)
async def update_order(order: OrderOr404, body: OrderUpdate, request: Request, ctx: Ctx,
                       response: Response, session: SessionDep) -> Order:
    """Change a draft order; send `If-Match` with the ETag you read to avoid lost updates."""
    check_if_match(request, order.version)
    order = await service.update_order(
        session=session, outbox=ctx.outbox, clock=ctx.clock, order=order, data=body)
    set_etag(response, order.version)
    return order


# --- The lifecycle ------------------------------------------------------------------------


def _shaped(response: Response, order: Order) -> Order:
    set_etag(response, order.version)
    return order


@lifecycle_router.post("/orders/{order_id}/submit", response_model=OrderPublic,
                       dependencies=[require(*WRITERS)],
                       responses={**TRANSITION_ERRORS, **problem_responses(503)},
                       openapi_extra=IF_MATCH)
async def submit_order(order: OrderOr404, response: Response, env: StepEnv,
                       version: IfMatchDep) -> Order:
    """Submit a draft for department review (draft → in_review).

    The preliminary check lists every missing or inconsistent field at once (422, state
    unchanged); a customer blocked in credit is refused (409 `guard_failed`,
    `customer_not_blocked`); if credit cannot be read the answer is 503 and nothing changes.
    Sets `review_due_at`; credit orders ask credit for a reservation — without an answer the
    order still enters review with credit `pending`, and a worker asks again.
    """
    order = await service.submit_order(env=env, order=order, if_match=version)
    return _shaped(response, order)


@lifecycle_router.post("/orders/{order_id}/reviews", response_model=OrderPublic,
                       dependencies=[require(*REVIEWERS)], responses=TRANSITION_ERRORS,
                       openapi_extra=IF_MATCH)
async def review_order(order: LockedOrder, body: ReviewCreate, ctx: Ctx,
                       response: Response, session: SessionDep, principal: CurrentPrincipal) -> Order:
    """Give a department's opinion (the caller must hold that department's role).

    Any rejection moves the order to `rejected` with every reason; the last approval moves it
    to `approved` when credit reserved (or the order is prepaid); otherwise it stays in review.
    """
    order = await service.review_order(
        session=session, ctx=ctx, principal=principal, order=order, department=body.department,
        decision=body.decision.value, comment=body.comment)
    return _shaped(response, order)


@lifecycle_router.post("/orders/{order_id}/approve", response_model=OrderPublic,
                       dependencies=[require(*REVIEWERS)], responses=TRANSITION_ERRORS,
                       openapi_extra=IF_MATCH)
async def approve_order(order: LockedOrder, ctx: Ctx, response: Response,
                        session: SessionDep, principal: CurrentPrincipal) -> Order:
    """Approve a reviewed order (in_review → approved); fired on its own after reviews and credit answers.

    Refused with `guard_failed`: guard `all_departments_approved` names the departments still
    missing, guard `credit_reserved` says what credit answered (or that it has not yet).
    """
    order = await service.approve_order(
        session=session, ctx=ctx, actor=principal.name, order=order)
    return _shaped(response, order)


@lifecycle_router.post("/orders/{order_id}/credit-recheck", response_model=OrderPublic,
                       dependencies=[require(*WRITERS)],
                       responses={**TRANSITION_ERRORS, **problem_responses(503)},
                       openapi_extra=IF_MATCH)
async def recheck_credit(order: OrderOr404, response: Response, env: StepEnv,
                         version: IfMatchDep) -> Order:
    """Ask credit again after a guarantee or limit change: reserved may approve, refused rejects."""
    order = await service.recheck_credit(env=env, order=order, if_match=version)
    return _shaped(response, order)


@lifecycle_router.post("/orders/{order_id}/revise", response_model=OrderPublic,
                       dependencies=[require(*WRITERS)],
                       responses={**TRANSITION_ERRORS, **problem_responses(503)},
                       openapi_extra=IF_MATCH)
async def revise_order(order: OrderOr404, response: Response, env: StepEnv, version: IfMatchDep,
                       body: Annotated[ReviseRequest | None, Body(examples=[
                           {"reason": "Quality standard raised to Class 3."}])] = None) -> Order:
    """Take a rejected order back to draft as revision + 1; credit's reservation is released."""
    order = await service.revise_order(env=env, order=order, reason=body.reason if body else None,
                                       if_match=version)
    return _shaped(response, order)


@lifecycle_router.post("/orders/{order_id}/cancel", response_model=OrderPublic,
                       dependencies=[require(*WRITERS)],
                       responses={**TRANSITION_ERRORS, **problem_responses(503)},
                       openapi_extra=IF_MATCH)
async def cancel_order(order: OrderOr404, body: CancelRequest, response: Response, env: StepEnv,
                       version: IfMatchDep) -> Order:
    """Cancel an order before fulfilment, with a reason; credit's reservation is released.

    A prepaid order invoiced at contract has its invoice credited in full by a ledger credit
    note; what was already paid on it becomes the customer's unapplied cash in ledger, which
    finance refunds (`POST /v1/refunds` there) or applies to another invoice.
    """
    order = await service.cancel_order(env=env, order=order, reason=body.reason, if_match=version)
    return _shaped(response, order)


@lifecycle_router.post("/orders/{order_id}/contract", response_model=OrderPublic,
                       dependencies=[require(*WRITERS)],
                       responses={**TRANSITION_ERRORS, **problem_responses(503)},
                       openapi_extra=IF_MATCH)
async def sign_contract(order: OrderOr404, body: ContractRequest, response: Response,
                        env: StepEnv, version: IfMatchDep) -> Order:
    """Record the signed contract of an approved order (approved → contracted); the reservation stays.

    A prepaid order is invoiced in ledger now, due the day it was signed; production starts
    once ledger shows it paid. If ledger does not answer: 503 and nothing changes.
    """
    order = await service.sign_contract(env=env, order=order, contract_number=body.contract_number,
                                        signed_at=body.signed_at, if_match=version)
    return _shaped(response, order)


@lifecycle_router.post("/orders/{order_id}/start-fulfillment", response_model=OrderPublic,
                       dependencies=[require(*PRODUCTION)],
                       responses={**TRANSITION_ERRORS, **problem_responses(503)},
                       openapi_extra=IF_MATCH)
async def start_fulfillment(order: OrderOr404, response: Response, env: StepEnv,
                            version: IfMatchDep) -> Order:
    """Start production of a contracted order (contracted → in_fulfillment).

    A prepaid order starts only once ledger shows it paid (guard `prepaid_order_paid`); if
    ledger does not answer, 503 and nothing changes.
    """
    order = await service.start_fulfillment(env=env, order=order, if_match=version)
    return _shaped(response, order)


@lifecycle_router.post("/orders/{order_id}/deliveries", response_model=OrderPublic,
                       dependencies=[require(*PRODUCTION)], responses=TRANSITION_ERRORS,
                       openapi_extra=IF_MATCH)
async def record_delivery(order: LockedOrder, body: DeliveryCreate, ctx: Ctx,
                          response: Response, session: SessionDep, principal: CurrentPrincipal) -> Order:
    """Record a delivery of some quantity of some lines; partial deliveries are allowed.

    A line never gets more than ordered − delivered (422, field `lines[i].quantity`); an unknown
    line is 422 too. When every line is delivered in full the order becomes `delivered`.
    """
    order = await service.record_delivery(
        session=session, ctx=ctx, principal=principal, order=order, data=body)
    return _shaped(response, order)


@lifecycle_router.post("/orders/{order_id}/settle", response_model=OrderPublic,
                       dependencies=[require(*FINANCE)],
                       responses={**TRANSITION_ERRORS, **problem_responses(503)},
                       openapi_extra=IF_MATCH)
async def settle_order(order: OrderOr404, response: Response, env: StepEnv, version: IfMatchDep,
                       body: Annotated[SettleRequest | None, Body(examples=[
                           {"due_date": "2099-04-01"}])] = None) -> Order:
    """Invoice a delivered order (delivered → invoiced) for what was delivered less returns.

    Ledger issues the invoice (due today + payment terms unless `due_date` is given) and credit
    converts the reservation into receivables. If either does not answer: 503, the order stays
    delivered; retry with the same `Idempotency-Key` and it is invoiced once.
    """
    order = await service.settle_order(env=env, order=order, due_date=body.due_date if body else None,
                                       if_match=version)
    return _shaped(response, order)


@lifecycle_router.post("/orders/{order_id}/close", response_model=OrderPublic,
                       dependencies=[require(*CLOSERS)],
                       responses={**TRANSITION_ERRORS, **problem_responses(503)},
                       openapi_extra=IF_MATCH)
async def close_order(order: OrderOr404, response: Response, env: StepEnv,
                      version: IfMatchDep) -> Order:
    """Close an invoiced order (invoiced → closed) once ledger shows nothing outstanding.

    Refused with `guard_failed` (`nothing_outstanding`) while money is owed; 503 if ledger does
    not answer. Orders close on their own when ledger reports the invoice paid.
    """
    lifecycle.ensure_allowed(order, "close")
    outstanding = await service.order_balance_of(env, order)  # before the lock; 503 if no answer
    order = await service.lock(env.session, order)
    version(order.version)
    order = await service.close_order(session=env.session, ctx=env.ctx, actor=env.actor, order=order,
                                      outstanding_minor=outstanding)
    return _shaped(response, order)


@lifecycle_router.post("/orders/{order_id}/exceptions", status_code=status.HTTP_201_CREATED,
                       response_model=ExceptionPublic, dependencies=[require(*DEPARTMENT_ROLES)],
                       responses=TRANSITION_ERRORS,
                       openapi_extra=IF_MATCH)
async def open_exception(order: LockedOrder, body: ExceptionCreate, ctx: Ctx,
                         response: Response, session: SessionDep,
                         principal: CurrentPrincipal) -> OrderException:
    """Open an exception (a delay, a quality issue) on an order; open exceptions block close."""
    exc = await service.open_exception(
        session=session, ctx=ctx, principal=principal, order=order, data=body)
    response.headers["Location"] = f"/v1/orders/{order.id}/exceptions/{exc.id}"
    return exc


@lifecycle_router.post("/orders/{order_id}/exceptions/{exception_id}/resolve",
                       response_model=ExceptionPublic, dependencies=[require(*DEPARTMENT_ROLES)],
                       responses=TRANSITION_ERRORS,
                       openapi_extra=IF_MATCH)
async def resolve_exception(order: LockedOrder, body: ExceptionResolve, ctx: Ctx,
                            session: SessionDep, principal: CurrentPrincipal,
                            exception_id: Annotated[str, Path(max_length=36)]) -> OrderException:
    """Resolve an open exception with what was done (409 `conflict` if already resolved)."""
    return await service.resolve_exception(
        session=session, ctx=ctx, principal=principal, order=order, exception_id=exception_id,
        resolution=body.resolution)


@lifecycle_router.get("/orders/{order_id}/exceptions", response_model=list[ExceptionPublic],
                      dependencies=[require(*READERS)], responses=problem_responses(404))
async def list_exceptions(order: OrderOr404, session: SessionDep) -> list[OrderException]:
    """The order's exceptions, open and resolved, oldest first."""
    return await repository.exceptions_of(session, order.id)


def _history_cursor(cursor: str | None) -> int | None:
    values = decode_cursor(cursor, 1)
    if values is None:
        return None
    try:
        return int(values[0])
    except ValueError as exc:
        raise ValidationFailed("The cursor is not valid; start again without one.", errors=[
            {"field": "query.cursor", "message": "invalid cursor"}]) from exc


@lifecycle_router.get("/orders/{order_id}/history", response_model=Page[HistoryEntryPublic],
                      dependencies=[require(*READERS)], responses=problem_responses(404))
async def order_history(order: OrderOr404, session: SessionDep, limit: Limit = 50,
                        cursor: Cursor = None) -> Page[OrderHistory]:
    """Every transition of the order, oldest first: from, to, trigger, actor, time, reason, request id."""
    rows = await service.history(session, order, limit=limit + 1, after_seq=_history_cursor(cursor))
    next_cursor = encode_cursor(rows[limit - 1].seq) if len(rows) > limit else None
    return Page(items=rows[:limit], next_cursor=next_cursor)


@lifecycle_router.get("/orders/{order_id}/diagram", response_model=DiagramPublic,
                      dependencies=[require(*READERS)], responses=problem_responses(404))
async def order_diagram(order: OrderOr404) -> DiagramPublic:
    """The order machine as a Mermaid state diagram, the order's current state highlighted."""
    return DiagramPublic(order_id=order.id, state=order.state, mermaid=lifecycle.mermaid(order.state))


# The other machines `/v1/state-machine` serves, under their keys: `app.py` adds the change
# requests' (`change_request_machine`, from `changes/`).
MACHINES: dict[str, Callable[[], dict[str, Any]]] = {}


@lifecycle_router.get("/state-machine", response_model=StateMachinePublic,
                      dependencies=[require(*READERS)])
async def state_machine() -> dict:
    """The order machine as data: its states and every transition with guards, effects and event;
    `change_request_machine` describes the change requests' own machine the same way."""
    return {**lifecycle.describe(), **{key: describe() for key, describe in MACHINES.items()}}


@lifecycle_router.post("/review-sla-scans", response_model=ReviewSlaScanPublic,
                       dependencies=[require()])
async def scan_review_deadlines(ctx: Ctx, run: Annotated[Job, job("review-sla-scan")],
                                body: Annotated[ReviewSlaScanRequest | None, Body(examples=[
                                    {"as_of": "2026-01-09T09:00:00+00:00"}])] = None
                                ) -> ReviewSlaScanPublic:
    """Report reviews past their deadline as of `as_of` (admin): `order.review_overdue` once per order."""
    as_of = body.as_of if body and body.as_of else ctx.clock.now()
    reported = await run(as_of=as_of)
    return ReviewSlaScanPublic(as_of=as_of, orders=reported)


@lifecycle_router.post("/exception-scans", response_model=ExceptionScanPublic,
                       dependencies=[require()])
async def scan_overdue_exceptions(ctx: Ctx, session: SessionDep,
                                  body: Annotated[ExceptionScanRequest | None, Body(examples=[
                                      {"as_of": "2026-01-13T09:00:00+00:00"}])] = None
                                  ) -> ExceptionScanPublic:
    """Report open exceptions past their due time as of `as_of` (admin): `order.exception_overdue`
    once per exception (an extension of DESIGN.md's event list)."""
    as_of = body.as_of if body and body.as_of else ctx.clock.now()
    reported = await service.scan_overdue_exceptions(
        session=session, ctx=ctx, as_of=as_of)
    return ExceptionScanPublic(as_of=as_of, exceptions=reported)


@lifecycle_router.post("/orders/{order_id}/returns", status_code=status.HTTP_201_CREATED,
                       response_model=ReturnPublic, dependencies=[require(*WRITERS)],
                       responses={**TRANSITION_ERRORS, **problem_responses(503)},
                       openapi_extra=IF_MATCH)
async def record_return(order: OrderOr404, body: ReturnCreate, response: Response,
                        env: StepEnv, version: IfMatchDep) -> OrderReturn:
    """Record goods returned after delivery (delivered or invoiced orders).

    A line never returns more than was delivered (422, field `lines[i].quantity`). On an
    invoiced order ledger issues a credit note for the returned value; if ledger does not
    answer, 503 and nothing changes. Before settlement the return lowers what settle invoices.
    """
    record = await service.record_return(env=env, order=order, data=body, if_match=version)
    response.headers["Location"] = f"/v1/orders/{order.id}/returns/{record.id}"
    set_etag(response, order.version)
    return record
