"""Tables of the orders service."""

# No `from __future__ import annotations` here: SQLModel resolves relationship annotations at
# class creation and needs them as real types (or quoted forward references).

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlmodel import Field, Relationship, SQLModel

from shared.db import UTCDateTime, service_metadata
from shared.idempotency import idempotency_table
from shared.numbering import counter_table
from shared.outbox import outbox_table
from shared.subscriptions import inbox_table, subscription_table
from shared.testclock import clock_table


class OrdersBase(SQLModel):
    metadata = service_metadata()


metadata: MetaData = OrdersBase.metadata
outbox = outbox_table(metadata)
idempotency_keys = idempotency_table(metadata)
test_clock = clock_table(metadata)  # used only with O2C_TEST_CLOCK (DESIGN.md §10)
counters = counter_table(metadata)
subscriptions = subscription_table(metadata)
inbox = inbox_table(metadata)


class OrderState(StrEnum):
    """The states of DESIGN.md §4; only the machine in `lifecycle` moves an order between them."""

    draft = "draft"
    in_review = "in_review"
    approved = "approved"
    rejected = "rejected"
    contracted = "contracted"
    in_fulfillment = "in_fulfillment"
    delivered = "delivered"
    invoiced = "invoiced"
    closed = "closed"
    cancelled = "cancelled"


class PaymentMethod(StrEnum):
    credit = "credit"
    prepaid = "prepaid"


class CreditStatus(StrEnum):
    pending = "pending"
    reserved = "reserved"
    requires_guarantee = "requires_guarantee"
    rejected = "rejected"
    not_required = "not_required"
    released = "released"  # the order was cancelled and its reservation given back
    converted = "converted"  # the order was invoiced: the reservation became receivables


def pending_credit() -> dict[str, Any]:
    """The credit block of an order nobody has asked credit about yet."""
    return {"status": CreditStatus.pending.value, "reservation_id": None, "reasons": []}


class ExactQuantity(TypeDecorator[Decimal]):
    """A quantity with 3 decimal places: NUMERIC(18, 3) on PostgreSQL, exact text on SQLite.

    SQLite has no decimal type and SQLAlchemy's Numeric would round-trip through a float,
    so there the value is stored as its canonical string.
    """

    impl = Numeric(18, 3)
    cache_ok = True
    _places = Decimal("0.001")

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(24))
        return dialect.type_descriptor(Numeric(18, 3))

    def process_bind_param(self, value: Decimal | None, dialect: Any) -> Any:
        if value is None:
            return None
        value = Decimal(value).quantize(self._places)
        return str(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        if value is None:
            return None
        return Decimal(str(value)).quantize(self._places)


class Order(OrdersBase, table=True):
    __tablename__ = "orders"

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    number: str = Field(max_length=20, unique=True)
    customer_id: str = Field(max_length=36, index=True)
    salesperson_id: str | None = Field(default=None, max_length=64, index=True)
    external_ref: str | None = Field(default=None, max_length=100, index=True)
    currency: str = Field(max_length=3)
    payment_method: str | None = Field(default=None, max_length=16)
    payment_terms_days: int | None = Field(default=None)
    delivery_date: date | None = Field(default=None)
    delivery_place: str | None = Field(default=None, max_length=500)
    total_minor: int = Field(default=0, sa_type=BigInteger)
    state: str = Field(default=OrderState.draft.value, max_length=20, index=True)
    revision: int = Field(default=1)
    version: int = Field(default=1)
    credit: dict[str, Any] = Field(default_factory=pending_credit, sa_type=JSON)
    review_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # When `order.review_overdue` was emitted for the current revision (once per revision).
    review_overdue_notified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    contract_number: str | None = Field(default=None, max_length=100)
    contract_signed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    invoice_id: str | None = Field(default=None, max_length=36)  # ledger's invoice, at settle
    # A transition whose remote part has begun and not finished (services/orders/steps.py): what
    # to send, fixed at the first attempt, and who asked. `step_due_at`: when the recovery
    # worker may take it up (again).
    pending_step: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    step_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(sa_type=UTCDateTime)

    lines: list["OrderLine"] = Relationship(sa_relationship_kwargs={
        "lazy": "selectin", "order_by": "OrderLine.position", "cascade": "all, delete-orphan"})
    # The opinions on the current revision; earlier revisions' opinions stay in the table.
    reviews: list["OrderReview"] = Relationship(sa_relationship_kwargs={
        "lazy": "selectin", "viewonly": True, "order_by": "OrderReview.department",
        "primaryjoin": "and_(Order.id == foreign(OrderReview.order_id), "
                       "Order.revision == foreign(OrderReview.revision))"})


class OrderLine(OrdersBase, table=True):
    __tablename__ = "order_lines"
    __table_args__ = (UniqueConstraint("order_id", "position"),)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    order_id: str = Field(sa_column=Column(String(36), ForeignKey("orders.id", ondelete="CASCADE"),
                                           nullable=False, index=True))
    position: int
    sku: str | None = Field(default=None, max_length=64)
    name: str = Field(max_length=200)
    specification: str | None = Field(default=None, max_length=1000)
    quantity: Decimal = Field(sa_type=ExactQuantity)
    unit_price_minor: int = Field(sa_type=BigInteger)
    quality_standard: str | None = Field(default=None, max_length=200)
    delivered_quantity: Decimal = Field(default=Decimal("0.000"), sa_type=ExactQuantity)
    returned_quantity: Decimal = Field(default=Decimal("0.000"), sa_type=ExactQuantity)
    total_minor: int = Field(sa_type=BigInteger)


class ReviewDecision(StrEnum):
    approve = "approve"
    reject = "reject"


class OrderReview(OrdersBase, table=True):
    """One department's current opinion on one revision of an order."""

    __tablename__ = "order_reviews"
    __table_args__ = (UniqueConstraint("order_id", "revision", "department"),)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    order_id: str = Field(sa_column=Column(String(36), ForeignKey("orders.id", ondelete="CASCADE"),
                                           nullable=False, index=True))
    revision: int
    department: str = Field(max_length=20)
    decision: str = Field(max_length=10)
    comment: str | None = Field(default=None, max_length=2000)
    by: str = Field(max_length=200)
    at: datetime = Field(sa_type=UTCDateTime)


class OrderHistory(OrdersBase, table=True):
    """One transition of an order's machine: from, to, trigger, who, when, why, which request."""

    __tablename__ = "order_history"

    seq: int | None = Field(default=None, sa_column=Column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True))
    order_id: str = Field(sa_column=Column(String(36), ForeignKey("orders.id", ondelete="CASCADE"),
                                           nullable=False, index=True))
    revision: int
    from_state: str = Field(max_length=20)
    to_state: str = Field(max_length=20)
    trigger: str = Field(max_length=40)
    actor: str = Field(max_length=200)
    at: datetime = Field(sa_type=UTCDateTime)
    reason: str | None = Field(default=None, sa_type=Text)
    request_id: str | None = Field(default=None, max_length=64)
    # A change request's step (submitted, reviewed, withdrawn, applied): the order's state stays,
    # the change request's own states are these.
    change_request_id: str | None = Field(default=None, max_length=36)
    change_request_from: str | None = Field(default=None, max_length=20)
    change_request_to: str | None = Field(default=None, max_length=20)


class OrderDelivery(OrdersBase, table=True):
    """One delivery of some of an order's lines (partial deliveries are allowed)."""

    __tablename__ = "order_deliveries"

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    order_id: str = Field(sa_column=Column(String(36), ForeignKey("orders.id", ondelete="CASCADE"),
                                           nullable=False, index=True))
    delivered_at: datetime = Field(sa_type=UTCDateTime)
    recorded_by: str = Field(max_length=200)
    recorded_at: datetime = Field(sa_type=UTCDateTime)

    lines: list["OrderDeliveryLine"] = Relationship(sa_relationship_kwargs={
        "lazy": "selectin", "cascade": "all, delete-orphan"})


class OrderDeliveryLine(OrdersBase, table=True):
    """How much of one order line a delivery carried."""

    __tablename__ = "order_delivery_lines"
    __table_args__ = (UniqueConstraint("delivery_id", "line_id"),)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    delivery_id: str = Field(sa_column=Column(
        String(36), ForeignKey("order_deliveries.id", ondelete="CASCADE"), nullable=False,
        index=True))
    line_id: str = Field(sa_column=Column(String(36), ForeignKey("order_lines.id"), nullable=False))
    quantity: Decimal = Field(sa_type=ExactQuantity)


class ExceptionKind(StrEnum):
    production_delay = "production_delay"
    quality_issue = "quality_issue"
    logistics_delay = "logistics_delay"
    other = "other"


class OrderException(OrdersBase, table=True):
    """Something gone wrong on an order (a delay, a quality issue); open ones block close."""

    __tablename__ = "order_exceptions"

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    order_id: str = Field(sa_column=Column(String(36), ForeignKey("orders.id", ondelete="CASCADE"),
                                           nullable=False, index=True))
    kind: str = Field(max_length=20)
    description: str = Field(sa_type=Text)
    owner_department: str = Field(max_length=20)
    due_at: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default="open", max_length=10, index=True)  # open | resolved
    opened_by: str = Field(max_length=200)
    opened_at: datetime = Field(sa_type=UTCDateTime)
    resolution: str | None = Field(default=None, sa_type=Text)
    resolved_by: str | None = Field(default=None, max_length=200)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # When `order.exception_overdue` was emitted for it (once per exception).
    overdue_notified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class OrderReturn(OrdersBase, table=True):
    """Goods the customer sent back after delivery; on an invoiced order, a ledger credit note."""

    __tablename__ = "order_returns"

    id: str = Field(primary_key=True, max_length=36)
    order_id: str = Field(sa_column=Column(String(36), ForeignKey("orders.id", ondelete="CASCADE"),
                                           nullable=False, index=True))
    reason: str = Field(sa_type=Text)
    amount_minor: int = Field(sa_type=BigInteger)
    credit_note_id: str | None = Field(default=None, max_length=36)
    recorded_by: str = Field(max_length=200)
    recorded_at: datetime = Field(sa_type=UTCDateTime)

    lines: list["OrderReturnLine"] = Relationship(sa_relationship_kwargs={
        "lazy": "selectin", "cascade": "all, delete-orphan"})


class OrderReturnLine(OrdersBase, table=True):
    __tablename__ = "order_return_lines"
    __table_args__ = (UniqueConstraint("return_id", "line_id"),)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    return_id: str = Field(sa_column=Column(
        String(36), ForeignKey("order_returns.id", ondelete="CASCADE"), nullable=False, index=True))
    line_id: str = Field(sa_column=Column(String(36), ForeignKey("order_lines.id"), nullable=False))
    quantity: Decimal = Field(sa_type=ExactQuantity)


class ChangeRequestState(StrEnum):
    """The states of a change request (DESIGN.md §4); only `change_lifecycle` moves them."""

    in_review = "in_review"
    approved = "approved"
    applied = "applied"
    rejected = "rejected"
    withdrawn = "withdrawn"


OPEN_CHANGE_REQUEST_STATES = (ChangeRequestState.in_review.value, ChangeRequestState.approved.value)


class OrderChangeRequest(OrdersBase, table=True):
    """A request to change an approved order's terms: reviewed, approved, then applied."""

    __tablename__ = "order_change_requests"

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    number: str = Field(max_length=20, unique=True)
    order_id: str = Field(sa_column=Column(String(36), ForeignKey("orders.id", ondelete="CASCADE"),
                                           nullable=False, index=True))
    state: str = Field(default=ChangeRequestState.in_review.value, max_length=20, index=True)
    base_revision: int  # the order's revision the change was asked against
    changes: dict[str, Any] = Field(sa_type=JSON)  # the requested changes, as sent (normalized)
    differences: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    reason: str = Field(sa_type=Text)
    impact: str | None = Field(default=None, sa_type=Text)
    requested_by: str = Field(max_length=200)
    requested_at: datetime = Field(sa_type=UTCDateTime)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    rejection_reasons: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    withdrawn_reason: str | None = Field(default=None, sa_type=Text)
    agreement_number: str | None = Field(default=None, max_length=100)
    signed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    applied_revision: int | None = Field(default=None)
    credit_adjustment: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    closed_by: str | None = Field(default=None, max_length=200)  # who applied/withdrew it
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    version: int = Field(default=1)
    updated_at: datetime = Field(sa_type=UTCDateTime)

    reviews: list["OrderChangeReview"] = Relationship(sa_relationship_kwargs={
        "lazy": "selectin", "order_by": "OrderChangeReview.department",
        "cascade": "all, delete-orphan"})


class OrderChangeReview(OrdersBase, table=True):
    """One department's current opinion on a change request."""

    __tablename__ = "order_change_reviews"
    __table_args__ = (UniqueConstraint("change_request_id", "department"),)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    change_request_id: str = Field(sa_column=Column(
        String(36), ForeignKey("order_change_requests.id", ondelete="CASCADE"), nullable=False,
        index=True))
    department: str = Field(max_length=20)
    decision: str = Field(max_length=10)
    comment: str | None = Field(default=None, max_length=2000)
    by: str = Field(max_length=200)
    at: datetime = Field(sa_type=UTCDateTime)


class OrderRevision(OrdersBase, table=True):
    """The terms of a past revision of an order, kept when a later revision replaced them."""

    __tablename__ = "order_revisions"
    __table_args__ = (UniqueConstraint("order_id", "revision"),)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=36)
    order_id: str = Field(sa_column=Column(String(36), ForeignKey("orders.id", ondelete="CASCADE"),
                                           nullable=False, index=True))
    revision: int
    terms: dict[str, Any] = Field(sa_type=JSON)  # currency, payment, delivery, lines, total
    replaced_at: datetime = Field(sa_type=UTCDateTime)
    replaced_by: str = Field(max_length=200)
    replaced_by_trigger: str = Field(max_length=40)  # revise | change-request-apply
    # The change request whose apply replaced these terms (None for a revise).
    replaced_by_change_request_id: str | None = Field(default=None, max_length=36)
