"""Request and response bodies of the orders service."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, ConfigDict, Field, PlainSerializer, Strict, field_validator

from services.orders.models import (
    ChangeRequestState,
    CreditStatus,
    ExceptionKind,
    OrderState,
    PaymentMethod,
    ReviewDecision,
)
from shared.dates import AwareTimestamp, BusinessDate
from shared.money import AmountMinor, Currency, Quantity
from shared.schemas import RequestModel, ResponseModel

MAX_LINES = 500

Ident = Annotated[str, Field(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9_\-]+$")]
ExternalRef = Annotated[str, Field(min_length=1, max_length=100)]
SalespersonId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._\-]+$")]
DeliveryPlace = Annotated[str, Field(min_length=1, max_length=500)]
# Strict: a JSON integer only (`false`, `"30"`, `1.5` are refused).
PaymentTermsDays = Annotated[int, Strict(), Field(ge=0, le=365,
                                                  description="Days from invoice to due date.")]


def _three_places(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.001")))


QuantityText = Annotated[Decimal, PlainSerializer(_three_places, return_type=str),
                         Field(examples=["12.500"], description="Decimal as a string, 3 places.")]

LINE_EXAMPLE = {"sku": "PCB-4L-160", "name": "4-layer PCB, 160 x 100 mm",
                "specification": "FR-4, 1.6 mm, ENIG finish", "quantity": "1200",
                "unit_price_minor": 1850, "quality_standard": "IPC-A-600 Class 2"}


class OrderLineIn(RequestModel):
    """One line of an order; its total is `quantity × unit_price_minor`, rounded half-even."""

    sku: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    name: Annotated[str, Field(min_length=1, max_length=200)]
    specification: Annotated[str, Field(max_length=1000)] | None = None
    quantity: Quantity
    unit_price_minor: AmountMinor
    quality_standard: Annotated[str, Field(max_length=200)] | None = None


Lines = Annotated[list[OrderLineIn], Field(max_length=MAX_LINES)]


class OrderCreate(RequestModel):
    """A new draft order. Terms may stay open until the order is submitted."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer_id": "0b9a7c1e-4d1f-4f51-9f0a-1f3d5c2b7a10",
        "external_ref": "ERP-PO-2026-0042",
        "currency": "CNY",
        "payment_method": "credit",
        "payment_terms_days": 60,
        "delivery_date": "2099-03-15",
        "delivery_place": "Warehouse 3, 88 Keji Road, Nanshan, Shenzhen",
        "lines": [LINE_EXAMPLE],
    }]})

    customer_id: Ident
    salesperson_id: SalespersonId | None = Field(
        default=None, description="Defaults to the customer's salesperson; a sales principal "
                                  "bound to a salesperson may only name its own.")
    external_ref: ExternalRef | None = None
    currency: Currency
    payment_method: PaymentMethod | None = None
    payment_terms_days: PaymentTermsDays | None = None
    delivery_date: BusinessDate | None = None
    delivery_place: DeliveryPlace | None = None
    lines: Lines = []


class OrderUpdate(RequestModel):
    """Fields to change on a draft; absent fields stay, `null` clears an optional term.

    `lines` replaces the whole list. The customer cannot change: cancel and create anew.
    """

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "delivery_date": "2099-03-20",
        "lines": [{**LINE_EXAMPLE, "quantity": "1500"}],
    }]})

    external_ref: ExternalRef | None = None
    currency: Currency | None = None
    payment_method: PaymentMethod | None = None
    payment_terms_days: PaymentTermsDays | None = None
    delivery_date: BusinessDate | None = None
    delivery_place: DeliveryPlace | None = None
    lines: Lines | None = None

    @field_validator("currency", "lines")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value


class OrderLinePublic(ResponseModel):
    id: str
    sku: str | None
    name: str
    specification: str | None
    quantity: QuantityText
    unit_price_minor: int
    quality_standard: str | None
    delivered_quantity: QuantityText
    returned_quantity: QuantityText
    total_minor: int


class OrderCreditPublic(ResponseModel):
    status: CreditStatus
    reservation_id: str | None = None
    reasons: list[str] = []


class ReviewPublic(ResponseModel):
    department: str
    decision: ReviewDecision
    comment: str | None = None
    by: str
    at: datetime


class PendingStepPublic(ResponseModel):
    """A transition waiting for credit or ledger to answer; it finishes on its own."""

    kind: str = Field(description="The trigger in progress, e.g. `settle`.")
    service: str = Field(description="Who it waits for.")
    started_at: datetime
    attempts: int = Field(description="Attempts that got no answer so far.")
    last_error: str | None = None

    @field_validator("kind", mode="before")
    @classmethod
    def _api_name(cls, value: str) -> str:
        return str(value).replace("_", "-")


class OrderPublic(ResponseModel):
    id: str
    number: str
    customer_id: str
    salesperson_id: str | None
    external_ref: str | None
    currency: str
    payment_method: PaymentMethod | None
    payment_terms_days: int | None
    delivery_date: date | None
    delivery_place: str | None
    lines: list[OrderLinePublic]
    total_minor: int
    state: OrderState
    revision: int
    version: int
    credit: OrderCreditPublic
    reviews: list[ReviewPublic] = []
    review_due_at: datetime | None
    contract_number: str | None = None
    contract_signed_at: datetime | None = None
    invoice_id: str | None = None
    pending_step: PendingStepPublic | None = Field(
        default=None, description="A transition in progress that waits for credit or ledger "
                                  "(other triggers are refused with 409 until it finishes).")
    created_at: datetime
    updated_at: datetime


Comment = Annotated[str, Field(min_length=1, max_length=2000)]
Reason = Annotated[str, Field(min_length=1, max_length=1000)]


class ReviewCreate(RequestModel):
    """One department's opinion on the order's current revision; a later one replaces it.

    A rejection needs a comment: it is the reason the customer is told.
    """

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"department": "production", "decision": "approve", "comment": "Line 2 has capacity in week 9."},
        {"department": "quality", "decision": "reject",
         "comment": "IPC-A-600 Class 3 is needed for this board, not Class 2."},
    ]})

    department: Annotated[str, Field(min_length=1, max_length=20, examples=["production"],
                                      description="sales, production, technical, quality or finance "
                                                  "(the configured review departments).")]
    decision: ReviewDecision
    comment: Comment | None = None


class CancelRequest(RequestModel):
    """Why the order is cancelled (recorded in its history and the `order.cancelled` event)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"reason": "Customer withdrew the enquiry by phone on 2026-01-06."}]})

    reason: Reason


class ReviseRequest(RequestModel):
    """What changes in the new revision (optional; recorded in the history)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"reason": "Quality standard raised to IPC-A-600 Class 3 as the quality review asked."}]})

    reason: Reason | None = None


class ContractRequest(RequestModel):
    """The signed contract: its number and when it was signed (not in the future)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"contract_number": "CT-2026-0042", "signed_at": "2026-01-08T10:30:00+08:00"}]})

    contract_number: Annotated[str, Field(min_length=1, max_length=100)]
    signed_at: AwareTimestamp


class HistoryEntryPublic(ResponseModel):
    """One transition of the order's machine."""

    seq: int
    revision: int
    # DESIGN §4 names them `from` and `to`; the table's columns are `from_state`, `to_state`.
    from_: str = Field(validation_alias=AliasChoices("from_state", "from"), serialization_alias="from")
    to: str = Field(validation_alias=AliasChoices("to_state", "to"))
    trigger: str
    actor: str
    at: datetime
    reason: str | None = None
    request_id: str | None = None
    change_request_id: str | None = Field(
        default=None, description="Set on a change request's step; the order's state stays then.")
    change_request_from: str | None = None
    change_request_to: str | None = None


class DiagramPublic(ResponseModel):
    order_id: str
    state: OrderState
    mermaid: str = Field(description="Mermaid `stateDiagram-v2` text; the current state has class `current`.")


class GuardPublic(ResponseModel):
    name: str
    description: str


class RemoteCallPublic(ResponseModel):
    service: str
    call: str
    description: str


class TransitionPublic(ResponseModel):
    trigger: str
    source: list[str]
    dest: str | None = Field(description="null: an internal transition, the state stays.")
    internal: bool
    endpoint: str
    guards: list[GuardPublic]
    remote: list[RemoteCallPublic] = Field(
        default=[], description="What the transition asks credit or ledger to do before it fires "
                                "(its intent is recorded first: it finishes even after a crash).")
    effects: list[str]
    event: str | None


class ChangeRequestMachinePublic(ResponseModel):
    initial: str
    states: list[str]
    final_states: list[str]
    transitions: list[TransitionPublic]


class StateMachinePublic(ResponseModel):
    initial: str
    states: list[str]
    final_states: list[str]
    transitions: list[TransitionPublic]
    change_request_machine: ChangeRequestMachinePublic | None = Field(
        default=None, description="The change requests' own machine (an extension of DESIGN.md).")


class ReviewSlaScanRequest(RequestModel):
    """Report reviews late as of `as_of` (default: now)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"as_of": "2026-01-09T09:00:00+00:00"}, {}]})

    as_of: AwareTimestamp | None = None


class ReviewSlaScanPublic(ResponseModel):
    as_of: datetime
    orders: list[str] = Field(description="Ids of the orders newly reported overdue by this scan.")


class DeliveryLineIn(RequestModel):
    line_id: Ident
    quantity: Quantity


class DeliveryCreate(RequestModel):
    """What left for the customer: some quantity of some lines (partial deliveries allowed)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "lines": [{"line_id": "3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f", "quantity": "600"}],
        "delivered_at": "2026-02-01T10:00:00+08:00"}]})

    lines: Annotated[list[DeliveryLineIn], Field(min_length=1, max_length=MAX_LINES)]
    delivered_at: AwareTimestamp


class SettleRequest(RequestModel):
    """Settlement terms; the due date defaults to today + the order's payment terms."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"due_date": "2099-04-01"}, {}]})

    due_date: BusinessDate | None = None


class ExceptionCreate(RequestModel):
    """An exception on an order: what went wrong, which department owns it, by when."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "kind": "production_delay", "description": "Laminator down; 600 boards slip a week.",
        "owner_department": "production", "due_at": "2026-01-12T18:00:00+08:00"}]})

    kind: ExceptionKind
    description: Annotated[str, Field(min_length=1, max_length=4000)]
    owner_department: Annotated[str, Field(min_length=1, max_length=20)]
    due_at: AwareTimestamp


class ExceptionResolve(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"resolution": "Laminator repaired; boards shipped 2026-01-11."}]})

    resolution: Annotated[str, Field(min_length=1, max_length=4000)]


class ExceptionPublic(ResponseModel):
    id: str
    order_id: str
    kind: ExceptionKind
    description: str
    owner_department: str
    due_at: datetime
    status: Literal["open", "resolved"]
    opened_by: str
    opened_at: datetime
    resolution: str | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None


class ExceptionScanRequest(RequestModel):
    """Report open exceptions late as of `as_of` (default: now)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"as_of": "2026-01-13T09:00:00+00:00"}, {}]})

    as_of: AwareTimestamp | None = None


class ExceptionScanPublic(ResponseModel):
    as_of: datetime
    exceptions: list[str] = Field(description="Ids of the exceptions newly reported overdue.")


class ReturnCreate(RequestModel):
    """Goods sent back after delivery: how much of which lines, and why."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "lines": [{"line_id": "3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f", "quantity": "10"}],
        "reason": "Delamination found at incoming inspection, QC-88"}]})

    lines: Annotated[list[DeliveryLineIn], Field(min_length=1, max_length=MAX_LINES)]
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


class ReturnLinePublic(ResponseModel):
    line_id: str
    quantity: QuantityText


class ReturnPublic(ResponseModel):
    id: str
    order_id: str
    reason: str
    amount_minor: int = Field(description="Value of the returned goods at the lines' prices")
    credit_note_id: str | None = Field(description="Ledger's credit note, when the order was "
                                                   "already invoiced")
    lines: list[ReturnLinePublic]
    recorded_by: str
    recorded_at: datetime


# --- Change requests ----------------------------------------------------------------------


class LineChange(RequestModel):
    """New values for an existing line; absent fields stay as they are."""

    line_id: Ident
    quantity: Quantity | None = None
    unit_price_minor: AmountMinor | None = None
    specification: Annotated[str, Field(max_length=1000)] | None = None
    quality_standard: Annotated[str, Field(max_length=200)] | None = None


class ChangeSet(RequestModel):
    """What the change request changes; absent fields stay as they are.

    `lines` changes existing lines by id, `add_lines` adds new ones, `remove_lines` removes
    lines nothing was delivered of. `payment_method` cannot change after approval (refused).
    """

    lines: Annotated[list[LineChange], Field(max_length=MAX_LINES)] = []
    add_lines: Annotated[list[OrderLineIn], Field(max_length=MAX_LINES)] = []
    remove_lines: Annotated[list[Ident], Field(max_length=MAX_LINES)] = []
    delivery_date: BusinessDate | None = None
    delivery_place: DeliveryPlace | None = None
    payment_terms_days: PaymentTermsDays | None = None
    payment_method: PaymentMethod | None = Field(
        default=None, description="Refused: a credit order cannot become prepaid (or back) after "
                                  "approval; cancel it and place a new order.")


class ChangeRequestCreate(RequestModel):
    """A change of an approved order's terms: what, why, and the expected impact."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "changes": {"lines": [{"line_id": "3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
                               "quantity": "1500", "unit_price_minor": 1800}],
                    "delivery_date": "2099-03-20"},
        "reason": "Customer's launch moved; they need 300 more boards a week later.",
        "impact": "Production adds one shift in week 11; credit exposure + 5 550 CNY."}]})

    changes: ChangeSet
    reason: Reason
    impact: Annotated[str, Field(min_length=1, max_length=2000)] | None = None


class ChangeReviewPublic(ResponseModel):
    department: str
    decision: ReviewDecision
    comment: str | None = None
    by: str
    at: datetime


class ChangeRequestPublic(ResponseModel):
    id: str
    number: str
    order_id: str
    state: ChangeRequestState
    base_revision: int = Field(description="The order's revision the change was asked against.")
    changes: dict[str, Any]
    differences: list[dict[str, Any]] = Field(
        description="What changes against the order's terms: `{field, from, to}`, line fields with "
                    "`line_id` and `position`; computed when requested, again when applied.")
    reason: str
    impact: str | None
    requested_by: str
    requested_at: datetime
    reviews: list[ChangeReviewPublic] = []
    decided_at: datetime | None
    rejection_reasons: list[dict[str, Any]] = []
    withdrawn_reason: str | None
    agreement_number: str | None
    signed_at: datetime | None
    applied_revision: int | None
    credit_adjustment: dict[str, Any] | None
    closed_by: str | None
    closed_at: datetime | None
    version: int
    updated_at: datetime


class ChangeWithdrawRequest(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"reason": "Customer keeps the original quantities after all."}]})

    reason: Reason


class ChangeApplyRequest(RequestModel):
    """The change agreement signed with the customer: its number and when (not in the future)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"agreement_number": "CT-2026-0042-A1", "signed_at": "2026-01-20T15:00:00+08:00"}]})

    agreement_number: Annotated[str, Field(min_length=1, max_length=100)]
    signed_at: AwareTimestamp


class RevisionLinePublic(ResponseModel):
    id: str
    position: int
    sku: str | None
    name: str
    specification: str | None
    quantity: str
    unit_price_minor: int
    quality_standard: str | None
    total_minor: int


class RevisionTermsPublic(ResponseModel):
    currency: str
    payment_method: str | None
    payment_terms_days: int | None
    delivery_date: date | None
    delivery_place: str | None
    total_minor: int
    lines: list[RevisionLinePublic]


class RevisionPublic(ResponseModel):
    order_id: str
    revision: int
    current: bool
    terms: RevisionTermsPublic
    made_by_change_request_id: str | None = Field(
        default=None, description="The change request whose apply made this revision.")
    replaced_at: datetime | None = None
    replaced_by: str | None = None
    replaced_by_trigger: str | None = Field(default=None, description="revise or change-request-apply")
    replaced_by_change_request_id: str | None = None
