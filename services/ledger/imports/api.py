"""Route of the open-item import: the body read only after the role check, as JSON or CSV."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status

from services.ledger.deps import Ctx
from services.ledger.imports import service
from services.ledger.imports.schemas import (
    CSV_COLUMNS,
    CSV_EXAMPLE,
    InvoiceImportCreate,
    InvoiceImportPublic,
    ParsedBody,
    parse_csv,
    parse_json,
)
from shared.auth import CurrentPrincipal, Role, require
from shared.db import SessionDep
from shared.errors import UnsupportedMediaType, ValidationFailed, problem_responses
from shared.openapi import read_body

IMPORTERS = (Role.finance,)  # and admin
READERS = (Role.finance, Role.auditor)
PATH = "/v1/invoice-imports"

router = APIRouter(prefix="/v1", tags=["invoices"], responses=problem_responses(401, 403, 422))

_BODY = read_body(InvoiceImportCreate, **{"text/csv": {
    "schema": {"type": "string", "description": (
        "A header line naming the columns (in any order; salesperson_id and outstanding_minor "
        f"may be left out): {', '.join(CSV_COLUMNS)}; then one invoice per line. UTF-8.")},
    "example": CSV_EXAMPLE}})


def _body(raw: bytes, content_type: str, max_rows: int) -> tuple[str, ParsedBody]:
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        try:
            return "json", parse_json(json.loads(raw), max_rows)
        except (ValueError, RecursionError):  # also not UTF-8, or a number too long to read
            raise ValidationFailed("The body is not valid JSON.", errors=[
                {"field": "body", "message": "malformed JSON"}]) from None
    if media == "text/csv":
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationFailed("The CSV body is not UTF-8 text.", errors=[
                {"field": "body", "message": "not UTF-8 text"}]) from None
        return "csv", parse_csv(text, max_rows)
    raise UnsupportedMediaType("An import is JSON (application/json) or CSV (text/csv), "
                               "named by the Content-Type header.")


@router.post("/invoice-imports", status_code=status.HTTP_201_CREATED,
             response_model=InvoiceImportPublic, dependencies=[require(*IMPORTERS)],
             responses=problem_responses(409, 413, 415), openapi_extra=_BODY)
async def import_invoices(request: Request, ctx: Ctx, response: Response, session: SessionDep,
                          principal: CurrentPrincipal) -> InvoiceImportPublic:
    """Import open invoices from another system, with their own numbers, dates and what is still
    owed: all rows or none (422 lists every bad row with its line and field). A number already
    imported with the same terms is left as it is, so sending a file again changes nothing.
    Each invoice is posted Dr 1100 receivables / Cr 3000 opening balance equity, dated when it
    was issued, and emits `invoice.imported`; from then on it is aged, scanned for overdue,
    dunned and paid like any invoice."""
    fmt, parsed = _body(await request.body(), request.headers.get("content-type", ""),
                        ctx.settings.import_max_rows)
    record = await service.import_invoices(session=session, outbox=ctx.outbox, clock=ctx.clock,
                                           principal=principal, parsed=parsed, fmt=fmt)
    response.headers["Location"] = f"{PATH}/{record.id}"
    return InvoiceImportPublic.of(record)


@router.get("/invoice-imports/{import_id}", response_model=InvoiceImportPublic,
            dependencies=[require(*READERS)], responses=problem_responses(404))
async def get_invoice_import(session: SessionDep,
                             import_id: Annotated[str, Path(max_length=36)]) -> InvoiceImportPublic:
    """An import: how many rows it was given, created and left unchanged, and its totals."""
    return InvoiceImportPublic.of(await service.get_import(session, import_id))

