"""Request and response bodies of the credit service."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, Strict, StrictBool, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from services.credit.models import (
    AssetKind,
    CreditPolicy,
    CreditStatus,
    Decision,
    GuaranteeKind,
    GuaranteeStatus,
    HoldKind,
    HoldStatus,
    ReservationStatus,
)
from shared.dates import BusinessDate
from shared.money import MAX_MINOR, AmountMinor, Currency, PositiveAmountMinor
from shared.schemas import RequestModel, ResponseModel

Text200 = Annotated[str, Field(min_length=1, max_length=200)]
Email = Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Phone = Annotated[str, Field(max_length=40, pattern=r"^[0-9+()\-. ]{3,40}$")]
SalespersonId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._\-]+$")]


class ContactRole(StrEnum):
    finance = "finance"
    decision_maker = "decision_maker"
    key_person = "key_person"
    auditor = "auditor"
    user = "user"
    barrier = "barrier"
    general_manager = "general_manager"


class Contact(RequestModel):
    name: Text200
    role: ContactRole
    email: Email | None = None
    phone: Phone | None = None


class BankAccount(RequestModel):
    bank: Text200
    account_no: Annotated[str, Field(min_length=1, max_length=64)]
    currency: Currency | None = None


class CustomerCreate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "name": "Shenzhen Brightway Electronics Co., Ltd.",
        "registration_no": "91440300MA5F000001",
        "salesperson_id": "S-ALICE",
        "address": "88 Keji Road, Nanshan, Shenzhen",
        "contacts": [
            {"name": "Li Na", "role": "finance", "email": "li.na@brightway.example"},
            {"name": "Wang Wei", "role": "general_manager", "phone": "+86 755 0000 0000"},
        ],
        "bank_accounts": [{"bank": "Bank of China Shenzhen", "account_no": "7440000000001",
                           "currency": "CNY"}],
    }]})

    name: Text200
    registration_no: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    salesperson_id: SalespersonId | None = None
    address: Annotated[str, Field(max_length=500)] | None = None
    contacts: Annotated[list[Contact], Field(max_length=50)] = []
    bank_accounts: Annotated[list[BankAccount], Field(max_length=20)] = []


class CustomerUpdate(RequestModel):
    """Fields to change; absent fields stay as they are. Lists replace the whole list.

    `null` clears `registration_no`, `salesperson_id` and `address`, and empties `contacts`
    and `bank_accounts` (as `[]` does); `name` cannot be cleared (422).
    """

    model_config = ConfigDict(json_schema_extra={"examples": [{"address": "1 New Street"}]})

    # Absent is "unchanged" (None inside); null is refused, so the document does not offer it.
    name: Text200 | SkipJsonSchema[None] = Field(
        default=None, description="May not be null",
        json_schema_extra=lambda schema: schema.pop("default", None))
    registration_no: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    salesperson_id: SalespersonId | None = None
    address: Annotated[str, Field(max_length=500)] | None = None
    contacts: Annotated[list[Contact], Field(max_length=50)] | None = Field(
        default=None, description="Replaces the list; null empties it")
    bank_accounts: Annotated[list[BankAccount], Field(max_length=20)] | None = Field(
        default=None, description="Replaces the list; null empties it")

    @field_validator("name")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value

    @field_validator("contacts", "bank_accounts")
    @classmethod
    def _null_empties(cls, value: list[Any] | None) -> list[Any]:
        return [] if value is None else value


class CustomerPublic(ResponseModel):
    id: str
    number: str
    name: str
    registration_no: str | None
    salesperson_id: str | None
    address: str | None
    contacts: list[Contact]
    bank_accounts: list[BankAccount]
    version: int
    created_at: datetime
    updated_at: datetime


# ---------------------------------------------------------------- credit profile

Reason = Annotated[str, Field(min_length=1, max_length=500)]
Ident = Annotated[str, Field(min_length=1, max_length=36)]
# Strict: JSON integers only (`false`, `"30"`, `1.5` are refused).
TermsDays = Annotated[int, Strict(), Field(ge=0, le=365, description="Days from invoice to due date")]
Count = Annotated[int, Strict(), Field(ge=0, le=10_000)]


class CreditLimitUpdate(RequestModel):
    """The customer's credit terms; all four fields are required (PUT replaces them)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "limit_minor": 100_000_000, "currency": "CNY", "terms_days": 45,
        "reason": "Annual review 2026: audited accounts received"}]})

    limit_minor: AmountMinor
    currency: Currency
    terms_days: TermsDays
    reason: Reason


class CreditPolicyUpdate(RequestModel):
    """Change the policy, block or unblock; holds have their own endpoints."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"policy": "guarantee_required", "reason": "Parent company in restructuring"},
        {"status": "blocked", "reason": "Fraud investigation opened"}]})

    policy: CreditPolicy | None = Field(
        default=None, description="credit, prepaid_only (no credit at all) or guarantee_required "
                                  "(credit only while an active guarantee is on file)")
    status: Literal["active", "blocked"] | None = Field(
        default=None, description="blocked refuses every reservation; active lifts a block "
                                  "(the customer stays on_hold while a hold is active)")
    reason: Reason

    @model_validator(mode="after")
    def _something_to_change(self) -> CreditPolicyUpdate:
        if self.policy is None and self.status is None:
            raise ValueError("give policy, status or both")
        return self


class HoldCreate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"reason": "Customer disputes three deliveries; no new credit until resolved"}]})

    reason: Reason


class HoldPublic(ResponseModel):
    id: str
    customer_id: str
    kind: HoldKind = Field(description="manual or automatic (placed by the overdue rule)")
    reason: str = Field(description="Why; an automatic hold's is like "
                                    "\"invoice INV-000045 31 days overdue\"")
    status: HoldStatus = Field(description="active or released")
    source_ref: str | None = Field(description="An automatic hold's overdue invoice id; null "
                                               "for manual holds")
    placed_by: str
    placed_at: datetime
    released_by: str | None
    released_at: datetime | None


class HoldRecheckPublic(ResponseModel):
    released: int = Field(description="Automatic holds released because ledger shows their "
                                      "invoice settled")


class ExposurePublic(ResponseModel):
    open_receivables_minor: int = Field(
        description="Invoiced and not yet paid, as ledger reported it on its last event about the "
                    "customer; plus reservations converted on invoicing whose invoice.issued has "
                    "not arrived yet.")
    reserved_minor: int = Field(description="Active reservations of orders not yet invoiced")
    guarantees_minor: int = Field(description="Active guarantees not expired as of today")
    available_minor: int = Field(
        description="limit + guarantees − (open receivables + reserved); negative when over limit")


class CreditProfilePublic(ResponseModel):
    customer_id: str
    limit_minor: int
    currency: str
    terms_days: int
    grade: str | None = Field(description="A–E from the last applied evaluation; null until then")
    policy: CreditPolicy = Field(description="credit, prepaid_only or guarantee_required")
    status: CreditStatus = Field(description="active, on_hold (an active hold) or blocked")
    exposure: ExposurePublic
    overdue_minor: int = Field(description="Ledger's outstanding past due date, as of its last "
                                           "event about the customer")
    max_days_overdue: int = Field(description="Ledger's figure, as of its last event about the "
                                              "customer")
    holds: list[HoldPublic] = Field(description="Active holds")
    evaluation_id: str | None = Field(description="The evaluation last applied, if any")
    version: int
    updated_at: datetime | None = Field(description="null while the profile has its defaults")


# ---------------------------------------------------------------- guarantees, inquiries, assets


class GuaranteeCreate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "kind": "bank_guarantee", "amount_minor": 50_000_000, "currency": "CNY",
        "issuer": "Bank of China Shenzhen Branch", "expires_on": "2099-12-31"}]})

    kind: GuaranteeKind
    amount_minor: PositiveAmountMinor
    currency: Currency = Field(description="Must be the currency of the customer's credit")
    issuer: Text200
    expires_on: BusinessDate = Field(description="Last day the guarantee counts (not in the past)")


class GuaranteePublic(ResponseModel):
    id: str
    customer_id: str
    kind: GuaranteeKind
    amount_minor: int
    currency: str
    issuer: str
    expires_on: date
    status: GuaranteeStatus = Field(description="active, expired (past expires_on) or released")
    created_by: str
    created_at: datetime
    released_by: str | None
    released_at: datetime | None


class InquiryCreate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "source": "National Enterprise Credit Information Publicity System",
        "reference": "NECIPS-2026-000123", "inquired_on": "2026-01-04", "rating": "AA",
        "defaults_count": 0, "lawsuits_count": 1,
        "summary": "One closed contract dispute (2023); no administrative penalties."}]})

    source: Text200
    reference: Annotated[str, Field(min_length=1, max_length=100)]
    inquired_on: BusinessDate
    rating: Annotated[str, Field(min_length=1, max_length=20)] | None = None
    defaults_count: Count = 0
    lawsuits_count: Count = 0
    summary: Annotated[str, Field(max_length=2000)] = ""


class InquiryPublic(ResponseModel):
    id: str
    customer_id: str
    source: str
    reference: str
    inquired_on: date
    rating: str | None
    defaults_count: int
    lawsuits_count: int
    summary: str
    created_by: str
    created_at: datetime


class AssetCreate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "kind": "building", "description": "Factory, 12 Gongye Road, Dongguan",
        "value_minor": 3_000_000_000, "currency": "CNY", "encumbered": True}]})

    kind: AssetKind
    description: Annotated[str, Field(min_length=1, max_length=500)]
    value_minor: AmountMinor
    currency: Currency
    encumbered: StrictBool = Field(default=False, description="Mortgaged or pledged")


class AssetPublic(ResponseModel):
    id: str
    customer_id: str
    kind: AssetKind
    description: str
    value_minor: int
    currency: str
    encumbered: bool
    created_by: str
    created_at: datetime


# ---------------------------------------------------------------- reservations


class ReservationCreate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer_id": "5b1f7c3e-2a64-4d59-9a43-3f0d2f0c9a11",
        "order_id": "0b8e0c5e-6d7a-4c36-8d1b-0a2f4f6b9e21",
        "amount_minor": 100_000_000, "currency": "CNY"}]})

    customer_id: Ident
    order_id: Ident
    amount_minor: PositiveAmountMinor
    currency: Currency | None = Field(
        default=None, description="Must equal the customer's credit currency; that currency "
                                  "when absent")


class ReservationUpdate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"amount_minor": 80_000_000}]})

    amount_minor: PositiveAmountMinor


class ReservationConvert(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "invoice_id": "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f", "amount_minor": 95_000_000}]})

    invoice_id: Ident | None = None
    amount_minor: PositiveAmountMinor | None = Field(
        default=None, description="The invoiced amount when less than reserved; the rest is "
                                  "released. The reserved amount when absent.")


class ReservationPublic(ResponseModel):
    id: str
    customer_id: str
    order_id: str
    amount_minor: int
    currency: str
    decision: Decision
    status: ReservationStatus = Field(
        description="active (holds credit), released, converted (now open receivable) or "
                    "declined (the decision was not reserved)")
    reasons: list[str]
    decided_at: datetime
    decided_by: str
    invoice_id: str | None
    released_at: datetime | None
    converted_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


# ---------------------------------------------------------------- evaluations

SignedMinor = Annotated[int, Strict(), Field(ge=-MAX_MINOR, le=MAX_MINOR,
                                             description="Integer minor units")]


class FinancialsIn(RequestModel):
    revenue_minor: AmountMinor = Field(description="Annual revenue")
    net_profit_minor: SignedMinor = Field(description="Annual net profit; negative for a loss")
    total_assets_minor: AmountMinor
    total_liabilities_minor: AmountMinor
    current_assets_minor: AmountMinor
    current_liabilities_minor: AmountMinor
    years_in_business: Annotated[int, Strict(), Field(ge=0, le=500)]
    currency: Currency


class InquiryIn(RequestModel):
    rating: Annotated[str, Field(min_length=1, max_length=20)] | None = None
    defaults_count: Count = 0
    lawsuits_count: Count = 0


class EvaluationCreate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "financials": {
            "revenue_minor": 5_000_000_000, "net_profit_minor": 400_000_000,
            "total_assets_minor": 8_000_000_000, "total_liabilities_minor": 3_500_000_000,
            "current_assets_minor": 3_000_000_000, "current_liabilities_minor": 1_500_000_000,
            "years_in_business": 12, "currency": "CNY"},
        "inquiry": {"rating": "AA", "defaults_count": 0, "lawsuits_count": 1}}]})

    financials: FinancialsIn
    inquiry: InquiryIn | None = Field(
        default=None, description="The credit-inquiry record; the latest one on file when absent")


class FactorPublic(ResponseModel):
    name: str
    input: str | float | int | None = Field(description="The value the points were read from")
    points: int
    max_points: int
    explanation: str


class EvaluationPublic(ResponseModel):
    id: str
    customer_id: str
    score: int = Field(description="0–100: the sum of the factors' points")
    grade: str = Field(description="A ≥ 80, B ≥ 65, C ≥ 50, D ≥ 35, E below")
    factors: list[FactorPublic]
    currency: str
    recommended_limit_minor: int
    recommended_terms_days: int
    recommended_policy: str
    inputs: dict[str, object] = Field(description="What was scored: financials, inquiry, assets, "
                                                  "payment history")
    created_by: str
    created_at: datetime
    applied_by: str | None
    applied_at: datetime | None
