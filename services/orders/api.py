"""Routes of the orders service: parse, authorize, call the service, shape the response."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from pydantic import AwareDatetime

from services.orders import repository, service
from services.orders.clients import CreditClient
from services.orders.models import Order, OrderState
from services.orders.schemas import OrderCreate, OrderPublic, OrderUpdate
from shared.auth import CurrentPrincipal, Role, require
from shared.db import SessionDep
from shared.errors import problem_responses
from shared.pagination import Cursor, Limit, Page, decode_time_cursor, time_page
from shared.versioning import check_if_match, set_etag

WRITERS = (Role.sales,)
READERS = (Role.sales, Role.finance, Role.production, Role.technical, Role.quality,
           Role.credit_manager, Role.auditor, Role.service)

router = APIRouter(prefix="/v1", tags=["orders"], responses=problem_responses(401, 403, 422))


def credit_client(request: Request) -> CreditClient:
    return CreditClient(request.app.state.http)


CreditDep = Annotated[CreditClient, Depends(credit_client)]


async def load_order(
    session: SessionDep, principal: CurrentPrincipal,
    order_id: Annotated[str, Path(max_length=36)],
) -> Order:
    return await service.get_visible(session, principal, order_id)


OrderOr404 = Annotated[Order, Depends(load_order)]


@router.post("/orders", status_code=status.HTTP_201_CREATED, response_model=OrderPublic,
             dependencies=[require(*WRITERS)], responses=problem_responses(503))
async def create_order(body: OrderCreate, request: Request, response: Response,
                       session: SessionDep, principal: CurrentPrincipal,
                       credit: CreditDep) -> Order:
    """Create a draft order for a customer known to credit; totals are computed here."""
    order = await service.create_order(
        session=session, outbox=request.app.state.outbox, clock=request.app.state.clock,
        credit=credit, principal=principal, data=body)
    response.headers["Location"] = f"/v1/orders/{order.id}"
    set_etag(response, order.version)
    return order


@router.get("/orders", response_model=Page[OrderPublic], dependencies=[require(*READERS)])
async def list_orders(
    session: SessionDep, principal: CurrentPrincipal, limit: Limit = 50, cursor: Cursor = None,
    customer_id: Annotated[str | None, Query(max_length=36)] = None,
    salesperson_id: Annotated[str | None, Query(max_length=64)] = None,
    state: OrderState | None = None,
    created_from: Annotated[AwareDatetime | None, Query(
        description="Created at or after (ISO 8601 with offset).")] = None,
    created_to: Annotated[AwareDatetime | None, Query(
        description="Created before (ISO 8601 with offset).")] = None,
    external_ref: Annotated[str | None, Query(max_length=100)] = None,
) -> Page[Order]:
    """List orders, oldest first; sales principals see only their own."""
    after = decode_time_cursor(cursor)
    own = principal.restricted_to_salesperson
    if own is not None:
        if salesperson_id not in (None, own):
            return Page(items=[])
        salesperson_id = own
    rows = await repository.list_orders(
        session, limit=limit + 1, after=after, customer_id=customer_id,
        salesperson_id=salesperson_id, state=state.value if state else None,
        created_from=created_from, created_to=created_to, external_ref=external_ref)
    return time_page(rows, limit, lambda o: (o.created_at, o.id))


@router.get("/orders/{order_id}", response_model=OrderPublic, dependencies=[require(*READERS)],
            responses=problem_responses(404))
async def get_order(order: OrderOr404, response: Response) -> Order:
    """One order with its lines."""
    set_etag(response, order.version)
    return order


@router.patch("/orders/{order_id}", response_model=OrderPublic, dependencies=[require(*WRITERS)],
              responses=problem_responses(404, 409, 412))
async def update_order(order: OrderOr404, body: OrderUpdate, request: Request,
                       response: Response, session: SessionDep) -> Order:
    """Change a draft order; send `If-Match` with the ETag you read to avoid lost updates."""
    check_if_match(request, order.version)
    order = await service.update_order(
        session=session, outbox=request.app.state.outbox, clock=request.app.state.clock,
        order=order, data=body)
    set_etag(response, order.version)
    return order
