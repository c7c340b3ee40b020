"""Routes of collection work: overdue scans, promises to pay, disputes, collection notes."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response, status

from services.ledger import repository as ledger_repository
from services.ledger.collection import repository, service
from services.ledger.collection.errors import ScanNotFound
from services.ledger.collection.models import (
    CollectionNote,
    ContactRole,
    OverdueScan,
    PaymentPromise,
    PromiseStatus,
    ScanStatus,
)
from services.ledger.collection.schemas import (
    CollectionNoteCreate,
    CollectionNotePublic,
    DisputeCreate,
    DisputePublic,
    DisputeResolve,
    OverdueScanPublic,
    OverdueScanRequest,
    PromiseCreate,
    PromisePublic,
)
from services.ledger.deps import Ctx, InvoiceOr404, VisibleCustomer
from services.ledger.models import Invoice, InvoiceDispute
from shared.app import Job, job
from shared.auth import CurrentPrincipal, Role, require
from shared.dates import BusinessDate
from shared.db import SessionDep
from shared.errors import problem_responses
from shared.pagination import Cursor, Limit, Page
from shared.versioning import set_etag

SCANNERS = (Role.finance,)
COLLECTORS = (Role.finance,)
NOTE_WRITERS = (Role.finance, Role.sales)  # sales: own customers' invoices only
READERS = (Role.finance, Role.credit_manager, Role.auditor, Role.service, Role.sales)
SCAN_READERS = (Role.finance, Role.credit_manager, Role.auditor)

scans_router = APIRouter(prefix="/v1", tags=["overdue"], responses=problem_responses(401, 403, 422))
collection_router = APIRouter(prefix="/v1", tags=["collection"],
                              responses=problem_responses(401, 403, 422))

DisputeId = Annotated[str, Path(max_length=36)]


# ---------------------------------------------------------------- overdue scans


@scans_router.post("/overdue-scans", status_code=status.HTTP_201_CREATED,
                   response_model=OverdueScanPublic, dependencies=[require(*SCANNERS)],
                   responses=problem_responses(503))
async def run_overdue_scan(response: Response, principal: CurrentPrincipal,
                           run: Annotated[Job, job("overdue-scan")],
                           body: Annotated[OverdueScanRequest | None, Body(examples=[
                               {"as_of": "2026-02-05"}, {}])] = None) -> OverdueScan:
    """Scan as of a date (today by default): `invoice.overdue` once per invoice and level crossed,
    promises past their date decided; each batch commits on its own, a re-run resumes."""
    done = await run(body.as_of if body else None, started_by=principal.name, trigger="request")
    response.headers["Location"] = f"/v1/overdue-scans/{done.id}"
    return done


@scans_router.get("/overdue-scans", response_model=Page[OverdueScanPublic],
                  dependencies=[require(*SCAN_READERS)])
async def list_overdue_scans(session: SessionDep, limit: Limit = 50, cursor: Cursor = None,
                             as_of: BusinessDate | None = None,
                             status_: Annotated[ScanStatus | None, Query(alias="status")] = None
                             ) -> Page[OverdueScan]:
    """Overdue scans, newest first, with what each emitted and decided."""
    return await repository.list_scans(session, limit=limit, cursor=cursor, as_of=as_of,
                                       status=status_)


@scans_router.get("/overdue-scans/{scan_id}", response_model=OverdueScanPublic,
                  dependencies=[require(*SCAN_READERS)], responses=problem_responses(404))
async def get_overdue_scan(session: SessionDep,
                           scan_id: Annotated[str, Path(max_length=36)]) -> OverdueScan:
    """One overdue scan."""
    found = await repository.get_scan(session, scan_id)
    if found is None:
        raise ScanNotFound(scan_id)
    return found


# ---------------------------------------------------------------- promises to pay


async def _promises_page(session: SessionDep, page: Page[PaymentPromise], numbers: dict[str, str],
                         today: date) -> Page[PromisePublic]:
    paid = await service.paid_since_today(session, page.items, today)
    return page.map(lambda p: PromisePublic.model_validate(
        {**p.model_dump(), "invoice_number": numbers.get(p.invoice_id), "paid_since_minor": paid[p.id]}))


@collection_router.post("/invoices/{invoice_id}/promises", status_code=status.HTTP_201_CREATED,
                        response_model=PromisePublic, dependencies=[require(*COLLECTORS)],
                        responses=problem_responses(404))
async def record_promise(invoice: InvoiceOr404, body: PromiseCreate, ctx: Ctx,
                         response: Response, session: SessionDep,
                         principal: CurrentPrincipal) -> PromisePublic:
    """Record the customer's promise to pay an amount by a date; the overdue scan keeps or breaks it."""
    promise = await service.record_promise(session=session, clock=ctx.clock,
                                           principal=principal, invoice=invoice, data=body)
    response.headers["Location"] = f"/v1/invoices/{invoice.id}/promises"
    return PromisePublic.model_validate({**promise.model_dump(), "invoice_number": invoice.number})


@collection_router.get("/invoices/{invoice_id}/promises", response_model=Page[PromisePublic],
                       dependencies=[require(*READERS)], responses=problem_responses(404))
async def list_invoice_promises(invoice: InvoiceOr404, ctx: Ctx, session: SessionDep,
                                limit: Limit = 50, cursor: Cursor = None,
                                status_: Annotated[PromiseStatus | None, Query(alias="status")] = None
                                ) -> Page[PromisePublic]:
    """The invoice's promises to pay, newest first."""
    page = await repository.list_promises(session, limit=limit, cursor=cursor,
                                          invoice_id=invoice.id, status=status_)
    return await _promises_page(session, page, {invoice.id: invoice.number}, ctx.clock.today())


@collection_router.get("/customers/{customer_id}/promises", response_model=Page[PromisePublic],
                       dependencies=[require(*READERS)], responses=problem_responses(404))
async def list_customer_promises(customer_id: VisibleCustomer, ctx: Ctx, session: SessionDep,
                                 principal: CurrentPrincipal, limit: Limit = 50,
                                 cursor: Cursor = None,
                                 status_: Annotated[PromiseStatus | None, Query(alias="status")] = None
                                 ) -> Page[PromisePublic]:
    """The customer's promises to pay across its invoices, newest first (sales: own invoices)."""
    page = await repository.list_promises(
        session, limit=limit, cursor=cursor, customer_id=customer_id,
        salesperson_id=principal.restricted_to_salesperson, status=status_)
    numbers = await ledger_repository.document_numbers(
        session, Invoice, (p.invoice_id for p in page.items))
    return await _promises_page(session, page, numbers, ctx.clock.today())


# ---------------------------------------------------------------- disputes


def _dispute_public(dispute: InvoiceDispute, number: str) -> DisputePublic:
    return DisputePublic.model_validate({**dispute.model_dump(), "invoice_number": number})


@collection_router.post("/invoices/{invoice_id}/disputes", status_code=status.HTTP_201_CREATED,
                        response_model=DisputePublic, dependencies=[require(*COLLECTORS)],
                        responses=problem_responses(404, 409))
async def open_dispute(invoice: InvoiceOr404, body: DisputeCreate, ctx: Ctx,
                       response: Response, session: SessionDep,
                       principal: CurrentPrincipal) -> DisputePublic:
    """Open a dispute on the invoice (one at a time); the overdue scan and dunning skip it while open."""
    dispute = await service.open_dispute(session=session, outbox=ctx.outbox,
                                         clock=ctx.clock, principal=principal,
                                         invoice=invoice, data=body)
    response.headers["Location"] = f"/v1/invoices/{invoice.id}/disputes/{dispute.id}"
    set_etag(response, dispute.version)
    return _dispute_public(dispute, invoice.number)


@collection_router.post("/invoices/{invoice_id}/disputes/{dispute_id}/resolve",
                        response_model=DisputePublic, dependencies=[require(*COLLECTORS)],
                        responses=problem_responses(404, 409))
async def resolve_dispute(invoice: InvoiceOr404, dispute_id: DisputeId, body: DisputeResolve,
                          ctx: Ctx, response: Response, session: SessionDep,
                          principal: CurrentPrincipal) -> DisputePublic:
    """Resolve the open dispute; the next overdue scan emits the levels crossed meanwhile."""
    dispute = await service.resolve_dispute(session=session, outbox=ctx.outbox,
                                            clock=ctx.clock, principal=principal,
                                            invoice=invoice, dispute_id=dispute_id, data=body)
    set_etag(response, dispute.version)
    return _dispute_public(dispute, invoice.number)


@collection_router.get("/invoices/{invoice_id}/disputes", response_model=Page[DisputePublic],
                       dependencies=[require(*READERS)], responses=problem_responses(404))
async def list_disputes(invoice: InvoiceOr404, session: SessionDep, limit: Limit = 50,
                        cursor: Cursor = None) -> Page[DisputePublic]:
    """The invoice's disputes, newest first."""
    page = await repository.list_disputes(session, invoice_id=invoice.id, limit=limit,
                                          cursor=cursor)
    return page.map(lambda d: _dispute_public(d, invoice.number))


@collection_router.get("/invoices/{invoice_id}/disputes/{dispute_id}", response_model=DisputePublic,
                       dependencies=[require(*READERS)], responses=problem_responses(404))
async def get_dispute(invoice: InvoiceOr404, dispute_id: DisputeId, session: SessionDep,
                      response: Response) -> DisputePublic:
    """One dispute of the invoice."""
    dispute = await service.get_dispute(session, invoice, dispute_id)
    set_etag(response, dispute.version)
    return _dispute_public(dispute, invoice.number)


# ---------------------------------------------------------------- collection notes


def _notes_page(page: Page[CollectionNote], numbers: dict[str, str]) -> Page[CollectionNotePublic]:
    return page.map(lambda n: CollectionNotePublic.model_validate(
        {**n.model_dump(), "invoice_number": numbers.get(n.invoice_id)}))


NextActionBefore = Annotated[BusinessDate | None, Query(description="Only notes whose next action is due "
                                                            "before this day (exclusive)")]


@collection_router.post("/invoices/{invoice_id}/collection-notes", status_code=status.HTTP_201_CREATED,
                        response_model=CollectionNotePublic, dependencies=[require(*NOTE_WRITERS)],
                        responses=problem_responses(404))
async def add_collection_note(invoice: InvoiceOr404, body: CollectionNoteCreate, ctx: Ctx,
                              session: SessionDep, principal: CurrentPrincipal) -> CollectionNotePublic:
    """Note where the payment stands in the customer's chain (barrier … decision-maker), the next action."""
    note = await service.add_note(session=session, clock=ctx.clock,
                                  principal=principal, invoice=invoice, data=body)
    return CollectionNotePublic.model_validate({**note.model_dump(), "invoice_number": invoice.number})


@collection_router.get("/invoices/{invoice_id}/collection-notes",
                       response_model=Page[CollectionNotePublic], dependencies=[require(*READERS)],
                       responses=problem_responses(404))
async def list_invoice_collection_notes(invoice: InvoiceOr404, session: SessionDep, limit: Limit = 50,
                                        cursor: Cursor = None,
                                        next_action_before: NextActionBefore = None,
                                        contact_role: ContactRole | None = None
                                        ) -> Page[CollectionNotePublic]:
    """The invoice's collection notes, newest first."""
    page = await repository.list_notes(session, limit=limit, cursor=cursor,
                                       invoice_id=invoice.id, next_action_before=next_action_before,
                                       contact_role=contact_role)
    return _notes_page(page, {invoice.id: invoice.number})


@collection_router.get("/customers/{customer_id}/collection-notes",
                       response_model=Page[CollectionNotePublic], dependencies=[require(*READERS)],
                       responses=problem_responses(404))
async def list_customer_collection_notes(customer_id: VisibleCustomer, session: SessionDep,
                                         principal: CurrentPrincipal, limit: Limit = 50,
                                         cursor: Cursor = None,
                                         next_action_before: NextActionBefore = None,
                                         contact_role: ContactRole | None = None
                                         ) -> Page[CollectionNotePublic]:
    """The customer's collection notes across its invoices, newest first (sales: own invoices)."""
    page = await repository.list_notes(
        session, limit=limit, cursor=cursor, customer_id=customer_id,
        salesperson_id=principal.restricted_to_salesperson, next_action_before=next_action_before,
        contact_role=contact_role)
    numbers = await ledger_repository.document_numbers(
        session, Invoice, (n.invoice_id for n in page.items))
    return _notes_page(page, numbers)


routers = [scans_router, collection_router]
