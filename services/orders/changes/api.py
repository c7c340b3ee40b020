"""Routes of change requests (tag `change requests`): parse, authorize, call `service.py`,
shape the response. `If-Match` on the `…/{cid}/…` steps is the change request's version."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status

from services.orders import repository
from services.orders import service as order_service
from services.orders.api import (
    READERS,
    REVIEWERS,
    TRANSITION_ERRORS,
    WRITERS,
    Ctx,
    LockedOrder,
    OrderOr404,
    StepEnv,
)
from services.orders.changes import service
from services.orders.models import Order, OrderChangeRequest
from services.orders.schemas import (
    ChangeApplyRequest,
    ChangeRequestCreate,
    ChangeRequestPublic,
    ChangeWithdrawRequest,
    ReviewCreate,
    RevisionPublic,
)
from shared.auth import CurrentPrincipal, require
from shared.db import SessionDep
from shared.errors import NotFound, problem_responses
from shared.openapi import IF_MATCH
from shared.pagination import Cursor, Limit, Page
from shared.schemas import query_int
from shared.versioning import check_if_match, set_etag

router = APIRouter(prefix="/v1", tags=["change requests"],
                          responses=problem_responses(401, 403, 422))
ChangeRequestId = Annotated[str, Path(max_length=36)]


async def lock_change_request(
    order: OrderOr404, session: SessionDep, request: Request, change_request_id: ChangeRequestId,
) -> tuple[Order, OrderChangeRequest]:
    """The visible order under its row lock and its change request read after the lock;
    `If-Match` is checked against the change request's version."""
    locked = await order_service.lock(session, order)
    cr = await service.load(session, locked, change_request_id)
    check_if_match(request, cr.version)
    return locked, cr


LockedChange = Annotated[tuple[Order, OrderChangeRequest], Depends(lock_change_request)]
RevisionNumber = query_int(ge=1, le=1_000_000)


def _shaped_change(response: Response, cr: OrderChangeRequest) -> OrderChangeRequest:
    set_etag(response, cr.version)
    return cr


@router.post("/orders/{order_id}/change-requests", status_code=status.HTTP_201_CREATED,
                    response_model=ChangeRequestPublic, dependencies=[require(*WRITERS)],
                    responses=TRANSITION_ERRORS,
                    openapi_extra=IF_MATCH)
async def request_change(order: LockedOrder, body: ChangeRequestCreate, ctx: Ctx,
                         response: Response, session: SessionDep,
                         principal: CurrentPrincipal) -> OrderChangeRequest:
    """Ask to change the terms of an approved, contracted or in-fulfilment order (→ in_review).

    `changes` may change lines (quantity, unit_price_minor, specification, quality_standard),
    add lines, remove lines nothing was delivered of, and change delivery_date, delivery_place
    and payment_terms_days. It is checked as strictly as a new order: every problem at once
    (422, field paths like `changes.lines[0].quantity`). Another open change request is 409
    `conflict`; an order in another state is 409 `invalid_transition`; a prepaid order invoiced
    at contract cannot change its amount (409 `guard_failed`, `prepaid_invoice_unchanged`).
    Emits `order.change_requested`.
    """
    cr = await service.request_change(
        session=session, ctx=ctx, principal=principal, order=order, data=body)
    response.headers["Location"] = f"/v1/orders/{order.id}/change-requests/{cr.id}"
    return _shaped_change(response, cr)


@router.get("/orders/{order_id}/change-requests", response_model=Page[ChangeRequestPublic],
                   dependencies=[require(*READERS)], responses=problem_responses(404))
async def list_change_requests(order: OrderOr404, session: SessionDep, limit: Limit = 50,
                               cursor: Cursor = None) -> Page[OrderChangeRequest]:
    """The order's change requests with their reviews, oldest first."""
    return await repository.page_change_requests(session, order.id, limit=limit, cursor=cursor)


@router.get("/orders/{order_id}/change-requests/{change_request_id}",
                   response_model=ChangeRequestPublic, dependencies=[require(*READERS)],
                   responses=problem_responses(404))
async def get_change_request(order: OrderOr404, session: SessionDep, response: Response,
                             change_request_id: ChangeRequestId) -> OrderChangeRequest:
    """One change request of the order, with its reviews."""
    return _shaped_change(response, await service.load(session, order, change_request_id))


@router.post("/orders/{order_id}/change-requests/{change_request_id}/reviews",
                    response_model=ChangeRequestPublic, dependencies=[require(*REVIEWERS)],
                    responses=TRANSITION_ERRORS,
                    openapi_extra=IF_MATCH)
async def review_change(locked: LockedChange, body: ReviewCreate, ctx: Ctx,
                        response: Response, session: SessionDep,
                        principal: CurrentPrincipal) -> OrderChangeRequest:
    """Give a department's opinion on a change request (the caller must hold that role).

    Any rejection (with a comment) rejects it with every reason; the last approval approves it.
    """
    order, cr = locked
    cr = await service.review_change(
        session=session, ctx=ctx, principal=principal, order=order, cr=cr, department=body.department,
        decision=body.decision.value, comment=body.comment)
    return _shaped_change(response, cr)


@router.post("/orders/{order_id}/change-requests/{change_request_id}/withdraw",
                    response_model=ChangeRequestPublic, dependencies=[require(*WRITERS)],
                    responses=TRANSITION_ERRORS,
                    openapi_extra=IF_MATCH)
async def withdraw_change(locked: LockedChange, body: ChangeWithdrawRequest, ctx: Ctx,
                          response: Response, session: SessionDep,
                          principal: CurrentPrincipal) -> OrderChangeRequest:
    """Withdraw an open change request (in review or approved), with a reason."""
    order, cr = locked
    cr = await service.withdraw_change(
        session=session, ctx=ctx, principal=principal, order=order, cr=cr, reason=body.reason)
    return _shaped_change(response, cr)


@router.post("/orders/{order_id}/change-requests/{change_request_id}/apply",
                    response_model=ChangeRequestPublic, dependencies=[require(*WRITERS)],
                    responses={**TRANSITION_ERRORS, **problem_responses(503)},
                    openapi_extra=IF_MATCH)
async def apply_change(order: OrderOr404, change_request_id: ChangeRequestId,
                       body: ChangeApplyRequest, response: Response, env: StepEnv,
                       request: Request) -> OrderChangeRequest:
    """Apply an approved change with the signed change agreement (approved → applied).

    In one transaction: credit's reservation is set to the new total first (a refused increase
    is 409 `guard_failed`, guard `credit_reserved`; no answer is 503; nothing changes in either
    case), then the new terms replace the old as revision + 1 — the old terms stay readable at
    `GET /v1/orders/{id}/revisions/{n}` — and `order.changed` lists the differences. A change
    that no longer fits what was delivered since is 409 `guard_failed` (`change_fits_deliveries`).
    """
    cr = await service.apply_change(
        env=env, order=order, change_request_id=change_request_id,
        agreement_number=body.agreement_number, signed_at=body.signed_at,
        if_match=lambda version: check_if_match(request, version))
    return _shaped_change(response, cr)


@router.get("/orders/{order_id}/revisions/{revision}", response_model=RevisionPublic,
                   dependencies=[require(*READERS)], responses=problem_responses(404))
async def get_revision(order: OrderOr404, session: SessionDep,
                       revision: Annotated[RevisionNumber, Path()]) -> dict:
    """The terms of one revision of the order: a past one as it was replaced, or the current one."""
    found = await service.revision_of(session, order, revision)
    if found is None:
        raise NotFound(f"Order {order.number} has no kept terms for revision {revision} (its current "
                       f"revision is {order.revision}).")
    return found
