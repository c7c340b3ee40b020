"""Routes of write-offs and recoveries: parse, authorize, call the service, shape the response."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from services.ledger.deps import Ctx
from services.ledger.writeoffs import repository, service
from services.ledger.writeoffs.models import WriteOff, WriteOffStatus
from services.ledger.writeoffs.schemas import (
    RecoveryCreate,
    WriteOffCreate,
    WriteOffPublic,
    WriteOffReject,
)
from shared.auth import CurrentPrincipal, Role, require
from shared.db import SessionDep
from shared.errors import problem_responses
from shared.pagination import Cursor, Limit, Page
from shared.versioning import set_etag

WRITERS = (Role.finance,)  # propose, approve (another principal), reject, recover
READERS = (Role.finance, Role.credit_manager, Role.auditor, Role.service, Role.sales)

router = APIRouter(prefix="/v1", tags=["write-offs"], responses=problem_responses(401, 403, 422))


async def load_write_off(session: SessionDep, principal: CurrentPrincipal,
                         write_off_id: Annotated[str, Path(max_length=36)]) -> WriteOff:
    return await service.get_visible(session, principal, write_off_id)


WriteOffOr404 = Annotated[WriteOff, Depends(load_write_off)]


def _public(view: service.WriteOffView, response: Response) -> WriteOffPublic:
    set_etag(response, view.write_off.version)
    return WriteOffPublic.of(view.write_off, view.recoveries, view.invoice_number)


@router.post("/write-offs", status_code=status.HTTP_201_CREATED, response_model=WriteOffPublic,
             dependencies=[require(*WRITERS)], responses=problem_responses(409))
async def propose_write_off(body: WriteOffCreate, ctx: Ctx, response: Response,
                            session: SessionDep, principal: CurrentPrincipal) -> WriteOffPublic:
    """Propose writing off an invoice's outstanding (all of it by default); another principal approves."""
    view = await service.propose(session=session, outbox=ctx.outbox,
                                 clock=ctx.clock, principal=principal, data=body)
    response.headers["Location"] = f"/v1/write-offs/{view.write_off.id}"
    return _public(view, response)


@router.get("/write-offs", response_model=Page[WriteOffPublic], dependencies=[require(*READERS)])
async def list_write_offs(
    session: SessionDep, principal: CurrentPrincipal, limit: Limit = 50, cursor: Cursor = None,
    status_: Annotated[WriteOffStatus | None, Query(alias="status")] = None,
    customer_id: Annotated[str | None, Query(max_length=36)] = None,
    invoice_id: Annotated[str | None, Query(max_length=36)] = None,
) -> Page[WriteOffPublic]:
    """Write-offs in the order they were proposed, with their recoveries; sales see their own."""
    visible, salesperson_id = principal.salesperson_scope(None)
    if not visible:
        return Page(items=[])
    page = await repository.list_write_offs(
        session, limit=limit, cursor=cursor, status=status_,
        customer_id=customer_id, invoice_id=invoice_id, salesperson_id=salesperson_id)
    views = await service.views(session, page.items)
    return Page(items=[WriteOffPublic.of(v.write_off, v.recoveries, v.invoice_number)
                       for v in views], next_cursor=page.next_cursor)


@router.get("/write-offs/{write_off_id}", response_model=WriteOffPublic,
            dependencies=[require(*READERS)], responses=problem_responses(404))
async def get_write_off(session: SessionDep, write_off: WriteOffOr404,
                        response: Response) -> WriteOffPublic:
    """One write-off with its recoveries."""
    (view,) = await service.views(session, [write_off])
    return _public(view, response)


@router.post("/write-offs/{write_off_id}/approve", response_model=WriteOffPublic,
             dependencies=[require(*WRITERS)], responses=problem_responses(404, 409))
async def approve_write_off(write_off_id: Annotated[str, Path(max_length=36)], ctx: Ctx,
                            response: Response, session: SessionDep,
                            principal: CurrentPrincipal) -> WriteOffPublic:
    """Approve (not the proposer: four eyes) and post Dr bad-debt expense / Cr receivables."""
    view = await service.approve(session=session, outbox=ctx.outbox,
                                 clock=ctx.clock, principal=principal,
                                 write_off_id=write_off_id)
    return _public(view, response)


@router.post("/write-offs/{write_off_id}/reject", response_model=WriteOffPublic,
             dependencies=[require(*WRITERS)], responses=problem_responses(404, 409))
async def reject_write_off(write_off_id: Annotated[str, Path(max_length=36)], body: WriteOffReject,
                           ctx: Ctx, response: Response, session: SessionDep,
                           principal: CurrentPrincipal) -> WriteOffPublic:
    """Turn a proposed write-off down with a reason; nothing is posted."""
    view = await service.reject(session=session, outbox=ctx.outbox,
                                clock=ctx.clock, principal=principal,
                                write_off_id=write_off_id, reason=body.reason)
    return _public(view, response)


@router.post("/write-offs/{write_off_id}/recoveries", status_code=status.HTTP_201_CREATED,
             response_model=WriteOffPublic, dependencies=[require(*WRITERS)],
             responses=problem_responses(404, 409))
async def recover_write_off(write_off_id: Annotated[str, Path(max_length=36)],
                            body: RecoveryCreate, ctx: Ctx, response: Response,
                            session: SessionDep, principal: CurrentPrincipal) -> WriteOffPublic:
    """Post money received on a written-off debt: Dr cash / Cr bad-debt recoveries, never above it."""
    view, _ = await service.recover(session=session, outbox=ctx.outbox,
                                    clock=ctx.clock, principal=principal,
                                    write_off_id=write_off_id, data=body)
    return _public(view, response)
