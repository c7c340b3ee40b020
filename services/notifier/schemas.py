"""Request and response bodies of the notifier service."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from services.notifier.models import DeliveryStatus
from shared.events import Event
from shared.schemas import RequestModel, ResponseModel

EVENT_TYPE_PATTERN = r"^([a-z_]+\.[a-z_]+|\*)$"
EventTypeFilter = Annotated[str, Field(min_length=1, max_length=100, pattern=EVENT_TYPE_PATTERN,
                                       description='An event type, or "*" for every type.')]
EventTypes = Annotated[list[EventTypeFilter], Field(
    max_length=100, description='Event types to receive; empty or "*" means every type.')]
Url = Annotated[str, Field(min_length=1, max_length=2000,
                           description="http or https URL the deliveries are POSTed to.")]
Description = Annotated[str, Field(max_length=500)]

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
    enabled: bool | None = None


class EndpointPublic(ResponseModel):
    id: str
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_by: str
    version: int
    created_at: datetime
    updated_at: datetime


class EndpointWithSecret(EndpointPublic):
    """Returned only by create and rotate-secret: the signing secret, shown this once."""

    secret: str = Field(description="`whsec_…`; verify deliveries with it (Standard Webhooks).")


class ReplayRequest(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"since": "2026-01-01T00:00:00Z"}]})

    since: datetime = Field(description="Replay every stored event that occurred at or after this.")


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
