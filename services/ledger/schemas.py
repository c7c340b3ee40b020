"""Request and response bodies of the ledger service."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import ConfigDict, Field

from services.ledger.models import (
    AccountKind,
    AllocationKind,
    CreditNote,
    DebitNote,
    DebitNoteKind,
    EntryKind,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentAllocation,
    PaymentMethod,
    PaymentStatus,
)
from services.ledger.posting import PostedEntry
from shared.dates import AwareTimestamp, BusinessDate
from shared.money import AmountMinor, Currency, PositiveAmountMinor
from shared.schemas import RequestModel, ResponseModel

AccountCode = Annotated[str, Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9._\-]+$",
                                   examples=["1100"])]
Ident = Annotated[str, Field(min_length=1, max_length=36)]
EffectiveAt = Annotated[AwareTimestamp | None, Field(
    description="The date it counts from: now when absent; never in the future nor before the "
                "invoice was issued. A return booked today for last month shows in last month's "
                "as-of reports; the journal entry is dated so, and `created_at` keeps when it "
                "was booked.", examples=["2026-01-31T17:00:00Z"])]
SalespersonId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._\-]+$")]


class AccountPublic(ResponseModel):
    code: str
    name: str
    kind: AccountKind = Field(description="asset, liability, equity, income or expense")
    normal_side: str = Field(description="debit or credit: the side that increases the balance")
    currency: str | None = Field(description="Only entries in this currency, when set")
    requires_customer: bool = Field(
        description="A customer sub-ledger: every line on it names a customer_id")
    system: bool


class JournalLineIn(RequestModel):
    account_code: AccountCode
    debit_minor: AmountMinor = 0
    credit_minor: AmountMinor = 0
    customer_id: Ident | None = None


class JournalEntryCreate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "memo": "Opening bank balance",
        "currency": "CNY",
        "posted_at": "2026-01-05T09:00:00Z",
        "lines": [
            {"account_code": "1000", "debit_minor": 125000, "credit_minor": 0},
            {"account_code": "3000", "debit_minor": 0, "credit_minor": 125000},
        ],
    }]})

    memo: Annotated[str, Field(min_length=1, max_length=500)]
    currency: Currency
    posted_at: AwareTimestamp | None = Field(
        default=None, description="When the entry takes effect; now when absent, never future")
    lines: Annotated[list[JournalLineIn], Field(max_length=500)]


class ReverseRequest(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"reason": "Posted to the wrong customer"}]})

    reason: Annotated[str, Field(min_length=1, max_length=400)]


class JournalLinePublic(ResponseModel):
    line_no: int
    account_code: str
    customer_id: str | None
    debit_minor: int
    credit_minor: int


class JournalEntryPublic(ResponseModel):
    id: str
    number: str
    kind: EntryKind
    memo: str
    currency: str
    posted_at: datetime
    source_type: str | None
    source_id: str | None
    reverses_entry_id: str | None
    reversed_by_entry_id: str | None
    created_by: str
    created_at: datetime
    total_minor: int = Field(description="Σ debit = Σ credit")
    lines: list[JournalLinePublic]

    @classmethod
    def of(cls, posted: PostedEntry) -> JournalEntryPublic:
        return cls.model_validate({
            **posted.entry.model_dump(), "total_minor": posted.total_minor,
            "lines": [JournalLinePublic.model_validate(line) for line in posted.lines]})


class TrialBalanceRowPublic(ResponseModel):
    code: str
    name: str
    kind: AccountKind
    normal_side: str
    currency: str
    debit_minor: int
    credit_minor: int
    balance_minor: int = Field(description="On the account's normal side: debit − credit for "
                                           "debit-normal accounts, credit − debit otherwise")


class TrialBalancePublic(ResponseModel):
    as_of: date
    currency: str | None = Field(description="The currency asked for, or null for all")
    accounts: list[TrialBalanceRowPublic] = Field(
        description="One row per account and currency with postings up to the end of as_of")
    total_debit_minor: int
    total_credit_minor: int


class LedgerProblem(ResponseModel):
    code: str = Field(description="unbalanced_entry, malformed_line, missing_customer, "
                                  "broken_reversal_link, journal_unbalanced, "
                                  "receivables_mismatch or unapplied_mismatch")
    entry_id: str | None = None
    detail: str


class ControlAccountCheck(ResponseModel):
    account_code: str
    currency: str
    balance_minor: int = Field(description="On the account's normal side")
    documents_minor: int


class LedgerCheckPublic(ResponseModel):
    checked_at: datetime
    balanced: bool
    entries_checked: int
    lines_checked: int
    total_debit_minor: int
    total_credit_minor: int
    problems: list[LedgerProblem]
    controls: list[ControlAccountCheck] = Field(
        description="Each control account per currency: its balance and the sum of the "
                    "documents it must equal (1100: the invoices' outstanding, which is the "
                    "aging's total; 2100: the customers' unapplied cash). A difference is a "
                    "problem (`receivables_mismatch`, `unapplied_mismatch`)")


class InvoiceCreate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "order_id": "0b8e0c5e-6d7a-4c36-8d1b-0a2f4f6b9e21",
        "customer_id": "5b1f7c3e-2a64-4d59-9a43-3f0d2f0c9a11",
        "salesperson_id": "S-ALICE",
        "currency": "CNY",
        "amount_minor": 125000,
        "issued_at": "2026-01-05T09:00:00Z",
        "due_date": "2026-02-04",
    }]})

    order_id: Ident
    customer_id: Ident
    salesperson_id: SalespersonId | None = None
    currency: Currency
    amount_minor: PositiveAmountMinor
    issued_at: AwareTimestamp | None = Field(default=None, description="Now when absent")
    due_date: BusinessDate


class InvoicePublic(ResponseModel):
    id: str
    number: str
    order_id: str | None = Field(description="The order invoiced; null for an open invoice "
                                             "imported from another system (`import_id`)")
    import_id: str | None = Field(description="The import that brought it "
                                              "(POST /v1/invoice-imports); null for an order's")
    customer_id: str
    salesperson_id: str | None
    currency: str
    amount_minor: int = Field(description="As invoiced; debit notes are counted apart")
    outstanding_minor: int = Field(description="amount + debit notes − paid − credited − "
                                               "written off")
    debit_notes_minor: int
    paid_minor: int = Field(description="Applied from payments, net of reversed payments")
    credited_minor: int
    written_off_minor: int
    status: InvoiceStatus = Field(description="From the money: open, partially_paid, paid or written_off. "
                                    "Whether it is overdue or disputed is shown by `overdue` and "
                                    "`disputed`, which apply beside any of these")
    overdue: bool = Field(description="Past its due date (as of today) with money outstanding")
    days_overdue: int = Field(description="Days past the due date while overdue, else 0")
    disputed: bool = Field(default=False, description="An open dispute on the invoice: the overdue "
                                                      "scan and dunning skip it until resolved")
    issued_at: datetime
    due_date: date
    paid_at: datetime | None = Field(description="When outstanding reached 0")
    journal_entry_id: str | None
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, invoice: Invoice, today: date, *, disputed: bool = False) -> InvoicePublic:
        overdue = invoice.outstanding_minor > 0 and today > invoice.due_date
        return cls.model_validate({
            **invoice.model_dump(), "overdue": overdue,
            "days_overdue": (today - invoice.due_date).days if overdue else 0, "disputed": disputed})


# ---------------------------------------------------------------- payments

EXAMPLE_CUSTOMER = "5b1f7c3e-2a64-4d59-9a43-3f0d2f0c9a11"
EXAMPLE_INVOICE = "9d2e4f61-3b7a-4c1e-8f0a-6a5b4c3d2e1f"


class AllocationIn(RequestModel):
    invoice_id: Ident
    amount_minor: PositiveAmountMinor


Allocations = Annotated[list[AllocationIn], Field(max_length=200)]


class PaymentCreate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer_id": EXAMPLE_CUSTOMER, "amount_minor": 150000, "currency": "CNY",
        "received_at": "2026-02-03T10:00:00Z", "method": "bank_transfer",
        "reference": "BANK-20260203-0042",
        "allocations": [{"invoice_id": EXAMPLE_INVOICE, "amount_minor": 125000}],
    }, {
        "customer_id": EXAMPLE_CUSTOMER, "amount_minor": 80000, "currency": "CNY",
        "method": "offset_goods", "reference": "Goods returned against the debt, GRN-117",
    }]})

    customer_id: Ident
    amount_minor: PositiveAmountMinor
    currency: Currency
    received_at: AwareTimestamp | None = Field(
        default=None, description="When the money arrived; now when absent, never future")
    method: PaymentMethod
    reference: Annotated[str | None, Field(max_length=100)] = None
    allocations: Allocations | None = Field(
        default=None, description="Where the money goes; absent: oldest due first. What is "
                                  "not allocated stays as the customer's unapplied cash.")


class AllocationPublic(ResponseModel):
    invoice_id: str
    invoice_number: str | None = None
    amount_minor: int
    kind: AllocationKind = Field(description="payment (when received), unapplied (drawn later) "
                                             "or returned (negative: taken back off the invoice "
                                             "by a credit note into unapplied cash)")
    journal_entry_id: str
    created_at: datetime


class PaymentPublic(ResponseModel):
    id: str
    number: str
    customer_id: str
    currency: str
    amount_minor: int
    method: PaymentMethod
    reference: str | None
    received_at: datetime
    allocated_minor: int = Field(description="Applied to invoices when received")
    unapplied_minor: int = Field(description="Not allocated when received")
    unapplied_remaining_minor: int = Field(description="Of that, not drawn on since")
    status: PaymentStatus = Field(description="posted or reversed")
    journal_entry_id: str | None
    reversal_entry_id: str | None
    reversed_at: datetime | None
    reversal_reason: str | None
    allocations: list[AllocationPublic]
    created_by: str
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, payment: Payment, allocations: list[PaymentAllocation],
           numbers: dict[str, str]) -> PaymentPublic:
        return cls.model_validate({
            **payment.model_dump(), "allocated_minor": payment.amount_minor - payment.unapplied_minor,
            "allocations": [AllocationPublic.model_validate(
                {**a.model_dump(), "invoice_number": numbers.get(a.invoice_id)})
                for a in allocations]})


class UnappliedBalancePublic(ResponseModel):
    currency: str
    unapplied_minor: int


class UnappliedPublic(ResponseModel):
    customer_id: str
    balances: list[UnappliedBalancePublic] = Field(description="One row per currency")


class UnappliedAllocationCreate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "currency": "CNY",
        "allocations": [{"invoice_id": EXAMPLE_INVOICE, "amount_minor": 25000}],
    }]})

    currency: Currency
    allocations: Allocations | None = Field(
        default=None, description="Where the unapplied cash goes; absent: oldest due first")


class UnappliedAllocationPublic(ResponseModel):
    customer_id: str
    currency: str
    allocated_minor: int
    unapplied_minor: int = Field(description="What is left unapplied afterwards")
    journal_entry_id: str
    allocations: list[AllocationPublic]


# ---------------------------------------------------------------- credit and debit notes


Reason = Annotated[str, Field(min_length=1, max_length=400)]


class CreditNoteCreate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "invoice_id": EXAMPLE_INVOICE, "amount_minor": 12500,
        "reason": "Return of 10 units, quality complaint QC-88"}]})

    invoice_id: Ident
    amount_minor: PositiveAmountMinor = Field(description="At most what is outstanding, or with "
                                                          "`paid_to_unapplied` what is "
                                                          "outstanding plus what was paid")
    reason: Reason
    effective_at: EffectiveAt = None
    paid_to_unapplied: bool = Field(
        default=False, description="Credit what was paid too: the part above the outstanding is "
                                   "taken back off the payments that paid the invoice (newest "
                                   "first) and becomes the customer's unapplied cash, to apply "
                                   "elsewhere or refund (POST /v1/refunds)")


class NotePublic(ResponseModel):
    id: str
    number: str
    invoice_id: str
    customer_id: str
    currency: str
    amount_minor: int
    reason: str
    journal_entry_id: str
    effective_at: datetime = Field(description="The date it counts from (as-of reports, the "
                                               "journal entry's posted_at)")
    created_by: str
    created_at: datetime = Field(description="When it was booked")


class CreditNotePublic(NotePublic):
    returned_to_unapplied_minor: int = Field(
        description="Of the amount, what had been paid and is now the customer's unapplied cash")


class DebitNoteCreate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "invoice_id": EXAMPLE_INVOICE, "amount_minor": 1800, "kind": "interest",
        "reason": "Late-payment interest, 30 days at 0.05 % a day"}]})

    invoice_id: Ident
    amount_minor: PositiveAmountMinor
    reason: Reason
    kind: DebitNoteKind
    effective_at: EffectiveAt = None


class DebitNotePublic(NotePublic):
    kind: DebitNoteKind = Field(description="interest or fee")


def note_public(note: CreditNote | DebitNote) -> CreditNotePublic:
    shape = DebitNotePublic if isinstance(note, DebitNote) else CreditNotePublic
    return shape.model_validate(note)


# ---------------------------------------------------------------- receivables


class OrderBalancePublic(ResponseModel):
    order_id: str
    invoice_id: str
    invoice_number: str
    currency: str
    invoiced_minor: int = Field(description="The invoice as issued")
    debit_notes_minor: int = Field(description="Interest and fees added since")
    paid_minor: int
    credited_minor: int
    written_off_minor: int
    outstanding_minor: int = Field(description="invoiced + debit notes − paid − credited − "
                                               "written off")
    status: InvoiceStatus


class StatementDispute(ResponseModel):
    id: str
    reason: str
    contact_role: str | None
    opened_at: datetime


class StatementLine(ResponseModel):
    date: date
    document_type: str = Field(description="invoice, payment, credit_note, debit_note, reversal, "
                                           "allocation (of unapplied cash) or manual")
    document_id: str
    number: str
    journal_entry_number: str
    description: str
    debit_minor: int
    credit_minor: int
    balance_minor: int = Field(description="Running receivable balance after this line")
    dispute: StatementDispute | None = Field(
        default=None, description="On an invoice's line: its dispute open at the end of `to`")


class StatementPublic(ResponseModel):
    customer_id: str
    currency: str
    from_: date = Field(alias="from", serialization_alias="from")
    to: date
    opening_balance_minor: int
    lines: list[StatementLine]
    closing_balance_minor: int
    unapplied_minor: int = Field(description="The customer's unapplied cash at the end of `to` "
                                             "(not part of the receivable balance)")

    model_config = ConfigDict(populate_by_name=True)


class ExposurePublic(ResponseModel):
    customer_id: str
    currency: str
    as_of: date
    open_receivables_minor: int = Field(description="Σ outstanding of the customer's invoices")
    overdue_minor: int = Field(description="Σ outstanding of invoices past their due date")
    max_days_overdue: int
    invoices_open: int = Field(description="Invoices with money outstanding")
    invoices_paid_on_time: int = Field(description="Paid (by payments) on or before the due date")
    invoices_paid_late: int
    avg_days_late: float | None = Field(description="Over invoices paid late; null when none")
    unapplied_minor: int
