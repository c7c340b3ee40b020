"""Routes of the notifier service: parse, authorize, call the service, shape the response."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from services.notifier import ingest, repository, service
from services.notifier.config import NotifierSettings
from services.notifier.models import (
    ChargeStatus,
    Delivery,
    DeliveryStatus,
    DunningCharge,
    DunningRun,
    Notification,
    NotificationStatus,
    RunStatus,
    Salesperson,
    StoredEvent,
    WebhookEndpoint,
)
from services.notifier.schemas import (
    MAX_BATCH_EVENTS,
    DeliveryPublic,
    DunningChargePublic,
    DunningPolicyIn,
    DunningPolicyPublic,
    DunningRunPublic,
    EndpointCreate,
    EndpointPublic,
    EndpointUpdate,
    EndpointWithSecret,
    EventBatchIn,
    EventBatchResult,
    EventIn,
    EventPublic,
    EventResult,
    NotificationPublic,
    ReplayRequest,
    ReplayResult,
    SalespersonIn,
    SalespersonPublic,
)
from shared.auth import CurrentPrincipal, Role, require
from shared.clock import Clock, as_utc
from shared.dates import Timestamp
from shared.db import SessionDep
from shared.errors import problem_responses, validation_errors
from shared.observability import reset_request_id, set_request_id
from shared.openapi import IF_MATCH
from shared.pagination import (
    Cursor,
    Limit,
    Page,
    decode_cursor,
    encode_cursor,
)
from shared.schemas import query_int
from shared.versioning import check_if_match, set_etag

EVENT_READERS = (Role.auditor, Role.finance, Role.service)
MANAGERS = (Role.service,)  # and admin, who may do everything
MANAGEMENT_READERS = (*MANAGERS, Role.auditor)

events = APIRouter(prefix="/v1", tags=["events"], responses=problem_responses(401, 403, 422))
endpoints = APIRouter(prefix="/v1", tags=["webhook endpoints"],
                      responses=problem_responses(401, 403, 422))
deliveries = APIRouter(prefix="/v1", tags=["deliveries"], responses=problem_responses(401, 403, 422))

Row = TypeVar("Row")
Id = Annotated[str, Path(max_length=36)]

log = logging.getLogger("o2c.notifier.events")


@dataclass(frozen=True)
class NotifierContext:
    """What the routes hand the use cases besides the session, made once at start-up
    (app.start_deliveries): the clock, the settings, what ingest sets off, and the wake-ups of
    the delivery and email workers."""

    clock: Clock
    settings: NotifierSettings
    reactions: tuple[ingest.Reaction, ...]
    wake_deliveries: Callable[[], None]
    wake_emails: Callable[[], None]


async def notifier_context(request: Request) -> NotifierContext:
    return request.app.state.context


Ctx = Annotated[NotifierContext, Depends(notifier_context)]


# events

async def load_event(session: SessionDep, event_id: Id) -> StoredEvent:
    return await ingest.get_event(session, event_id)


async def event_body(request: Request) -> EventIn | EventBatchIn:
    """The body of `POST /v1/events`: one envelope, or `{"events": [...]}`, a batch (an object
    with an `events` member). Errors read as FastAPI's own for a body model."""
    raw = await request.body()
    if not raw:
        raise RequestValidationError([{"type": "missing", "loc": ("body",),
                                       "msg": "Field required", "input": None}])
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body", 0),
                                       "msg": "JSON decode error", "input": {}}]) from exc
    model = EventBatchIn if isinstance(data, dict) and "events" in data else EventIn
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])}
                                      for e in exc.errors(include_url=False)]) from None


def _batch_item(item: Any) -> EventIn | EventResult:
    """One envelope of a batch, parsed; or its refusal (422 with every field's error)."""
    try:
        return EventIn.model_validate(item)
    except ValidationError as exc:
        problem = validation_errors(RequestValidationError(exc.errors(include_url=False)))
        event_id = item.get("id") if isinstance(item, dict) else None
        return EventResult(id=event_id if isinstance(event_id, str) else None,
                           status=problem.status, code=problem.code, detail=problem.detail,
                           errors=problem.errors)


_EVENT_SCHEMA = EventIn.model_json_schema()
_BATCH_SCHEMA = {**EventBatchIn.model_json_schema(), "properties": {"events": {
    "type": "array", "minItems": 1, "maxItems": MAX_BATCH_EVENTS,
    # Objects: each is read as the single-event body above, and one that is not a valid
    # envelope is refused in its own result (422), not with the whole batch.
    "items": {"type": "object", "description": "An envelope as a single `POST /v1/events` "
              "takes it; an invalid one is refused in its result, the others are stored."},
    "description": "Event envelopes, each as a single `POST /v1/events` takes it."},
    "request_ids": EventBatchIn.model_json_schema()["properties"]["request_ids"]}}
EVENT_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "oneOf": [_EVENT_SCHEMA, _BATCH_SCHEMA],
    "examples": [*_EVENT_SCHEMA["examples"], *_BATCH_SCHEMA["examples"]]}}}}}


@events.post("/events", status_code=status.HTTP_201_CREATED, response_model=EventPublic,
             dependencies=[require(Role.service)], openapi_extra=EVENT_BODY,
             responses={200: {"model": EventPublic,
                              "description": "Already stored (same id): the stored event"},
                        207: {"model": EventBatchResult,
                              "description": "A batch (an extension): one result per event, "
                                             "in order"}})
async def ingest_event(body: Annotated[EventIn | EventBatchIn, Depends(event_body)],
                       response: Response, session: SessionDep, ctx: Ctx) -> Any:
    """Accept an event from a producer's outbox; each event id is stored and delivered once.

    A batch, `{"events": [envelope, ...]}` (up to 500, an extension), is answered 207 with one
    result per event in order: 201 stored now, 200 stored before, 422 refused (with its
    errors; the others are stored all the same).
    """
    if isinstance(body, EventIn):
        stored, created = await ingest.record_event(
            session, clock=ctx.clock, event=body, wake=ctx.wake_deliveries,
            reactions=ctx.reactions)
        if not created:
            response.status_code = status.HTTP_200_OK
        response.headers["Location"] = f"/v1/events/{stored.id}"
        return stored
    items = [_batch_item(item) for item in body.events]
    recorded = iter(await ingest.record_events(
        session, clock=ctx.clock, events=[i for i in items if isinstance(i, EventIn)],
        wake=ctx.wake_deliveries, reactions=ctx.reactions))
    results = [item if isinstance(item, EventResult) else _result(next(recorded))
               for item in items]
    for item, origin in zip(items, body.request_ids or (), strict=False):
        if origin and isinstance(item, EventIn):  # the trail of the request that caused it
            token = set_request_id(origin)
            try:
                log.info("event %s %s received", item.type, item.id,
                         extra={"event_id": str(item.id)})
            finally:
                reset_request_id(token)
    batch = EventBatchResult(
        results=results, created=sum(r.status == status.HTTP_201_CREATED for r in results),
        duplicates=sum(r.status == status.HTTP_200_OK for r in results),
        refused=sum(r.status >= status.HTTP_400_BAD_REQUEST for r in results))
    return JSONResponse(batch.model_dump(mode="json"),
                        status_code=status.HTTP_207_MULTI_STATUS)


def _result(recorded: ingest.Recorded) -> EventResult:
    return EventResult(id=recorded.event.id, status=status.HTTP_201_CREATED if recorded.created
                       else status.HTTP_200_OK)


@events.get("/events", response_model=Page[EventPublic], dependencies=[require(*EVENT_READERS)])
async def list_events(
    session: SessionDep, limit: Limit = 50, cursor: Cursor = None,
    type_: Annotated[str | None, Query(alias="type", max_length=100,
                                       description="Only events of this type")] = None,
    after: Annotated[Timestamp | None, Query(
        description="Only events that occurred after this time (ISO 8601)")] = None,
) -> Page[StoredEvent]:
    """List stored events in the order they occurred."""
    return await repository.list_events(
        session, limit=limit, cursor=cursor, type_=type_,
        occurred_after=as_utc(after) if after else None)


@events.get("/events/{event_id}", response_model=EventPublic,
            dependencies=[require(*EVENT_READERS)], responses=problem_responses(404))
async def get_event(event: Annotated[StoredEvent, Depends(load_event)]) -> StoredEvent:
    """One stored event."""
    return event


# webhook endpoints

async def load_endpoint(session: SessionDep, endpoint_id: Id) -> WebhookEndpoint:
    return await service.get_endpoint(session, endpoint_id)


EndpointOr404 = Annotated[WebhookEndpoint, Depends(load_endpoint)]


@endpoints.post("/webhook-endpoints", status_code=status.HTTP_201_CREATED,
                response_model=EndpointWithSecret, dependencies=[require(*MANAGERS)])
async def create_webhook_endpoint(body: EndpointCreate, ctx: Ctx, response: Response,
                                  session: SessionDep,
                                  principal: CurrentPrincipal) -> WebhookEndpoint:
    """Subscribe a URL to event types; the response shows the signing secret, this once."""
    endpoint = await service.create_endpoint(
        session=session, clock=ctx.clock, settings=ctx.settings,
        principal=principal, data=body)
    response.headers["Location"] = f"/v1/webhook-endpoints/{endpoint.id}"
    set_etag(response, endpoint.version)
    return endpoint


@endpoints.get("/webhook-endpoints", response_model=Page[EndpointPublic],
               dependencies=[require(*MANAGEMENT_READERS)])
async def list_webhook_endpoints(
    session: SessionDep, limit: Limit = 50, cursor: Cursor = None,
    enabled: Annotated[bool | None, Query(description="Only enabled or disabled ones")] = None,
) -> Page[WebhookEndpoint]:
    """List webhook endpoints, oldest first (deleted ones are gone)."""
    return await repository.list_endpoints(session, limit=limit, cursor=cursor, enabled=enabled)


@endpoints.get("/webhook-endpoints/{endpoint_id}", response_model=EndpointPublic,
               dependencies=[require(*MANAGEMENT_READERS)], responses=problem_responses(404))
async def get_webhook_endpoint(endpoint: EndpointOr404, response: Response) -> WebhookEndpoint:
    """One webhook endpoint (without its secret)."""
    set_etag(response, endpoint.version)
    return endpoint


@endpoints.patch("/webhook-endpoints/{endpoint_id}", response_model=EndpointPublic,
                 dependencies=[require(*MANAGERS)], responses=problem_responses(404, 412),
                 openapi_extra=IF_MATCH)
async def update_webhook_endpoint(endpoint: EndpointOr404, body: EndpointUpdate, request: Request,
                                  response: Response, session: SessionDep, ctx: Ctx,
                                  principal: CurrentPrincipal) -> WebhookEndpoint:
    """Change URL, event types, description or enabled; `If-Match` guards against lost updates."""
    check_if_match(request, endpoint.version)
    endpoint = await service.update_endpoint(
        session=session, clock=ctx.clock, settings=ctx.settings,
        principal=principal, endpoint=endpoint, data=body)
    set_etag(response, endpoint.version)
    return endpoint


@endpoints.delete("/webhook-endpoints/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT,
                  dependencies=[require(*MANAGERS)], responses=problem_responses(404, 412),
                  openapi_extra=IF_MATCH)
async def delete_webhook_endpoint(endpoint: EndpointOr404, request: Request, session: SessionDep, ctx: Ctx,
                                  principal: CurrentPrincipal) -> Response:
    """Delete an endpoint: nothing more is sent to it; its deliveries stay readable."""
    check_if_match(request, endpoint.version)
    await service.delete_endpoint(session=session, clock=ctx.clock,
                                  principal=principal, endpoint=endpoint)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@endpoints.post("/webhook-endpoints/{endpoint_id}/rotate-secret",
                response_model=EndpointWithSecret, dependencies=[require(*MANAGERS)],
                responses=problem_responses(404, 412),
                openapi_extra=IF_MATCH)
async def rotate_webhook_secret(endpoint: EndpointOr404, request: Request, response: Response,
                                session: SessionDep, ctx: Ctx) -> WebhookEndpoint:
    """Issue a new signing secret (shown this once); the old one keeps signing for 24 h."""
    check_if_match(request, endpoint.version)
    endpoint = await service.rotate_secret(session=session, clock=ctx.clock,
                                           settings=ctx.settings, endpoint=endpoint)
    set_etag(response, endpoint.version)
    return endpoint


@endpoints.post("/webhook-endpoints/{endpoint_id}/replay", status_code=status.HTTP_202_ACCEPTED,
                response_model=ReplayResult, dependencies=[require(*MANAGERS)],
                responses=problem_responses(404, 409))
async def replay_webhook_events(endpoint: EndpointOr404, body: ReplayRequest, ctx: Ctx,
                                session: SessionDep) -> ReplayResult:
    """Send again every stored event since a time that the endpoint's filter matches."""
    count = await service.replay(session=session, clock=ctx.clock,
                                 endpoint=endpoint, since=body.since, wake=ctx.wake_deliveries)
    return ReplayResult(endpoint_id=endpoint.id, since=body.since, count=count)


# deliveries

async def load_delivery(session: SessionDep, delivery_id: Id) -> Delivery:
    return await service.get_delivery(session, delivery_id)


DeliveryOr404 = Annotated[Delivery, Depends(load_delivery)]


@deliveries.get("/deliveries", response_model=Page[DeliveryPublic],
                dependencies=[require(*MANAGEMENT_READERS)])
async def list_deliveries(
    session: SessionDep, limit: Limit = 50, cursor: Cursor = None,
    endpoint_id: Annotated[str | None, Query(max_length=36)] = None,
    status_: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    event_id: Annotated[str | None, Query(max_length=36)] = None,
) -> Page[Delivery]:
    """List deliveries with their attempts, oldest first."""
    return await repository.list_deliveries(
        session, limit=limit, cursor=cursor, endpoint_id=endpoint_id,
        status=status_, event_id=event_id)


@deliveries.get("/deliveries/{delivery_id}", response_model=DeliveryPublic,
                dependencies=[require(*MANAGEMENT_READERS)], responses=problem_responses(404))
async def get_delivery(delivery: DeliveryOr404) -> Delivery:
    """One delivery and the log of its attempts (time, response status, error, duration)."""
    return delivery


@deliveries.post("/deliveries/{delivery_id}/retry", response_model=DeliveryPublic,
                 dependencies=[require(*MANAGERS)], responses=problem_responses(404, 409))
async def retry_delivery(delivery: DeliveryOr404, ctx: Ctx,
                         session: SessionDep) -> Delivery:
    """Try a delivery again now, even one that has failed."""
    return await service.retry_delivery(session=session, clock=ctx.clock,
                                        delivery=delivery, wake=ctx.wake_deliveries)


# dunning: the policy and the salesperson directory

POLICY_READERS = (Role.finance, Role.credit_manager, Role.auditor)
POLICY_WRITERS = (Role.finance,)  # and admin
NOTIFICATION_READERS = (Role.finance, Role.credit_manager, Role.auditor, Role.sales)
SalespersonPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._\-]+$")]

dunning = APIRouter(prefix="/v1", tags=["dunning"], responses=problem_responses(401, 403, 422))
notifications = APIRouter(prefix="/v1", tags=["notifications"],
                          responses=problem_responses(401, 403, 422))


@dunning.get("/dunning-policy", response_model=DunningPolicyPublic,
             dependencies=[require(*POLICY_READERS)])
async def get_dunning_policy(session: SessionDep, response: Response) -> DunningPolicyPublic:
    """The dunning policy in force (the default one until a policy is stored)."""
    current = await service.get_policy(session)
    set_etag(response, current.version)
    return current


@dunning.put("/dunning-policy", response_model=DunningPolicyPublic,
             dependencies=[require(*POLICY_WRITERS)], responses=problem_responses(412),
             openapi_extra=IF_MATCH)
async def put_dunning_policy(body: DunningPolicyIn, request: Request, response: Response,
                             session: SessionDep, ctx: Ctx,
                             principal: CurrentPrincipal) -> DunningPolicyPublic:
    """Replace the dunning policy: levels by days overdue, recipients, channels and templates.

    An `invoice.overdue` step uses the level with the greatest `days_overdue` at or below the
    step's `level` (a 90-day step with levels up to 60 notifies the 60-day recipients again).
    Templates (body `template` and email `subject`) use `$name` or `${name}` with these
    placeholders: `invoice_id`, `invoice_number`, `amount` (invoiced, e.g. "CNY 1,250.00"),
    `outstanding` (still owed, formatted the same way), `currency`, `due_date`, `days_overdue`,
    `level`, `customer_id`, `customer_name`, `customer_number`, `salesperson_id`,
    `salesperson_name`, `recipient_name`, `recipient_role`; `$$` is a dollar sign. An unknown
    placeholder is a 422. `interest_annual_rate` (a decimal string 0–1) and `fee_minor` charge
    the invoice once per level through a ledger debit note; interest is outstanding × rate ×
    the days overdue not yet charged as interest / 365, rounded half-even. `If-Match` with the
    policy's ETag guards against lost updates.
    """
    current = await service.put_policy(
        session, clock=ctx.clock, principal=principal, data=body,
        request_version=lambda version: check_if_match(request, version))
    set_etag(response, current.version)
    return current


@dunning.put("/salespeople/{salesperson_id}", response_model=SalespersonPublic,
             dependencies=[require(*POLICY_WRITERS)], openapi_extra=IF_MATCH,
             responses={201: {"model": SalespersonPublic, "description": "Added to the directory"},
                        **problem_responses(412)})
async def put_salesperson(salesperson_id: SalespersonPath, body: SalespersonIn, request: Request,
                          response: Response, session: SessionDep, ctx: Ctx) -> Salesperson:
    """Set a salesperson's name and email, where dunning reaches them (an extension of §7).

    `If-Match` with the entry's ETag guards against lost updates (`"0"`: only if it does
    not exist yet)."""
    row, created = await service.put_salesperson(
        session, clock=ctx.clock, salesperson_id=salesperson_id, data=body,
        request_version=lambda version: check_if_match(request, version))
    if created:
        response.status_code = status.HTTP_201_CREATED
    set_etag(response, row.version)
    return row


@dunning.get("/salespeople", response_model=Page[SalespersonPublic],
             dependencies=[require(*POLICY_READERS)])
async def list_salespeople(session: SessionDep, limit: Limit = 50,
                           cursor: Cursor = None) -> Page[Salesperson]:
    """The salesperson directory, by salesperson id."""
    values = decode_cursor(cursor, 1)
    rows = await repository.list_salespeople(session, limit=limit + 1,
                                             after=values[0] if values else None)
    next_cursor = encode_cursor(rows[limit - 1].salesperson_id) if len(rows) > limit else None
    return Page(items=rows[:limit], next_cursor=next_cursor)


@dunning.get("/salespeople/{salesperson_id}", response_model=SalespersonPublic,
             dependencies=[require(*POLICY_READERS)], responses=problem_responses(404))
async def get_salesperson(salesperson_id: SalespersonPath, session: SessionDep,
                          response: Response) -> Salesperson:
    """One salesperson's directory entry."""
    row = await service.get_salesperson(session, salesperson_id)
    set_etag(response, row.version)
    return row


@dunning.get("/dunning-runs", response_model=Page[DunningRunPublic],
             dependencies=[require(*POLICY_READERS)])
async def list_dunning_runs(
    session: SessionDep, limit: Limit = 50, cursor: Cursor = None,
    invoice_id: Annotated[str | None, Query(max_length=36)] = None,
    status_: Annotated[RunStatus | None, Query(alias="status")] = None,
) -> Page[DunningRun]:
    """Overdue steps queued for dunning, oldest first: pending ones say why they wait."""
    return await repository.list_runs(session, limit=limit, cursor=cursor,
                                      invoice_id=invoice_id, status=status_)


@dunning.get("/dunning-charges", response_model=Page[DunningChargePublic],
             dependencies=[require(*POLICY_READERS)])
async def list_dunning_charges(
    session: SessionDep, limit: Limit = 50, cursor: Cursor = None,
    invoice_id: Annotated[str | None, Query(max_length=36)] = None,
    status_: Annotated[ChargeStatus | None, Query(alias="status")] = None,
) -> Page[DunningCharge]:
    """Late-payment interest and fees dunning charged through ledger debit notes, oldest first."""
    return await repository.list_charges(session, limit=limit, cursor=cursor,
                                         invoice_id=invoice_id, status=status_)


# notifications

async def load_notification(session: SessionDep, principal: CurrentPrincipal,
                            notification_id: Id) -> Notification:
    return await service.get_notification(session, principal, notification_id)


NotificationOr404 = Annotated[Notification, Depends(load_notification)]
PolicyLevel = query_int(ge=1, le=99)


@notifications.get("/notifications", response_model=Page[NotificationPublic],
                   dependencies=[require(*NOTIFICATION_READERS)])
async def list_notifications(
    session: SessionDep, principal: CurrentPrincipal, limit: Limit = 50, cursor: Cursor = None,
    customer_id: Annotated[str | None, Query(max_length=36)] = None,
    invoice_id: Annotated[str | None, Query(max_length=36)] = None,
    level: Annotated[PolicyLevel | None, Query(description="The policy level")] = None,
    status_: Annotated[NotificationStatus | None, Query(alias="status")] = None,
    salesperson_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[Notification]:
    """Dunning notifications, oldest first; sales principals see their own customers' only."""
    visible, salesperson_id = principal.salesperson_scope(salesperson_id)
    if not visible:
        return Page(items=[], next_cursor=None)
    return await repository.list_notifications(
        session, limit=limit, cursor=cursor, customer_id=customer_id,
        invoice_id=invoice_id, level=level, status=status_, salesperson_id=salesperson_id)


@notifications.get("/notifications/{notification_id}", response_model=NotificationPublic,
                   dependencies=[require(*NOTIFICATION_READERS)], responses=problem_responses(404))
async def get_notification(note: NotificationOr404) -> Notification:
    """One notification: recipient, rendered message, status, attempts and the last error."""
    return note


@notifications.post("/notifications/{notification_id}/retry", response_model=NotificationPublic,
                    dependencies=[require(*POLICY_WRITERS)], responses=problem_responses(404, 409))
async def retry_notification(note: NotificationOr404, ctx: Ctx,
                             session: SessionDep) -> Notification:
    """Make a failed notification pending again: one more attempt, now."""
    return await service.retry_notification(session, clock=ctx.clock, note=note,
                                            wake=ctx.wake_emails)
