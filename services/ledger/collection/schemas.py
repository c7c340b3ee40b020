"""Request and response bodies of collection work."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import ConfigDict, Field

from services.ledger.collection.models import ContactRole, PromiseStatus, ScanStatus
from services.ledger.models import DisputeStatus
from shared.dates import BusinessDate
from shared.money import PositiveAmountMinor
from shared.schemas import RequestModel, ResponseModel

Text = Annotated[str, Field(min_length=1, max_length=1000)]


class OverdueScanRequest(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"as_of": "2026-02-05"}, {}]})

    as_of: BusinessDate | None = Field(default=None, description="The scan date; today when absent. "
                                                         "Past dates catch up; future dates are refused")


class OverdueScanPublic(ResponseModel):
    id: str
    as_of: date
    status: ScanStatus = Field(description="running, completed or failed (a new scan resumes a failed one)")
    trigger: str = Field(description="request or schedule")
    started_by: str
    started_at: datetime
    finished_at: datetime | None
    invoices_examined: int = Field(description="Invoices found with at least one level to emit")
    crossings_emitted: int = Field(description="`invoice.overdue` events emitted by this scan")
    promises_broken: int
    promises_kept: int
    batches: int = Field(description="Batches committed (each: crossings and their events)")
    error: str | None


class PromiseCreate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "promised_date": "2099-02-20", "amount_minor": 60000, "contact_role": "finance",
        "note": "Ms Wang (finance) confirmed by letter: half on the 20th"}]})

    promised_date: BusinessDate = Field(description="The customer pays by this day; not before today")
    amount_minor: PositiveAmountMinor = Field(description="At most the invoice's outstanding")
    contact_role: ContactRole = Field(description="Who in the customer's payment chain promised")
    note: Text | None = None


class PromisePublic(ResponseModel):
    id: str
    invoice_id: str
    invoice_number: str | None = None
    customer_id: str
    salesperson_id: str | None
    promised_date: date
    amount_minor: int
    currency: str
    contact_role: ContactRole
    note: str | None
    status: PromiseStatus = Field(description="open, kept or broken (decided by the overdue scan)")
    paid_since_minor: int = Field(description="Paid on or credited to the invoice since the "
                                              "promise (as of today while open)")
    created_by: str
    created_at: datetime
    resolved_at: datetime | None
    resolved_as_of: date | None = Field(description="The scan date that decided it")


class DisputeCreate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "reason": "Quality: batch 42 below the agreed standard QS-7", "contact_role": "barrier"}]})

    reason: Text
    contact_role: ContactRole | None = Field(default=None, description="Who raised it")


class DisputeResolve(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "resolution": "Retest passed; customer accepts the goods"}]})

    resolution: Text


class DisputePublic(ResponseModel):
    id: str
    invoice_id: str
    invoice_number: str | None = None
    customer_id: str
    salesperson_id: str | None
    status: DisputeStatus = Field(description="open or resolved")
    reason: str
    contact_role: ContactRole | None
    opened_at: datetime
    opened_by: str
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None
    version: int


class CollectionNoteCreate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "contact_role": "auditor", "note": "Payment request sits with their internal audit; "
                                           "Mr Li expects sign-off this week",
        "next_action_on": "2099-02-12"}]})

    contact_role: ContactRole = Field(description="Where in the customer's payment chain")
    note: Annotated[str, Field(min_length=1, max_length=2000)]
    next_action_on: BusinessDate | None = Field(default=None, description="When to follow up")


class CollectionNotePublic(ResponseModel):
    id: str
    invoice_id: str
    invoice_number: str | None = None
    customer_id: str
    salesperson_id: str | None
    contact_role: ContactRole
    note: str
    next_action_on: date | None
    created_by: str
    created_at: datetime
