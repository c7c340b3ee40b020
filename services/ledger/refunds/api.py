"""Routes of refunds: parse, authorize, call the service, shape the response."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from services.ledger.deps import Ctx
from services.ledger.refunds import repository, service
from services.ledger.refunds.models import Refund, RefundStatus
from services.ledger.refunds.schemas import RefundCreate, RefundPublic, RefundReason
from shared.auth import CurrentPrincipal, Role, require
from shared.db import SessionDep
from shared.errors import problem_responses
from shared.pagination import Cursor, Limit, Page
from shared.versioning import set_etag

WRITERS = (Role.finance,)  # propose, approve (another principal), reject, reverse
READERS = (Role.finance, Role.credit_manager, Role.auditor)

router = APIRouter(prefix="/v1", tags=["payments"], responses=problem_responses(401, 403, 422))
RefundId = Annotated[str, Path(max_length=36)]


def _public(refund: Refund, response: Response) -> RefundPublic:
    set_etag(response, refund.version)
    return RefundPublic.model_validate(refund)


@router.post("/refunds", status_code=status.HTTP_201_CREATED, response_model=RefundPublic,
             dependencies=[require(*WRITERS)], responses=problem_responses(409))
async def create_refund(body: RefundCreate, ctx: Ctx, response: Response, session: SessionDep,
                        principal: CurrentPrincipal) -> RefundPublic:
    """Pay a customer's unapplied cash back (Dr 2100 unapplied cash / Cr 1000 cash). Posted at
    once up to `O2C_REFUND_APPROVAL_ABOVE_MINOR`; above it `proposed`, and another finance
    principal approves it."""
    refund = await service.propose(session=session, outbox=ctx.outbox, clock=ctx.clock,
                                   principal=principal, data=body,
                                   approval_above_minor=ctx.settings.refund_approval_above_minor)
    response.headers["Location"] = f"/v1/refunds/{refund.id}"
    return _public(refund, response)


@router.get("/refunds", response_model=Page[RefundPublic], dependencies=[require(*READERS)])
async def list_refunds(session: SessionDep, limit: Limit = 50, cursor: Cursor = None,
                       customer_id: Annotated[str | None, Query(max_length=36)] = None,
                       status_: Annotated[RefundStatus | None, Query(alias="status")] = None,
                       ) -> Page[RefundPublic]:
    """Refunds in the order they were recorded."""
    page = await repository.list_refunds(session, limit=limit, cursor=cursor,
                                         customer_id=customer_id, status=status_)
    return Page(items=[RefundPublic.model_validate(r) for r in page.items],
                next_cursor=page.next_cursor)


@router.get("/refunds/{refund_id}", response_model=RefundPublic,
            dependencies=[require(*READERS)], responses=problem_responses(404))
async def get_refund(refund_id: RefundId, session: SessionDep, response: Response) -> RefundPublic:
    """One refund."""
    return _public(await service.get(session, refund_id), response)


@router.post("/refunds/{refund_id}/approve", response_model=RefundPublic,
             dependencies=[require(*WRITERS)], responses=problem_responses(404, 409))
async def approve_refund(refund_id: RefundId, ctx: Ctx, response: Response, session: SessionDep,
                         principal: CurrentPrincipal) -> RefundPublic:
    """Approve (not the proposer: four eyes) and post a proposed refund."""
    refund = await service.approve(session=session, outbox=ctx.outbox, clock=ctx.clock,
                                   principal=principal, refund_id=refund_id)
    return _public(refund, response)


@router.post("/refunds/{refund_id}/reject", response_model=RefundPublic,
             dependencies=[require(*WRITERS)], responses=problem_responses(404, 409))
async def reject_refund(refund_id: RefundId, body: RefundReason, ctx: Ctx, response: Response,
                        session: SessionDep, principal: CurrentPrincipal) -> RefundPublic:
    """Turn a proposed refund down with a reason; nothing is posted."""
    refund = await service.reject(session=session, outbox=ctx.outbox, clock=ctx.clock,
                                  principal=principal, refund_id=refund_id, reason=body.reason)
    return _public(refund, response)


@router.post("/refunds/{refund_id}/reverse", response_model=RefundPublic,
             dependencies=[require(*WRITERS)], responses=problem_responses(404, 409))
async def reverse_refund(refund_id: RefundId, body: RefundReason, ctx: Ctx, response: Response,
                         session: SessionDep, principal: CurrentPrincipal) -> RefundPublic:
    """The money came back: Dr cash / Cr unapplied cash, once; the customer has it again."""
    refund = await service.reverse(session=session, outbox=ctx.outbox, clock=ctx.clock,
                                   principal=principal, refund_id=refund_id, reason=body.reason)
    return _public(refund, response)
