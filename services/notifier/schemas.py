"""Request and response bodies of the notifier service."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, StrictBool, field_validator, model_validator
from pydantic_core import PydanticCustomError

from services.notifier import catalogue, policy
from services.notifier.models import ChargeStatus, DeliveryStatus, NotificationStatus, RunStatus
from services.notifier.policy import Channel, RecipientRole
from shared.dates import Timestamp
from shared.events import Event
from shared.money import PositiveAmountMinor
from shared.schemas import RequestModel, ResponseModel

EVENT_TYPE_PATTERN = r"^([a-z_]+\.[a-z_]+|\*)$"


def _known_event_type(value: str) -> str:
    """A filter names a type of the catalogue (or "*"): a typo would silently receive nothing."""
    if value != "*" and value not in catalogue.KNOWN:
        raise PydanticCustomError(
            "unknown_event_type", "unknown event type '{value}'; known types: {known}, or \"*\"",
            {"value": value, "known": ", ".join(catalogue.EVENT_TYPES)})
    return value


EventTypeFilter = Annotated[str, Field(min_length=1, max_length=100, pattern=EVENT_TYPE_PATTERN,
                                       description='An event type of the catalogue '
                                                   '(DESIGN.md §8), or "*" for every type.'),
                            AfterValidator(_known_event_type)]
EventTypes = Annotated[list[EventTypeFilter], Field(
    max_length=100, description='Event types to receive; empty or "*" means every type.')]
Url = Annotated[str, Field(min_length=1, max_length=2000,
                           description="http or https URL the deliveries are POSTed to.")]
Description = Annotated[str, Field(max_length=500)]
EmailAddress = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s<>]+@[^@\s<>]+$",
                                    description="An email address.")]

EVENT_EXAMPLE = {
    "id": "0b8e5c1e-4f7a-4b8e-9a57-1f1d2c3b4a59",
    "type": "invoice.overdue",
    "occurred_at": "2026-01-05T09:00:00Z",
    "source": "ledger",
    "subject": "5d0f7a8e-1a3b-4c51-8f0e-2b7c9d1e4f60",
    "data": {"invoice_id": "5d0f7a8e-1a3b-4c51-8f0e-2b7c9d1e4f60", "days_overdue": 15,
             "level": 15},
}


class EventIn(Event, RequestModel):
    """The event envelope as producers post it (DESIGN.md §8)."""

    model_config = ConfigDict(json_schema_extra={"examples": [EVENT_EXAMPLE]})

    occurred_at: Timestamp = Field(description="ISO 8601; without an offset it is read as UTC")


MAX_BATCH_EVENTS = 500
RequestId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:\-]{1,128}$")]


class EventBatchIn(RequestModel):
    """Several envelopes in one POST (an extension of DESIGN.md §7, for the outbox relays):
    each is validated, stored and answered on its own."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"events": [EVENT_EXAMPLE]}]})

    # Objects, each validated on its own as `POST /v1/events` takes one: a bad envelope is
    # refused in its result, not the batch (the relay's other events go in all the same).
    events: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BATCH_EVENTS,
                                         description="Event envelopes, as `POST /v1/events` takes one.")
    # The X-Request-ID each event was written under, in the events' order, when they came
    # from several requests (the POST's own X-Request-ID is then the relay's): notifier logs
    # each event's arrival under its own request's id, so an order's trail is unbroken.
    request_ids: list[RequestId | None] | None = Field(
        default=None, max_length=MAX_BATCH_EVENTS,
        description="Per event, the request id it was written under (an extension, optional).")

    @model_validator(mode="after")
    def _one_id_per_event(self) -> EventBatchIn:
        if self.request_ids is not None and len(self.request_ids) != len(self.events):
            raise ValueError("request_ids must have one entry per event")
        return self


class EventFieldError(ResponseModel):
    """A field of a refused event, with why (the problem body's `errors` items, without the
    import-only `line`)."""

    field: str
    message: str


class EventResult(ResponseModel):
    """What became of one event of a batch."""

    id: str | None = Field(description="The event's id (null when it has none)")
    status: int = Field(description="201 stored now, 200 stored before (same id), 422 refused",
                        examples=[201])
    code: str | None = Field(default=None, description="`validation_failed` when refused")
    detail: str | None = None
    errors: list[EventFieldError] | None = None


class EventBatchResult(ResponseModel):
    """One result per event of the batch, in the batch's order."""

    results: list[EventResult]
    created: int
    duplicates: int
    refused: int


class EventPublic(ResponseModel):
    id: str
    type: str
    occurred_at: datetime
    source: str
    subject: str
    data: dict[str, Any]
    received_at: datetime


class EndpointCreate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "url": "https://hooks.example.com/o2c",
        "event_types": ["invoice.overdue", "order.approved"],
        "description": "Collections desk",
    }]})

    url: Url
    event_types: EventTypes = []
    description: Description | None = None


class EndpointUpdate(RequestModel):
    """Fields to change; absent fields stay as they are. `event_types` replaces the list."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"event_types": ["*"]}, {"enabled": True}]})

    url: Url | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    enabled: StrictBool | None = None


class EndpointPublic(ResponseModel):
    id: str
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    internal: bool = Field(description=(
        "One of o2c's own inboxes (created by the service principal; read-only): retried after "
        "about 1 s, 2 s, 5 s, 10 s, 30 s, then every minute until accepted, never disabled."))
    created_by: str
    version: int
    created_at: datetime
    updated_at: datetime


class EndpointWithSecret(EndpointPublic):
    """Returned only by create and rotate-secret: the signing secret, shown this once."""

    secret: str = Field(description="`whsec_…`; verify deliveries with it (Standard Webhooks).")


class ReplayRequest(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"since": "2026-01-01T00:00:00Z"}]})

    since: Timestamp = Field(description="Replay every stored event that occurred at or after this.")


class ReplayResult(ResponseModel):
    endpoint_id: str
    since: datetime
    count: int = Field(description="New pending deliveries created.")


class Attempt(ResponseModel):
    at: datetime
    response_status: int | None
    error: str | None
    duration_ms: int


class DeliveryPublic(ResponseModel):
    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempt_count: int
    next_attempt_at: datetime | None = Field(description="When a pending delivery is tried next.")
    last_attempt_at: datetime | None
    attempts: list[Attempt]
    created_at: datetime


# dunning

class DunningLevel(RequestModel):
    """One step of the dunning policy."""

    level: int = Field(ge=1, le=99, strict=True,
                       description="The level's number; notifications carry it.")
    days_overdue: int = Field(ge=1, le=3650, strict=True, description=(
        "An `invoice.overdue` step at this many days or more (up to the next level) uses this level."))
    recipients: list[RecipientRole] = Field(min_length=1, max_length=6, description=(
        "`general_manager` is the customer's general manager, or its decision-maker when it has "
        "none; `legal` is O2C_DUNNING_LEGAL_EMAIL."))
    channels: list[Channel] = Field(min_length=1, max_length=2, description=(
        "`webhook`: one `dunning.escalated` event per invoice and step; `email`: one email per "
        "recipient through SMTP."))
    template: str = Field(min_length=1, max_length=5000, description=(
        "The message body; placeholders as `$name` or `${name}` (see the PUT operation)."))
    subject: str = Field(default=policy.DEFAULT_SUBJECT, min_length=1, max_length=300,
                         description="The email subject, a template like the body (an extension).")
    interest_annual_rate: Decimal | None = Field(
        default=None, ge=0, le=1, max_digits=8, decimal_places=6,
        description="Late-payment interest a year as a decimal string, e.g. \"0.18\"; charged once "
                    "for the level as a ledger debit note.")
    fee_minor: PositiveAmountMinor | None = Field(
        default=None, description="A fixed fee in the invoice's minor units, charged once for the level.")

    @field_validator("recipients", "channels")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError("each entry may appear once")
        return values

    @field_validator("template", "subject")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        problems = policy.template_problems(value)
        if problems:
            raise ValueError("; ".join(problems))
        return value


class DunningPolicyIn(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"levels": [
        {"level": 1, "days_overdue": 1, "recipients": ["salesperson", "finance"],
         "channels": ["webhook", "email"],
         "template": "Dear ${recipient_name}, invoice ${invoice_number} (${outstanding}) was due "
                     "on ${due_date} and is ${days_overdue} days overdue."},
        {"level": 2, "days_overdue": 30,
         "recipients": ["salesperson", "finance", "key_person", "general_manager"],
         "channels": ["webhook", "email"], "interest_annual_rate": "0.12", "fee_minor": 5000,
         "template": "Escalation: invoice ${invoice_number} is ${days_overdue} days overdue."},
    ]}]})

    levels: list[DunningLevel] = Field(min_length=1, max_length=20, description=(
        "Sorted by days_overdue ascending, with distinct level numbers and days."))

    @field_validator("levels")
    @classmethod
    def _ordered(cls, levels: list[DunningLevel]) -> list[DunningLevel]:
        days = [lvl.days_overdue for lvl in levels]
        if days != sorted(days) or len(set(days)) != len(days):
            raise ValueError("levels must be sorted by days_overdue, each days_overdue once")
        numbers = [lvl.level for lvl in levels]
        if len(set(numbers)) != len(numbers):
            raise ValueError("each level number may appear once")
        return levels


class DunningLevelPublic(ResponseModel):
    level: int
    days_overdue: int
    recipients: list[RecipientRole]
    channels: list[Channel]
    template: str
    subject: str
    interest_annual_rate: str | None = None
    fee_minor: int | None = None


class DunningPolicyPublic(ResponseModel):
    levels: list[DunningLevelPublic]
    is_default: bool = Field(description="True when no policy was stored and the default applies")
    placeholders: dict[str, str] = Field(description="What templates may mention")
    version: int
    updated_by: str | None
    updated_at: datetime | None


class SalespersonIn(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"name": "Alice Chen", "email": "alice.chen@example.com"}]})

    name: Annotated[str, Field(min_length=1, max_length=200)]
    email: EmailAddress | None = None


class SalespersonPublic(ResponseModel):
    salesperson_id: str
    name: str
    email: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class NotificationPublic(ResponseModel):
    id: str
    invoice_id: str
    invoice_number: str | None
    customer_id: str | None
    salesperson_id: str | None
    level: int = Field(description="The policy level applied")
    threshold_days: int = Field(description="The overdue step (the event's `level`, in days)")
    days_overdue: int
    recipient_role: RecipientRole
    recipient_name: str | None
    address: str | None
    channel: Channel = Field(description="email, or webhook when the level sends no email")
    subject: str
    body: str
    status: NotificationStatus
    attempts: int
    last_error: str | None = Field(description="Why it was skipped, or the last failed attempt")
    next_attempt_at: datetime | None
    sent_at: datetime | None
    letter_id: str | None = Field(description="Email: the notification whose message carried "
                                              "this one (itself for the letter's lead): a "
                                              "customer's reminders of one level go out as one "
                                              "letter listing all its overdue invoices")
    created_at: datetime


class DunningRunPublic(ResponseModel):
    id: str
    invoice_id: str
    threshold_days: int = Field(description="The overdue step (the event's `level`, in days)")
    days_overdue: int
    event_id: str = Field(description="The `invoice.overdue` event that queued it")
    policy_level: int | None = Field(description="The policy level applied, once worked")
    status: RunStatus = Field(description="pending (waiting or retrying), done or skipped")
    attempts: int = Field(description="Passes postponed because credit or ledger did not answer")
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    completed_at: datetime | None


class DunningChargePublic(ResponseModel):
    id: str
    run_id: str
    invoice_id: str
    level: int
    kind: Literal["interest", "fee"] = Field(description="interest or fee")
    amount_minor: int
    currency: str
    days_charged: int = Field(description="Days of interest it covers (0 for a fee)")
    reason: str
    idempotency_key: str = Field(description="Sent to ledger with the debit note")
    status: ChargeStatus = Field(description="pending, posted (debit_note_id) or refused (last_error)")
    debit_note_id: str | None
    attempts: int
    last_error: str | None
    created_at: datetime
    posted_at: datetime | None
