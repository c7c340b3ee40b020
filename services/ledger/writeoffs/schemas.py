"""Request and response bodies of write-offs and recoveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BeforeValidator, ConfigDict, Field

from services.ledger.writeoffs.models import WriteOff, WriteOffRecovery, WriteOffStatus
from shared.dates import AwareTimestamp
from shared.money import PositiveAmountMinor
from shared.schemas import RequestModel, ResponseModel

Ident = Annotated[str, Field(min_length=1, max_length=36)]
Reason = Annotated[str, Field(min_length=1, max_length=400)]
Name = Annotated[str, Field(min_length=1, max_length=100)]


def _one_or_many(value: object) -> object:
    """`responsible` may be one name; it is stored as a list of one."""
    return [value] if isinstance(value, str) else value


EXAMPLE_INVOICE = "9d2e4f61-3b7a-4c1e-8f0a-6a5b4c3d2e1f"


class WriteOffCreate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "invoice_id": EXAMPLE_INVOICE, "amount_minor": 125000,
        "reason": "Customer in liquidation; the receiver rejected our claim",
        "responsible": ["S-ALICE", "finance.zhang"]}]})

    invoice_id: Ident
    amount_minor: PositiveAmountMinor | None = Field(
        default=None, description="At most what is outstanding; all of it when absent")
    reason: Reason
    effective_at: AwareTimestamp | None = Field(
        default=None, description="The date it counts from once approved (the reports, its "
                                  "journal entry): the approval's when absent; never in the "
                                  "future nor before the invoice was issued")
    responsible: Annotated[list[Name], BeforeValidator(_one_or_many),
                           Field(min_length=1, max_length=20,
                                 description="The people answerable for the loss (names or "
                                             "ids); one string is taken as a list of one")]


class WriteOffReject(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"reason": "Collection agency still working on it"}]})

    reason: Reason


class RecoveryCreate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "amount_minor": 30000, "received_at": "2026-06-30T10:00:00Z",
        "reference": "Liquidator dividend 1"}]})

    amount_minor: PositiveAmountMinor
    received_at: AwareTimestamp | None = Field(
        default=None, description="When the money arrived; now when absent, never future")
    reference: Annotated[str | None, Field(max_length=100)] = None


class RecoveryPublic(ResponseModel):
    id: str
    amount_minor: int
    received_at: datetime
    reference: str | None
    journal_entry_id: str
    created_by: str
    created_at: datetime


class WriteOffPublic(ResponseModel):
    id: str
    number: str
    invoice_id: str
    invoice_number: str | None = None
    customer_id: str
    salesperson_id: str | None
    currency: str
    amount_minor: int
    reason: str
    responsible: list[str]
    status: WriteOffStatus = Field(description="proposed, posted (approved and posted) or rejected")
    proposed_by: str
    proposed_at: datetime
    approved_by: str | None
    approved_at: datetime | None = Field(description="When it was approved and booked")
    effective_at: datetime | None = Field(description="The date asked at the proposal")
    posted_at: datetime | None = Field(description="The date it counts from: effective_at, or "
                                                   "the approval")
    rejected_by: str | None
    rejected_at: datetime | None
    rejection_reason: str | None
    journal_entry_id: str | None = Field(description="Dr 6100 bad-debt expense / Cr 1100 "
                                                     "receivables, once posted")
    recovered_minor: int = Field(description="Σ of the recoveries, at most amount_minor")
    recoveries: list[RecoveryPublic]
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, write_off: WriteOff, recoveries: list[WriteOffRecovery],
           invoice_number: str | None = None) -> WriteOffPublic:
        return cls.model_validate({
            **write_off.model_dump(), "invoice_number": invoice_number,
            "recoveries": [RecoveryPublic.model_validate(r) for r in recoveries]})
