"""Routes of the credit service: parse, authorize, call the service, shape the response."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from services.credit import repository, service
from services.credit.models import Customer
from services.credit.schemas import CustomerCreate, CustomerPublic, CustomerUpdate
from shared.auth import CurrentPrincipal, Role, require
from shared.db import SessionDep
from shared.errors import problem_responses
from shared.pagination import Cursor, Limit, Page, decode_time_cursor, time_page
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
    after = decode_time_cursor(cursor)
    own = principal.restricted_to_salesperson
    if own is not None:
        if salesperson_id not in (None, own):
            return Page(items=[])
        salesperson_id = own
    rows = await repository.list_customers(
        session, limit=limit + 1,
        after=after,
        salesperson_id=salesperson_id, name=name, registration_no=registration_no)
    return time_page(rows, limit, lambda c: (c.created_at, c.id))


@router.get("/customers/{customer_id}", response_model=CustomerPublic,
            dependencies=[require(*READERS)], responses=problem_responses(404))
async def get_customer(customer: CustomerOr404, response: Response) -> Customer:
    """One customer."""
    set_etag(response, customer.version)
    return customer


@router.patch("/customers/{customer_id}", response_model=CustomerPublic,
              dependencies=[require(*WRITERS)], responses=problem_responses(404, 412))
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
