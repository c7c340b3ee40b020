"""Route dependencies the core's routes and its subpackages' routes share: the request
context, and an invoice or a customer the principal may see, loaded once (404 otherwise)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request

from services.ledger import invoices, receivables
from services.ledger.config import LedgerSettings
from services.ledger.models import Invoice
from shared.auth import CurrentPrincipal
from shared.clock import Clock
from shared.db import SessionDep
from shared.outbox import Outbox


@dataclass(frozen=True)
class LedgerContext:
    """What ledger's routes (the core's and its subpackages') hand the use cases besides the
    session: the outbox, the clock and the settings."""

    outbox: Outbox
    clock: Clock
    settings: LedgerSettings


async def ledger_context(request: Request) -> LedgerContext:
    state = request.app.state
    return LedgerContext(state.outbox, state.clock, state.settings)


Ctx = Annotated[LedgerContext, Depends(ledger_context)]


async def load_invoice(session: SessionDep, principal: CurrentPrincipal,
                       invoice_id: Annotated[str, Path(max_length=36)]) -> Invoice:
    return await invoices.get_visible_invoice(session, principal, invoice_id)


InvoiceOr404 = Annotated[Invoice, Depends(load_invoice)]


async def load_customer(session: SessionDep, principal: CurrentPrincipal,
                        customer_id: Annotated[str, Path(max_length=36)]) -> str:
    return await receivables.ensure_customer_visible(session, principal, customer_id)


VisibleCustomer = Annotated[str, Depends(load_customer)]
