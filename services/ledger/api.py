"""Routes of the ledger service: parse, authorize, call the service, shape the response."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from services.ledger import dates, invoices, journal, notes, payments, receivables, repository
from services.ledger.deps import Ctx, InvoiceOr404, VisibleCustomer
from services.ledger.errors import AccountNotFound
from services.ledger.models import (
    Account,
    AccountKind,
    CreditNote,
    DebitNote,
    EntryKind,
    InvoiceStatusFilter,
    PaymentMethod,
    PaymentStatus,
)
from services.ledger.schemas import (
    AccountPublic,
    AllocationPublic,
    CreditNoteCreate,
    CreditNotePublic,
    DebitNoteCreate,
    DebitNotePublic,
    ExposurePublic,
    InvoiceCreate,
    InvoicePublic,
    JournalEntryCreate,
    JournalEntryPublic,
    LedgerCheckPublic,
    OrderBalancePublic,
    PaymentCreate,
    PaymentPublic,
    ReverseRequest,
    StatementPublic,
    TrialBalancePublic,
    UnappliedAllocationCreate,
    UnappliedAllocationPublic,
    UnappliedBalancePublic,
    UnappliedPublic,
)
from shared.auth import CurrentPrincipal, Role, require
from shared.dates import BusinessDate
from shared.db import SessionDep
from shared.errors import problem_responses
from shared.money import Currency
from shared.pagination import (
    Cursor,
    Limit,
    Page,
    decode_cursor,
    encode_cursor,
)
from shared.versioning import set_etag

JOURNAL_WRITERS = (Role.finance,)
LEDGER_READERS = (Role.finance, Role.credit_manager, Role.auditor, Role.service)
INVOICE_ISSUERS = (Role.finance, Role.service)
INVOICE_READERS = (*LEDGER_READERS, Role.sales)
PAYMENT_WRITERS = (Role.finance,)
NOTE_ISSUERS = (Role.finance, Role.service)
RECEIVABLE_READERS = (*LEDGER_READERS, Role.sales)  # sales: own customers and orders only

accounts_router = APIRouter(prefix="/v1", tags=["accounts"],
                            responses=problem_responses(401, 403, 422))
journal_router = APIRouter(prefix="/v1", tags=["journal"],
                           responses=problem_responses(401, 403, 422))
reports_router = APIRouter(prefix="/v1", tags=["reports"],
                           responses=problem_responses(401, 403, 422))
invoices_router = APIRouter(prefix="/v1", tags=["invoices"],
                            responses=problem_responses(401, 403, 422))

payments_router = APIRouter(prefix="/v1", tags=["payments"],
                            responses=problem_responses(401, 403, 422))
notes_router = APIRouter(prefix="/v1", tags=["notes"],
                         responses=problem_responses(401, 403, 422))
receivables_router = APIRouter(prefix="/v1", tags=["receivables"],
                               responses=problem_responses(401, 403, 422))

EntryId = Annotated[str, Path(max_length=36)]
DocumentId = Annotated[str, Path(max_length=36)]


# ---------------------------------------------------------------- accounts


@accounts_router.get("/accounts", response_model=Page[AccountPublic],
                     dependencies=[require(*LEDGER_READERS)])
async def list_accounts(session: SessionDep, limit: Limit = 50, cursor: Cursor = None,
                        kind: AccountKind | None = None) -> Page[Account]:
    """The chart of accounts, by code."""
    after = decode_cursor(cursor, 1)
    rows = await repository.list_accounts(session, limit=limit + 1,
                                          after=after[0] if after else None, kind=kind)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].code)
    return Page(items=rows, next_cursor=next_cursor)


@accounts_router.get("/accounts/{code}", response_model=AccountPublic,
                     dependencies=[require(*LEDGER_READERS)], responses=problem_responses(404))
async def get_account(session: SessionDep, code: Annotated[str, Path(max_length=20)]) -> Account:
    """One account of the chart."""
    account = await repository.get_account(session, code)
    if account is None:
        raise AccountNotFound(code)
    return account


# ---------------------------------------------------------------- journal


@journal_router.post("/journal-entries", status_code=status.HTTP_201_CREATED,
                     response_model=JournalEntryPublic, dependencies=[require(*JOURNAL_WRITERS)])
async def post_journal_entry(body: JournalEntryCreate, ctx: Ctx, response: Response,
                             session: SessionDep,
                             principal: CurrentPrincipal) -> JournalEntryPublic:
    """Post a balanced manual journal entry (Σ debit = Σ credit); it can never be edited."""
    posted = await journal.post_manual_entry(
        session=session, outbox=ctx.outbox, clock=ctx.clock,
        principal=principal, data=body)
    response.headers["Location"] = f"/v1/journal-entries/{posted.entry.id}"
    return JournalEntryPublic.of(posted)


@journal_router.get("/journal-entries", response_model=Page[JournalEntryPublic],
                    dependencies=[require(*LEDGER_READERS)])
async def list_journal_entries(
    session: SessionDep, limit: Limit = 50, cursor: Cursor = None,
    account_code: Annotated[str | None, Query(max_length=20)] = None,
    customer_id: Annotated[str | None, Query(max_length=36)] = None,
    from_: Annotated[BusinessDate | None, Query(alias="from", description="Posted on or after")] = None,
    to: Annotated[BusinessDate | None, Query(description="Posted on or before")] = None,
    kind: EntryKind | None = None,
    source_type: Annotated[str | None, Query(max_length=30)] = None,
    source_id: Annotated[str | None, Query(max_length=36)] = None,
) -> Page[JournalEntryPublic]:
    """Journal entries in posting order, with their lines; filter by account, customer, dates."""
    page = await repository.list_entries(
        session, limit=limit, cursor=cursor, account_code=account_code,
        customer_id=customer_id,
        posted_from=dates.start_of_day(from_) if from_ else None,
        posted_before=dates.end_of_day(to) if to else None, kind=kind,
        source_type=source_type, source_id=source_id)
    entries = await journal.with_lines(session, page.items)
    return Page(items=[JournalEntryPublic.of(e) for e in entries], next_cursor=page.next_cursor)


@journal_router.get("/journal-entries/{entry_id}", response_model=JournalEntryPublic,
                    dependencies=[require(*LEDGER_READERS)], responses=problem_responses(404))
async def get_journal_entry(session: SessionDep, entry_id: EntryId) -> JournalEntryPublic:
    """One journal entry with its lines."""
    return JournalEntryPublic.of(await journal.get_entry(session, entry_id))


@journal_router.post("/journal-entries/{entry_id}/reverse", status_code=status.HTTP_201_CREATED,
                     response_model=JournalEntryPublic, dependencies=[require(*JOURNAL_WRITERS)],
                     responses=problem_responses(404, 409))
async def reverse_journal_entry(entry_id: EntryId, body: ReverseRequest, ctx: Ctx,
                                response: Response, session: SessionDep,
                                principal: CurrentPrincipal) -> JournalEntryPublic:
    """Correct an entry: post its mirror image, linked both ways. An entry is reversed once."""
    reversal = await journal.reverse_entry(
        session=session, outbox=ctx.outbox, clock=ctx.clock,
        principal=principal, entry_id=entry_id, reason=body.reason)
    response.headers["Location"] = f"/v1/journal-entries/{reversal.entry.id}"
    return JournalEntryPublic.of(reversal)


# ---------------------------------------------------------------- reports


@reports_router.get("/trial-balance", response_model=TrialBalancePublic,
                    dependencies=[require(Role.finance, Role.credit_manager, Role.auditor)])
async def get_trial_balance(
    ctx: Ctx, session: SessionDep,
    as_of: Annotated[BusinessDate | None, Query(description="Up to the end of this day (UTC); today "
                                                    "when absent")] = None,
    currency: Annotated[Currency | None, Query(description="Only entries in this currency")] = None,
) -> journal.TrialBalance:
    """Σ debit, Σ credit and balance per account up to a date; the two totals are always equal."""
    return await journal.trial_balance(session, as_of=as_of or ctx.clock.today(),
                                       currency=currency)


@reports_router.get("/ledger-check", response_model=LedgerCheckPublic,
                    dependencies=[require(Role.finance, Role.credit_manager, Role.auditor)])
async def check_ledger(ctx: Ctx, session: SessionDep) -> LedgerCheckPublic:
    """Recompute the journal from its lines: every entry and the whole journal must balance,
    and each control account must equal its documents per currency (1100 receivables = the
    open invoices' outstanding, the aging's total; 2100 = the customers' unapplied cash)."""
    check = await journal.check_ledger(session, ctx.clock)
    return LedgerCheckPublic.model_validate({**vars(check), "balanced": check.balanced})


# ---------------------------------------------------------------- invoices


@invoices_router.post("/invoices", status_code=status.HTTP_201_CREATED, response_model=InvoicePublic,
                      dependencies=[require(*INVOICE_ISSUERS)],
                      responses={200: {"model": InvoicePublic,
                                       "description": "The order was already invoiced with "
                                                      "these terms; the existing invoice"},
                                 **problem_responses(409)})
async def issue_invoice(body: InvoiceCreate, ctx: Ctx, response: Response,
                        session: SessionDep, principal: CurrentPrincipal) -> InvoicePublic:
    """Issue an order's invoice and post Dr receivables / Cr revenue; idempotent per order."""
    clock = ctx.clock
    invoice, created = await invoices.issue_invoice(
        session=session, outbox=ctx.outbox, clock=clock, principal=principal,
        data=body)
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/v1/invoices/{invoice.id}"
    set_etag(response, invoice.version)
    # Only a replay can show an existing invoice, and so a dispute on it.
    disputed = not created and bool(await invoices.open_dispute_ids(session, [invoice.id]))
    return InvoicePublic.of(invoice, clock.today(), disputed=disputed)


@invoices_router.get("/invoices", response_model=Page[InvoicePublic],
                     dependencies=[require(*INVOICE_READERS)])
async def list_invoices(
    ctx: Ctx, session: SessionDep, principal: CurrentPrincipal,
    limit: Limit = 50, cursor: Cursor = None,
    customer_id: Annotated[str | None, Query(max_length=36)] = None,
    order_id: Annotated[str | None, Query(max_length=36)] = None,
    salesperson_id: Annotated[str | None, Query(max_length=64)] = None,
    status_: Annotated[InvoiceStatusFilter | None, Query(
        alias="status", description="A stored status, or `overdue` / `disputed` (derived)")] = None,
    due_from: Annotated[BusinessDate | None, Query(description="Due on or after")] = None,
    due_to: Annotated[BusinessDate | None, Query(description="Due on or before")] = None,
    overdue: Annotated[bool | None, Query(description="Only (not) overdue invoices")] = None,
) -> Page[InvoicePublic]:
    """List invoices, oldest first; sales principals see only their own."""
    visible, salesperson_id = principal.salesperson_scope(salesperson_id)
    if not visible:
        return Page(items=[])
    today = ctx.clock.today()
    page = await repository.list_invoices(
        session, limit=limit, cursor=cursor, customer_id=customer_id,
        order_id=order_id, salesperson_id=salesperson_id, status=status_, due_from=due_from,
        due_to=due_to, overdue=overdue, today=today)
    disputed = await invoices.open_dispute_ids(session, (i.id for i in page.items))
    return page.map(lambda i: InvoicePublic.of(i, today, disputed=i.id in disputed))


@invoices_router.get("/invoices/{invoice_id}", response_model=InvoicePublic,
                     dependencies=[require(*INVOICE_READERS)], responses=problem_responses(404))
async def get_invoice(invoice: InvoiceOr404, ctx: Ctx, response: Response,
                      session: SessionDep) -> InvoicePublic:
    """One invoice with its outstanding amount, whether it is overdue and whether it is disputed."""
    set_etag(response, invoice.version)
    disputed = bool(await invoices.open_dispute_ids(session, [invoice.id]))
    return InvoicePublic.of(invoice, ctx.clock.today(), disputed=disputed)


# ---------------------------------------------------------------- payments


def _payment_public(view: payments.PaymentView) -> PaymentPublic:
    return PaymentPublic.of(view.payment, view.allocations, view.invoice_numbers)


@payments_router.post("/payments", status_code=status.HTTP_201_CREATED, response_model=PaymentPublic,
                      dependencies=[require(*PAYMENT_WRITERS)])
async def receive_payment(body: PaymentCreate, ctx: Ctx, response: Response,
                          session: SessionDep, principal: CurrentPrincipal) -> PaymentPublic:
    """Post a payment: to the named invoices or oldest due first; the rest stays unapplied."""
    view = await payments.receive_payment(
        session=session, outbox=ctx.outbox, clock=ctx.clock,
        principal=principal, data=body)
    response.headers["Location"] = f"/v1/payments/{view.payment.id}"
    set_etag(response, view.payment.version)
    return _payment_public(view)


@payments_router.get("/payments", response_model=Page[PaymentPublic],
                     dependencies=[require(*LEDGER_READERS)])
async def list_payments(
    session: SessionDep, limit: Limit = 50, cursor: Cursor = None,
    customer_id: Annotated[str | None, Query(max_length=36)] = None,
    currency: Currency | None = None,
    status_: Annotated[PaymentStatus | None, Query(alias="status")] = None,
    method: PaymentMethod | None = None,
    received_from: Annotated[BusinessDate | None, Query(description="Received on or after")] = None,
    received_to: Annotated[BusinessDate | None, Query(description="Received on or before")] = None,
) -> Page[PaymentPublic]:
    """Payments in the order they were posted, with their allocations."""
    page = await repository.list_payments(
        session, limit=limit, cursor=cursor, customer_id=customer_id,
        currency=currency, status=status_, method=method,
        received_from=dates.start_of_day(received_from) if received_from else None,
        received_before=dates.end_of_day(received_to) if received_to else None)
    views = await payments.payment_views(session, page.items)
    return Page(items=[_payment_public(v) for v in views], next_cursor=page.next_cursor)


@payments_router.get("/payments/{payment_id}", response_model=PaymentPublic,
                     dependencies=[require(*LEDGER_READERS)], responses=problem_responses(404))
async def get_payment(session: SessionDep, payment_id: DocumentId,
                      response: Response) -> PaymentPublic:
    """One payment with every allocation made from it."""
    view = await payments.get_payment(session, payment_id)
    set_etag(response, view.payment.version)
    return _payment_public(view)


@payments_router.post("/payments/{payment_id}/reverse", response_model=PaymentPublic,
                      dependencies=[require(*PAYMENT_WRITERS)], responses=problem_responses(404, 409))
async def reverse_payment(payment_id: DocumentId, body: ReverseRequest, ctx: Ctx,
                          response: Response, session: SessionDep,
                          principal: CurrentPrincipal) -> PaymentPublic:
    """Reverse a payment that did not hold (bounced): invoices and unapplied cash are restored, once."""
    payment = await payments.reverse_payment(
        session=session, outbox=ctx.outbox, clock=ctx.clock,
        principal=principal, payment_id=payment_id, reason=body.reason)
    set_etag(response, payment.version)
    return _payment_public((await payments.payment_views(session, [payment]))[0])


# ---------------------------------------------------------------- unapplied cash


@payments_router.get("/customers/{customer_id}/unapplied", response_model=UnappliedPublic,
                     dependencies=[require(*RECEIVABLE_READERS)], responses=problem_responses(404))
async def get_unapplied(session: SessionDep, customer_id: VisibleCustomer) -> UnappliedPublic:
    """The customer's unapplied cash (received, not yet applied to an invoice), per currency."""
    balances = await payments.unapplied_balances(session, customer_id)
    return UnappliedPublic(customer_id=customer_id, balances=[
        UnappliedBalancePublic(currency=b.currency, unapplied_minor=b.unapplied_minor)
        for b in balances])


@payments_router.post("/customers/{customer_id}/unapplied/allocations",
                      status_code=status.HTTP_201_CREATED, response_model=UnappliedAllocationPublic,
                      dependencies=[require(*PAYMENT_WRITERS)])
async def apply_unapplied(customer_id: Annotated[str, Path(max_length=36)],
                          body: UnappliedAllocationCreate, ctx: Ctx, session: SessionDep,
                          principal: CurrentPrincipal) -> UnappliedAllocationPublic:
    """Apply unapplied cash to invoices (named, or oldest due first): Dr unapplied / Cr receivables."""
    applied = await payments.apply_unapplied(
        session=session, outbox=ctx.outbox, clock=ctx.clock,
        principal=principal, customer_id=customer_id, data=body)
    return UnappliedAllocationPublic(
        customer_id=applied.customer_id, currency=applied.currency,
        allocated_minor=applied.allocated_minor, unapplied_minor=applied.unapplied_minor,
        journal_entry_id=applied.journal_entry_id,
        allocations=[AllocationPublic.model_validate(
            {**a.model_dump(), "invoice_number": applied.invoice_numbers.get(a.invoice_id)})
            for a in applied.allocations])


# ---------------------------------------------------------------- credit and debit notes


@notes_router.post("/credit-notes", status_code=status.HTTP_201_CREATED,
                   response_model=CreditNotePublic, dependencies=[require(*NOTE_ISSUERS)])
async def issue_credit_note(body: CreditNoteCreate, ctx: Ctx, response: Response,
                            session: SessionDep, principal: CurrentPrincipal) -> CreditNote:
    """Credit an invoice (return, allowance): Dr sales returns / Cr receivables; never above outstanding."""
    note = await notes.issue_credit_note(
        session=session, outbox=ctx.outbox, clock=ctx.clock,
        principal=principal, data=body)
    response.headers["Location"] = f"/v1/credit-notes/{note.id}"
    return note


@notes_router.get("/credit-notes", response_model=Page[CreditNotePublic],
                  dependencies=[require(*LEDGER_READERS)])
async def list_credit_notes(
    session: SessionDep, limit: Limit = 50, cursor: Cursor = None,
    invoice_id: Annotated[str | None, Query(max_length=36)] = None,
    customer_id: Annotated[str | None, Query(max_length=36)] = None,
) -> Page[CreditNote]:
    """Credit notes in the order they were issued."""
    return await repository.list_notes(session, CreditNote, limit=limit, cursor=cursor,
                                       invoice_id=invoice_id, customer_id=customer_id)


@notes_router.get("/credit-notes/{note_id}", response_model=CreditNotePublic,
                  dependencies=[require(*LEDGER_READERS)], responses=problem_responses(404))
async def get_credit_note(session: SessionDep, note_id: DocumentId) -> CreditNote:
    """One credit note."""
    return await notes.get_credit_note(session, note_id)


@notes_router.post("/debit-notes", status_code=status.HTTP_201_CREATED,
                   response_model=DebitNotePublic, dependencies=[require(*NOTE_ISSUERS)])
async def issue_debit_note(body: DebitNoteCreate, ctx: Ctx, response: Response,
                           session: SessionDep, principal: CurrentPrincipal) -> DebitNote:
    """Charge late-payment interest or a fee on an invoice: Dr receivables / Cr late-payment income."""
    note = await notes.issue_debit_note(
        session=session, outbox=ctx.outbox, clock=ctx.clock,
        principal=principal, data=body)
    response.headers["Location"] = f"/v1/debit-notes/{note.id}"
    return note


@notes_router.get("/debit-notes", response_model=Page[DebitNotePublic],
                  dependencies=[require(*LEDGER_READERS)])
async def list_debit_notes(
    session: SessionDep, limit: Limit = 50, cursor: Cursor = None,
    invoice_id: Annotated[str | None, Query(max_length=36)] = None,
    customer_id: Annotated[str | None, Query(max_length=36)] = None,
) -> Page[DebitNote]:
    """Debit notes in the order they were issued."""
    return await repository.list_notes(session, DebitNote, limit=limit, cursor=cursor,
                                       invoice_id=invoice_id, customer_id=customer_id)


@notes_router.get("/debit-notes/{note_id}", response_model=DebitNotePublic,
                  dependencies=[require(*LEDGER_READERS)], responses=problem_responses(404))
async def get_debit_note(session: SessionDep, note_id: DocumentId) -> DebitNote:
    """One debit note."""
    return await notes.get_debit_note(session, note_id)


# ---------------------------------------------------------------- receivables


@receivables_router.get("/orders/{order_id}/balance", response_model=OrderBalancePublic,
                        dependencies=[require(*RECEIVABLE_READERS)], responses=problem_responses(404))
async def get_order_balance(session: SessionDep, principal: CurrentPrincipal,
                            order_id: Annotated[str, Path(max_length=36)]) -> OrderBalancePublic:
    """What was invoiced for an order and what is left of it; 404 until the order is invoiced."""
    invoice = await receivables.order_balance(session, principal, order_id)
    return OrderBalancePublic(
        order_id=invoice.order_id, invoice_id=invoice.id, invoice_number=invoice.number,
        currency=invoice.currency, invoiced_minor=invoice.amount_minor,
        debit_notes_minor=invoice.debit_notes_minor, paid_minor=invoice.paid_minor,
        credited_minor=invoice.credited_minor, written_off_minor=invoice.written_off_minor,
        outstanding_minor=invoice.outstanding_minor, status=invoice.status)


@receivables_router.get("/customers/{customer_id}/statement", response_model=StatementPublic,
                        dependencies=[require(*RECEIVABLE_READERS)], responses=problem_responses(404))
async def get_statement(
    ctx: Ctx, session: SessionDep, customer_id: VisibleCustomer,
    from_: Annotated[BusinessDate | None, Query(alias="from", description="First day; the 1st of "
                                                                   "`to`'s month when absent")] = None,
    to: Annotated[BusinessDate | None, Query(description="Last day; today when absent")] = None,
    currency: Annotated[Currency | None, Query(description="Required when the customer has "
                                                           "receivables in several")] = None,
) -> StatementPublic:
    """The customer's statement: opening balance, every document with a running balance, closing."""
    to = to or ctx.clock.today()
    got = await receivables.statement(session, customer_id=customer_id, currency=currency,
                                  from_=from_ or to.replace(day=1), to=to)
    return StatementPublic.model_validate(
        {**vars(got), "lines": [vars(line) for line in got.lines]})


@receivables_router.get("/customers/{customer_id}/exposure", response_model=ExposurePublic,
                        dependencies=[require(*RECEIVABLE_READERS)], responses=problem_responses(404))
async def get_exposure(
    ctx: Ctx, session: SessionDep, customer_id: VisibleCustomer,
    currency: Annotated[Currency | None, Query(description="Required when the customer has "
                                                           "receivables in several")] = None,
) -> ExposurePublic:
    """Open and overdue receivables and payment history as of today (credit's evaluations read it)."""
    got = await receivables.exposure(session, customer_id=customer_id, currency=currency,
                                 today=ctx.clock.today())
    return ExposurePublic.model_validate(vars(got))


routers = [accounts_router, journal_router, reports_router, invoices_router, payments_router,
           notes_router, receivables_router]
