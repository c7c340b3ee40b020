"""Routes of the credit service: parse, authorize, call the service, shape the response."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response, status

from services.credit import evaluations, holds, profiles, repository, reservations, service
from services.credit.clients import LedgerClient
from services.credit.models import (
    Asset,
    CreditHold,
    CreditInquiry,
    CreditProfile,
    Customer,
    Evaluation,
    Guarantee,
    HoldKind,
    HoldStatus,
    Reservation,
    ReservationStatus,
)
from services.credit.schemas import (
    AssetCreate,
    AssetPublic,
    CreditLimitUpdate,
    CreditPolicyUpdate,
    CreditProfilePublic,
    CustomerCreate,
    CustomerPublic,
    CustomerUpdate,
    EvaluationCreate,
    EvaluationPublic,
    ExposurePublic,
    GuaranteeCreate,
    GuaranteePublic,
    HoldCreate,
    HoldPublic,
    HoldRecheckPublic,
    InquiryCreate,
    InquiryPublic,
    ReservationConvert,
    ReservationCreate,
    ReservationPublic,
    ReservationUpdate,
)
from shared.app import Job, job
from shared.auth import CurrentPrincipal, Role, require
from shared.clock import Clock
from shared.db import SessionDep
from shared.errors import problem_responses
from shared.openapi import IF_MATCH
from shared.outbox import Outbox
from shared.pagination import Cursor, Limit, Page, decode_time_cursor
from shared.versioning import check_if_match, set_etag

WRITERS = (Role.sales, Role.credit_manager)
READERS = (*WRITERS, Role.finance, Role.auditor, Role.service)

router = APIRouter(prefix="/v1", tags=["customers"],
                   responses=problem_responses(401, 403, 422))


async def load_customer(
    session: SessionDep, principal: CurrentPrincipal,
    customer_id: Annotated[str, Path(max_length=36)],
) -> Customer:
    return await service.get_visible(session, principal, customer_id)


CustomerOr404 = Annotated[Customer, Depends(load_customer)]


async def load_customer_read_only(
    request: Request, principal: CurrentPrincipal,
    customer_id: Annotated[str, Path(max_length=36)],
) -> Customer:
    async with request.app.state.db.session(read_only=True) as session:
        return await service.get_visible(session, principal, customer_id)


# For routes that call another service before they write (DESIGN.md §9): the customer is read
# through a read-only session, so the request's session opens its write transaction (on
# SQLite, BEGIN IMMEDIATE at its first statement) only after the call.
CustomerReadOr404 = Annotated[Customer, Depends(load_customer_read_only)]


@router.post("/customers", status_code=status.HTTP_201_CREATED, response_model=CustomerPublic,
             dependencies=[require(*WRITERS)], responses=problem_responses(409))
async def create_customer(body: CustomerCreate, request: Request, response: Response,
                          session: SessionDep, principal: CurrentPrincipal) -> Customer:
    """Create a customer with its contacts along the payment chain and bank accounts."""
    customer = await service.create_customer(
        session=session, outbox=request.app.state.outbox, clock=request.app.state.clock,
        principal=principal, data=body)
    response.headers["Location"] = f"/v1/customers/{customer.id}"
    set_etag(response, customer.version)
    return customer


@router.get("/customers", response_model=Page[CustomerPublic], dependencies=[require(*READERS)])
async def list_customers(
    session: SessionDep, principal: CurrentPrincipal, limit: Limit = 50, cursor: Cursor = None,
    salesperson_id: Annotated[str | None, Query(max_length=64)] = None,
    name: Annotated[str | None, Query(max_length=200, description="Part of the name")] = None,
    registration_no: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[Customer]:
    """List customers, oldest first; sales principals see only their own."""
    visible, salesperson_id = principal.salesperson_scope(salesperson_id)
    if not visible:
        decode_time_cursor(cursor)  # an invalid cursor is refused even when nothing is visible
        return Page(items=[])
    return await repository.list_customers(
        session, limit=limit, cursor=cursor,
        salesperson_id=salesperson_id, name=name, registration_no=registration_no)


@router.get("/customers/{customer_id}", response_model=CustomerPublic,
            dependencies=[require(*READERS)], responses=problem_responses(404))
async def get_customer(customer: CustomerOr404, response: Response) -> Customer:
    """One customer."""
    set_etag(response, customer.version)
    return customer


@router.patch("/customers/{customer_id}", response_model=CustomerPublic,
              dependencies=[require(*WRITERS)], responses=problem_responses(404, 412),
              openapi_extra=IF_MATCH)
async def update_customer(customer: CustomerOr404, body: CustomerUpdate, request: Request,
                          response: Response, session: SessionDep,
                          principal: CurrentPrincipal) -> Customer:
    """Change a customer; send `If-Match` with the ETag you read to avoid lost updates."""
    check_if_match(request, customer.version)
    customer = await service.update_customer(
        session=session, outbox=request.app.state.outbox, clock=request.app.state.clock,
        principal=principal, customer=customer, data=body)
    set_etag(response, customer.version)
    return customer


# ---------------------------------------------------------------- credit

CREDIT_WRITERS = (Role.credit_manager,)
CREDIT_READERS = READERS  # sales (own customers only), credit_manager, finance, auditor, service
RESERVERS = (Role.service,)
RESERVATION_READERS = (Role.service, Role.credit_manager, Role.finance, Role.auditor)

credit_router = APIRouter(prefix="/v1/customers/{customer_id}", tags=["credit"],
                          responses=problem_responses(401, 403, 404, 422))
evaluations_router = APIRouter(prefix="/v1/customers/{customer_id}", tags=["evaluations"],
                               responses=problem_responses(401, 403, 404, 422))
reservations_router = APIRouter(prefix="/v1/reservations", tags=["reservations"],
                                responses=problem_responses(401, 403, 422))


@dataclass(frozen=True)
class CreditContext:
    """What the credit use cases need from the app besides the session."""

    outbox: Outbox
    clock: Clock
    default_currency: str


async def credit_context(request: Request) -> CreditContext:
    state = request.app.state
    return CreditContext(state.outbox, state.clock, state.settings.default_currency)


Ctx = Annotated[CreditContext, Depends(credit_context)]
ItemId = Annotated[str, Path(max_length=36)]


def _if_match(request: Request) -> Callable[[int], None]:
    return lambda version: check_if_match(request, version)


def _profile_public(view: profiles.ProfileView) -> CreditProfilePublic:
    p, e = view.profile, view.exposure
    return CreditProfilePublic(
        customer_id=p.customer_id, limit_minor=p.limit_minor, currency=p.currency,
        terms_days=p.terms_days, grade=p.grade, policy=p.policy, status=p.status,
        exposure=ExposurePublic(open_receivables_minor=e.open_receivables_minor,
                                reserved_minor=e.reserved_minor,
                                guarantees_minor=e.guarantees_minor,
                                available_minor=e.available_minor),
        overdue_minor=view.overdue_minor, max_days_overdue=view.max_days_overdue,
        holds=[HoldPublic.model_validate(h) for h in view.holds],
        evaluation_id=p.evaluation_id, version=p.version,
        updated_at=p.updated_at if view.persisted else None)


async def _shaped_profile(session: SessionDep, ctx: CreditContext, response: Response,
                          profile: CreditProfile) -> CreditProfilePublic:
    set_etag(response, profile.version)
    return _profile_public(await profiles.view_profile(session, ctx.clock, profile))


def _guarantee_public(guarantee: Guarantee, today: date) -> GuaranteePublic:
    return GuaranteePublic.model_validate(
        {**guarantee.model_dump(), "status": service.guarantee_status(guarantee, today)})


@credit_router.get("/credit", response_model=CreditProfilePublic,
                   dependencies=[require(*CREDIT_READERS)])
async def get_credit_profile(customer: CustomerOr404, session: SessionDep, ctx: Ctx,
                             response: Response) -> CreditProfilePublic:
    """The customer's credit profile: limit, terms, grade, policy, status, exposure and active holds.

    `available_minor` = limit + active guarantees − (open receivables + reserved). Open
    receivables, `overdue_minor` and `max_days_overdue` are ledger's figures in the profile's
    currency, refreshed from ledger's exposure whenever a ledger event about the customer's
    invoices, payments or notes arrives (plus, until its `invoice.issued` arrives, a reservation
    converted on invoicing). Overdue figures are as of the last refresh.
    """
    view = await profiles.read_profile(session, ctx.clock, ctx.default_currency, customer)
    set_etag(response, view.profile.version)
    return _profile_public(view)


@credit_router.put("/credit-limit", response_model=CreditProfilePublic,
                   dependencies=[require(*CREDIT_WRITERS)], responses=problem_responses(409, 412),
                   openapi_extra=IF_MATCH)
async def set_credit_limit(customer: CustomerOr404, body: CreditLimitUpdate, request: Request,
                           response: Response, session: SessionDep, ctx: Ctx,
                           principal: CurrentPrincipal) -> CreditProfilePublic:
    """Set the credit limit, its currency and payment terms; emits `credit.limit_changed`.

    The currency cannot change (409 `conflict`) while the customer has active reservations,
    open receivables or active guarantees in the old one. Send `If-Match` with the profile's
    ETag to avoid overwriting a change you have not seen.
    """
    profile = await profiles.set_credit_limit(
        session=session, outbox=ctx.outbox, clock=ctx.clock, default_currency=ctx.default_currency,
        principal=principal, customer=customer, data=body, check_version=_if_match(request))
    return await _shaped_profile(session, ctx, response, profile)


@credit_router.put("/credit-policy", response_model=CreditProfilePublic,
                   dependencies=[require(*CREDIT_WRITERS)], responses=problem_responses(409, 412),
                   openapi_extra=IF_MATCH)
async def set_credit_policy(customer: CustomerOr404, body: CreditPolicyUpdate, request: Request,
                            response: Response, session: SessionDep, ctx: Ctx,
                            principal: CurrentPrincipal) -> CreditProfilePublic:
    """Set the credit policy and/or block or unblock the customer; emits `credit.limit_changed`.

    `policy`: `credit`, `prepaid_only` (every reservation rejected) or `guarantee_required`
    (reservations need an active guarantee). `status`: `blocked` rejects every reservation;
    `active` lifts a block — the customer stays `on_hold` while a hold is active (holds are
    placed and released under `/holds`).
    """
    profile = await profiles.set_credit_policy(
        session=session, outbox=ctx.outbox, clock=ctx.clock, default_currency=ctx.default_currency,
        principal=principal, customer=customer, data=body, check_version=_if_match(request))
    return await _shaped_profile(session, ctx, response, profile)


@credit_router.post("/holds", status_code=status.HTTP_201_CREATED, response_model=HoldPublic,
                    dependencies=[require(*CREDIT_WRITERS)])
async def place_hold(customer: CustomerOr404, body: HoldCreate, response: Response,
                     session: SessionDep, ctx: Ctx, principal: CurrentPrincipal) -> CreditHold:
    """Put the customer on a manual credit hold (status `on_hold`); emits `credit.hold_placed`."""
    hold = await holds.place_hold(
        session=session, outbox=ctx.outbox, clock=ctx.clock, default_currency=ctx.default_currency,
        principal=principal, customer=customer, reason=body.reason)
    response.headers["Location"] = f"/v1/customers/{customer.id}/holds/{hold.id}"
    return hold


@credit_router.get("/holds", response_model=Page[HoldPublic],
                   dependencies=[require(*CREDIT_READERS)])
async def list_holds(customer: CustomerOr404, session: SessionDep, limit: Limit = 50,
                     cursor: Cursor = None,
                     status_: Annotated[HoldStatus | None, Query(alias="status")] = None,
                     kind: HoldKind | None = None) -> Page[CreditHold]:
    """The customer's holds, oldest first, active and released (filter with `status`, `kind`)."""
    return await repository.list_holds(session, customer.id, limit=limit, cursor=cursor,
                                       status=status_, kind=kind)


@credit_router.delete("/holds/{hold_id}", response_model=HoldPublic,
                      dependencies=[require(*CREDIT_WRITERS)])
async def release_hold(customer: CustomerOr404, hold_id: ItemId, session: SessionDep, ctx: Ctx,
                       principal: CurrentPrincipal) -> CreditHold:
    """Release a hold; with no active hold left the customer is `active` again.

    Emits `credit.hold_released`. Releasing a released hold answers 200 with it again.
    Automatic holds are released by credit when ledger shows their invoice settled; releasing
    one here overrides the overdue rule until the invoice's next overdue level.
    """
    return await holds.release_hold(
        session=session, outbox=ctx.outbox, clock=ctx.clock, default_currency=ctx.default_currency,
        principal=principal, customer=customer, hold_id=hold_id)


@credit_router.post("/guarantees", status_code=status.HTTP_201_CREATED,
                    response_model=GuaranteePublic, dependencies=[require(*CREDIT_WRITERS)])
async def add_guarantee(customer: CustomerOr404, body: GuaranteeCreate, response: Response,
                        session: SessionDep, ctx: Ctx, principal: CurrentPrincipal) -> GuaranteePublic:
    """Register a guarantee in the credit currency; it adds to available credit until
    `expires_on` (inclusive) or until released."""
    guarantee = await service.add_guarantee(
        session=session, clock=ctx.clock, default_currency=ctx.default_currency,
        principal=principal, customer=customer, data=body)
    response.headers["Location"] = f"/v1/customers/{customer.id}/guarantees/{guarantee.id}"
    return _guarantee_public(guarantee, ctx.clock.today())


@credit_router.get("/guarantees", response_model=Page[GuaranteePublic],
                   dependencies=[require(*CREDIT_READERS)])
async def list_guarantees(customer: CustomerOr404, session: SessionDep, ctx: Ctx,
                          limit: Limit = 50, cursor: Cursor = None) -> Page[GuaranteePublic]:
    """The customer's guarantees, oldest first, with status active, expired or released."""
    page = await repository.list_guarantees(session, customer.id, limit=limit, cursor=cursor)
    today = ctx.clock.today()
    return page.map(lambda g: _guarantee_public(g, today))


@credit_router.delete("/guarantees/{guarantee_id}", response_model=GuaranteePublic,
                      dependencies=[require(*CREDIT_WRITERS)])
async def release_guarantee(customer: CustomerOr404, guarantee_id: ItemId, session: SessionDep,
                            ctx: Ctx, principal: CurrentPrincipal) -> GuaranteePublic:
    """Release (return) a guarantee: it no longer counts toward available credit. Idempotent."""
    guarantee = await service.release_guarantee(session=session, clock=ctx.clock,
                                                principal=principal, customer=customer,
                                                guarantee_id=guarantee_id)
    return _guarantee_public(guarantee, ctx.clock.today())


@credit_router.post("/credit-inquiries", status_code=status.HTTP_201_CREATED,
                    response_model=InquiryPublic, dependencies=[require(*CREDIT_WRITERS)])
async def add_credit_inquiry(customer: CustomerOr404, body: InquiryCreate, session: SessionDep,
                             ctx: Ctx, principal: CurrentPrincipal) -> CreditInquiry:
    """Record a report from an external enterprise credit system (rating, defaults, lawsuits).

    An evaluation without an `inquiry` scores the latest record on file.
    """
    return await service.add_inquiry(session=session, clock=ctx.clock, principal=principal,
                                     customer=customer, data=body)


@credit_router.get("/credit-inquiries", response_model=Page[InquiryPublic],
                   dependencies=[require(*CREDIT_READERS)])
async def list_credit_inquiries(customer: CustomerOr404, session: SessionDep, limit: Limit = 50,
                                cursor: Cursor = None) -> Page[CreditInquiry]:
    """The customer's credit-inquiry records, oldest first."""
    return await repository.list_inquiries(session, customer.id, limit=limit, cursor=cursor)


@credit_router.post("/assets", status_code=status.HTTP_201_CREATED, response_model=AssetPublic,
                    dependencies=[require(*CREDIT_WRITERS)])
async def add_asset(customer: CustomerOr404, body: AssetCreate, session: SessionDep, ctx: Ctx,
                    principal: CurrentPrincipal) -> Asset:
    """Record an asset of the customer (bank account, capital, equipment, …) and whether it is
    mortgaged or pledged; evaluations score the encumbered share."""
    return await service.add_asset(session=session, clock=ctx.clock, principal=principal,
                                   customer=customer, data=body)


@credit_router.get("/assets", response_model=Page[AssetPublic],
                   dependencies=[require(*CREDIT_READERS)])
async def list_assets(customer: CustomerOr404, session: SessionDep, limit: Limit = 50,
                      cursor: Cursor = None) -> Page[Asset]:
    """The customer's assets, oldest first."""
    return await repository.list_assets(session, customer.id, limit=limit, cursor=cursor)


# ---------------------------------------------------------------- evaluations


@evaluations_router.post("/evaluations", status_code=status.HTTP_201_CREATED,
                         response_model=EvaluationPublic, dependencies=[require(*CREDIT_WRITERS)])
async def create_evaluation(customer: CustomerReadOr404, body: EvaluationCreate, request: Request,
                            response: Response, session: SessionDep, ctx: Ctx,
                            principal: CurrentPrincipal) -> Evaluation:
    """Score the customer: seven named factors (each with input, points, max points) sum to a
    score 0–100, banded into grade A–E with a recommended limit, terms and policy.

    Payment history comes from ledger; when ledger has none or does not answer, that factor is
    neutral and says so. Nothing changes on the profile until the evaluation is applied.
    """
    evaluation = await evaluations.evaluate(
        session=session, clock=ctx.clock, principal=principal, customer=customer, data=body,
        ledger=LedgerClient(request.app.state.http))
    response.headers["Location"] = f"/v1/customers/{customer.id}/evaluations/{evaluation.id}"
    return evaluation


@evaluations_router.get("/evaluations", response_model=Page[EvaluationPublic],
                        dependencies=[require(*CREDIT_READERS)])
async def list_evaluations(customer: CustomerOr404, session: SessionDep, limit: Limit = 50,
                           cursor: Cursor = None) -> Page[Evaluation]:
    """The customer's evaluations, oldest first."""
    return await repository.list_evaluations(session, customer.id, limit=limit, cursor=cursor)


@evaluations_router.get("/evaluations/{evaluation_id}", response_model=EvaluationPublic,
                        dependencies=[require(*CREDIT_READERS)])
async def get_evaluation(customer: CustomerOr404, evaluation_id: ItemId,
                         session: SessionDep) -> Evaluation:
    """One evaluation with its scorecard."""
    return await evaluations.get_evaluation(session, customer, evaluation_id)


@evaluations_router.post("/evaluations/{evaluation_id}/apply", response_model=CreditProfilePublic,
                         dependencies=[require(*CREDIT_WRITERS)], responses=problem_responses(409))
async def apply_evaluation(customer: CustomerOr404, evaluation_id: ItemId, response: Response,
                           session: SessionDep, ctx: Ctx,
                           principal: CurrentPrincipal) -> CreditProfilePublic:
    """Make the evaluation the profile (limit, currency, terms, grade, policy); emits
    `credit.limit_changed`. An evaluation is applied once (409 after that)."""
    _, profile = await evaluations.apply_evaluation(
        session=session, outbox=ctx.outbox, clock=ctx.clock, default_currency=ctx.default_currency,
        principal=principal, customer=customer, evaluation_id=evaluation_id)
    return await _shaped_profile(session, ctx, response, profile)


# ---------------------------------------------------------------- reservations


@reservations_router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=ReservationPublic,
    dependencies=[require(*RESERVERS)],
    responses={200: {"model": ReservationPublic,
                     "description": "The order already has this active reservation; it is "
                                    "returned unchanged"},
               **problem_responses(404, 409)})
async def create_reservation(body: ReservationCreate, response: Response, session: SessionDep,
                             ctx: Ctx, principal: CurrentPrincipal) -> Reservation:
    """Decide on credit for an order: `reserved`, `requires_guarantee` or `rejected`, with reasons.

    Rules, first match wins: blocked → rejected; on hold → rejected (with the hold's reason);
    policy prepaid_only → rejected; policy guarantee_required without an active guarantee →
    requires_guarantee; amount ≤ available (limit + active guarantees − open receivables −
    reserved) → reserved; otherwise requires_guarantee for guarantee_required customers and
    rejected for the rest, naming the shortfall. Only `reserved` holds credit (status
    `active`); other decisions are stored with status `declined` and a later POST for the same
    order decides again. Idempotent per order: while the order has an active reservation the
    same amount returns it (200) and another amount is 409 (use PATCH). Unknown customer →
    404; a currency other than the customer's credit currency → 422. Emits
    `credit.reservation_decided`.
    """
    reservation, created = await reservations.reserve(
        session=session, outbox=ctx.outbox, clock=ctx.clock, default_currency=ctx.default_currency,
        principal=principal, data=body)
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/v1/reservations/{reservation.id}"
    set_etag(response, reservation.version)
    return reservation


@reservations_router.get("", response_model=Page[ReservationPublic],
                         dependencies=[require(*RESERVATION_READERS)])
async def list_reservations(
    session: SessionDep, limit: Limit = 50, cursor: Cursor = None,
    order_id: Annotated[str | None, Query(max_length=36)] = None,
    customer_id: Annotated[str | None, Query(max_length=36)] = None,
    status_: Annotated[ReservationStatus | None, Query(alias="status")] = None,
) -> Page[Reservation]:
    """Reservations and declined decisions, oldest first; filter by order, customer, status."""
    return await repository.list_reservations(
        session, limit=limit, cursor=cursor, order_id=order_id,
        customer_id=customer_id, status=status_)


@reservations_router.get("/{reservation_id}", response_model=ReservationPublic,
                         dependencies=[require(*RESERVATION_READERS)],
                         responses=problem_responses(404))
async def get_reservation(reservation_id: ItemId, session: SessionDep,
                          response: Response) -> Reservation:
    """One reservation or declined decision."""
    reservation = await reservations.get_reservation(session, reservation_id)
    set_etag(response, reservation.version)
    return reservation


@reservations_router.patch("/{reservation_id}", response_model=ReservationPublic,
                           dependencies=[require(*RESERVERS)],
                           responses=problem_responses(404, 409, 412),
                           openapi_extra=IF_MATCH)
async def change_reservation(reservation_id: ItemId, body: ReservationUpdate, request: Request,
                             response: Response, session: SessionDep, ctx: Ctx,
                             principal: CurrentPrincipal) -> Reservation:
    """Change an active reservation's amount. A decrease always succeeds; an increase is
    checked like a new reservation of the difference and refused with 409 `guard_failed`
    (guard `credit_reserved`, the reason) when it does not fit — nothing changes then.
    Emits `credit.reservation_decided`."""
    reservation = await reservations.change_reservation(
        session=session, outbox=ctx.outbox, clock=ctx.clock, default_currency=ctx.default_currency,
        principal=principal, reservation_id=reservation_id, amount_minor=body.amount_minor,
        check_version=_if_match(request))
    set_etag(response, reservation.version)
    return reservation


@reservations_router.delete("/{reservation_id}", status_code=status.HTTP_204_NO_CONTENT,
                            dependencies=[require(*RESERVERS)], responses=problem_responses(404, 409))
async def release_reservation(reservation_id: ItemId, session: SessionDep, ctx: Ctx) -> Response:
    """Release the reservation's credit (order revised or cancelled). Releasing a released or
    declined one is 204 again; a converted one is 409 `invalid_transition`."""
    await reservations.release_reservation(session=session, clock=ctx.clock,
                                           default_currency=ctx.default_currency,
                                           reservation_id=reservation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@reservations_router.post("/{reservation_id}/convert", response_model=ReservationPublic,
                          dependencies=[require(*RESERVERS)], responses=problem_responses(404, 409))
async def convert_reservation(
    reservation_id: ItemId, session: SessionDep, ctx: Ctx, response: Response,
    body: Annotated[ReservationConvert | None, Body(examples=[
        {"invoice_id": "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f", "amount_minor": 95_000_000},
        {}])] = None,
) -> Reservation:
    """The order was invoiced: the active reservation becomes open receivable exposure
    (status `converted`), for the invoiced amount when one is given. Idempotent."""
    reservation = await reservations.convert_reservation(
        session=session, clock=ctx.clock, default_currency=ctx.default_currency,
        reservation_id=reservation_id, data=body or ReservationConvert())
    set_etag(response, reservation.version)
    return reservation


holds_router = APIRouter(prefix="/v1", tags=["credit"], responses=problem_responses(401, 403))


@holds_router.post("/hold-rechecks", response_model=HoldRecheckPublic,
                   dependencies=[require(*CREDIT_WRITERS)], responses=problem_responses(503))
async def recheck_holds(run: Annotated[Job, job("hold-recheck")]) -> HoldRecheckPublic:
    """Ask ledger now about every automatic hold's invoice and release those settled.

    What the periodic recheck does (credit_manager, admin); 503 when ledger stops answering
    (holds already released stay released, the rest wait for the next recheck).
    """
    return HoldRecheckPublic(released=await run(raise_unavailable=True))


routers = [router, credit_router, evaluations_router, reservations_router, holds_router]
