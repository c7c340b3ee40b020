"""Request and response bodies of refunds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field

from services.ledger.refunds.models import RefundMethod, RefundStatus
from shared.dates import AwareTimestamp
from shared.money import Currency, PositiveAmountMinor
from shared.schemas import RequestModel, ResponseModel

Ident = Annotated[str, Field(min_length=1, max_length=36)]
Reason = Annotated[str, Field(min_length=1, max_length=400)]


class RefundCreate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer_id": "5b1f7c3e-2a64-4d59-9a43-3f0d2f0c9a11", "currency": "CNY",
        "amount_minor": 30000, "method": "bank_transfer", "reference": "BOC 2026-01-05 #4411",
        "reason": "Overpayment on INV-000045 returned at the customer's request"}]})

    customer_id: Ident
    currency: Currency
    amount_minor: PositiveAmountMinor = Field(description="At most the customer's unapplied "
                                                          "cash in the currency")
    method: RefundMethod
    reference: Annotated[str | None, Field(max_length=100)] = None
    reason: Reason
    refunded_at: AwareTimestamp | None = Field(
        default=None, description="When the money left; now when absent, never in the future")


class RefundReason(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "Transfer returned "
                                                                         "by the bank"}]})

    reason: Reason


class RefundPublic(ResponseModel):
    id: str
    number: str
    customer_id: str
    currency: str
    amount_minor: int
    method: RefundMethod
    reference: str | None
    reason: str
    refunded_at: datetime
    status: RefundStatus = Field(description="proposed (waiting for a second finance "
                                             "principal), posted, rejected or reversed")
    proposed_by: str
    approved_by: str | None = Field(description="Who posted it: the proposer up to the "
                                                "approval amount, another principal above it")
    rejected_by: str | None
    rejection_reason: str | None
    journal_entry_id: str | None = Field(description="Dr 2100 unapplied cash / Cr 1000 cash, "
                                                     "once posted")
    reversal_entry_id: str | None
    reversed_at: datetime | None
    reversal_reason: str | None
    version: int
    created_at: datetime
    updated_at: datetime
