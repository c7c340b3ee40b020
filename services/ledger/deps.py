"""Route dependencies the core's routes and its subpackages' routes share: an invoice or a
customer the principal may see, loaded once (404 otherwise)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from services.ledger import invoices, receivables
from services.ledger.models import Invoice
from shared.auth import CurrentPrincipal
from shared.db import SessionDep


async def load_invoice(session: SessionDep, principal: CurrentPrincipal,
                       invoice_id: Annotated[str, Path(max_length=36)]) -> Invoice:
    return await invoices.get_visible_invoice(session, principal, invoice_id)


InvoiceOr404 = Annotated[Invoice, Depends(load_invoice)]


async def load_customer(session: SessionDep, principal: CurrentPrincipal,
                        customer_id: Annotated[str, Path(max_length=36)]) -> str:
    return await receivables.ensure_customer_visible(session, principal, customer_id)


VisibleCustomer = Annotated[str, Depends(load_customer)]
