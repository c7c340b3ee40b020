"""Request and response bodies of the ledger service."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AwareDatetime, ConfigDict, Field

from services.ledger.models import Invoice
from services.ledger.posting import PostedEntry
from shared.money import AmountMinor, Currency, PositiveAmountMinor
from shared.schemas import RequestModel, ResponseModel

AccountCode = Annotated[str, Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9._\-]+$",
                                   examples=["1100"])]
Ident = Annotated[str, Field(min_length=1, max_length=36)]
SalespersonId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._\-]+$")]


class AccountPublic(ResponseModel):
    code: str
    name: str
    kind: str = Field(description="asset, liability, equity, income or expense")
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
        "memo": "Opening receivable for Brightway",
        "currency": "CNY",
        "posted_at": "2026-01-05T09:00:00Z",
        "lines": [
            {"account_code": "1100", "debit_minor": 125000, "credit_minor": 0,
             "customer_id": "5b1f7c3e-2a64-4d59-9a43-3f0d2f0c9a11"},
            {"account_code": "3000", "debit_minor": 0, "credit_minor": 125000},
        ],
    }]})

    memo: Annotated[str, Field(min_length=1, max_length=500)]
    currency: Currency
    posted_at: AwareDatetime | None = Field(
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
    kind: str
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
    kind: str
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
                                  "broken_reversal_link or journal_unbalanced")
    entry_id: str | None = None
    detail: str


class LedgerCheckPublic(ResponseModel):
    checked_at: datetime
    balanced: bool
    entries_checked: int
    lines_checked: int
    total_debit_minor: int
    total_credit_minor: int
    problems: list[LedgerProblem]


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
    issued_at: AwareDatetime | None = Field(default=None, description="Now when absent")
    due_date: date


class InvoicePublic(ResponseModel):
    id: str
    number: str
    order_id: str
    customer_id: str
    salesperson_id: str | None
    currency: str
    amount_minor: int
    outstanding_minor: int
    status: str = Field(description="open, partially_paid, paid, disputed or written_off")
    overdue: bool = Field(description="Past its due date (as of today) with money outstanding")
    days_overdue: int = Field(description="Days past the due date while overdue, else 0")
    issued_at: datetime
    due_date: date
    journal_entry_id: str | None
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, invoice: Invoice, today: date) -> InvoicePublic:
        overdue = invoice.outstanding_minor > 0 and today > invoice.due_date
        return cls.model_validate({
            **invoice.model_dump(), "overdue": overdue,
            "days_overdue": (today - invoice.due_date).days if overdue else 0})
