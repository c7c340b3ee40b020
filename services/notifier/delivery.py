"""The delivery worker: sends due deliveries to their endpoints, signed per Standard Webhooks.

`deliver_once` leases due pending deliveries (`FOR UPDATE SKIP LOCKED` on PostgreSQL plus a
`claimed_until` lease, so several replicas never send the same one at once), POSTs each
event envelope with `webhook-id` = the event id (receivers dedup on it), records the attempt
and settles the outcome: any 2xx succeeds; anything else is retried after the next delay of
`webhook_retry_schedule_seconds`, and `failed` when the schedule is used up. An endpoint that
has been failing without a single success for more than `webhook_disable_after_days` is
disabled. Internal endpoints (the services' own inboxes, DESIGN.md §9) retry on
`internal_retry_schedule_seconds` instead, its last delay repeating: never `failed`, never
disabled. Webhooks go out through their own HTTP client, which never carries the service key.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier import destinations, repository
from services.notifier.config import NotifierSettings
from services.notifier.models import DeliveryStatus
from shared.clock import Clock
from shared.db import Database
from shared.events import Event
from shared.failpoints import failpoint
from shared.http import failure_cause
from shared.polling import poll_loop
from shared.webhooks import sign, signed_headers

log = logging.getLogger("o2c.notifier.delivery")
USER_AGENT = "o2c-notifier/1.0"


@dataclass(frozen=True)
class Job:
    """A leased delivery with everything needed to send it, detached from any session."""

    delivery_id: str
    attempt: int  # 1-based number of the attempt about to be made
    endpoint_id: str
    url: str
    allow_private: bool  # the endpoint may be on a private address
    internal: bool  # one of o2c's own inboxes: the internal schedule, never given up
    secrets: tuple[str, ...]  # current secret first, then a rotated one still valid
    msg_id: str
    body: bytes


@dataclass(frozen=True)
class Outcome:
    at: datetime
    response_status: int | None
    error: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.response_status is not None and 200 <= self.response_status < 300


def retry_delay(settings: NotifierSettings, job: Job) -> float | None:
    """Seconds until the next attempt after `job` failed; None when the delivery gives up."""
    if job.internal:
        schedule = settings.internal_retry_schedule_seconds
        return schedule[min(job.attempt, len(schedule)) - 1]
    schedule = settings.webhook_retry_schedule_seconds
    return schedule[job.attempt - 1] if job.attempt <= len(schedule) else None


def make_webhook_client(settings: NotifierSettings,
                        mounts: dict[str, httpx.AsyncBaseTransport] | None) -> httpx.AsyncClient:
    """The client for subscribers' URLs: no credentials, no redirects, a short timeout."""
    timeout = httpx.Timeout(settings.webhook_timeout_seconds,
                            connect=min(5.0, settings.webhook_timeout_seconds))
    return httpx.AsyncClient(timeout=timeout, mounts=dict(mounts) if mounts else None,
                             follow_redirects=False, headers={"user-agent": USER_AGENT})


class DeliveryWorker:
    """Sends webhook deliveries; `deliver_once` for one pass, `run` as the background loop."""

    def __init__(self, *, db: Database, clock: Clock, settings: NotifierSettings,
                 client: httpx.AsyncClient) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.client = client
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def aclose(self) -> None:
        await self.client.aclose()

    async def deliver_once(self) -> int:
        """Make one attempt for every due delivery; returns how many attempts were made."""
        jobs = await self._claim()
        if not jobs:
            return 0
        gate = asyncio.Semaphore(max(1, self.settings.delivery_concurrency))

        async def one(job: Job) -> None:
            async with gate:
                try:
                    outcome = await self._send(job)
                    if outcome.succeeded:
                        failpoint("notifier.delivery.after_send")
                    await self._settle(job, outcome)
                except Exception:  # the lease runs out and the delivery is tried again
                    log.exception("delivery %s: could not record the attempt", job.delivery_id)

        await asyncio.gather(*(one(job) for job in jobs))
        return len(jobs)

    async def _claim(self) -> list[Job]:
        now = self.clock.now()
        lease_until = now + timedelta(seconds=self.settings.delivery_lease_seconds)
        async with self.db.session() as session, session.begin():
            claimed = await repository.claim_due_deliveries(
                session, now=now, lease_until=lease_until, limit=self.settings.delivery_batch_size)
            jobs = []
            for delivery, endpoint, event in claimed:
                secrets = [endpoint.secret]
                if (endpoint.previous_secret and endpoint.previous_secret_expires_at
                        and endpoint.previous_secret_expires_at > now):
                    secrets.append(endpoint.previous_secret)
                envelope = Event(id=event.id, type=event.type, occurred_at=event.occurred_at,
                                 source=event.source, subject=event.subject, data=event.data)
                jobs.append(Job(
                    delivery_id=delivery.id, attempt=delivery.attempt_count + 1,
                    endpoint_id=endpoint.id, url=endpoint.url,
                    allow_private=endpoint.allow_private or self.settings.webhook_allow_private,
                    internal=endpoint.internal, secrets=tuple(secrets), msg_id=event.id,
                    body=envelope.model_dump_json().encode()))
            return jobs

    async def _send(self, job: Job) -> Outcome:
        at = self.clock.now()
        if not job.allow_private:
            problem = await destinations.private_address_problem(
                job.url, dns_timeout=self.settings.webhook_dns_timeout_seconds)
            if problem is not None:
                return Outcome(at, None, f"not sent: {problem}", 0)
        timestamp = int(at.timestamp())
        headers = signed_headers(job.secrets[0], job.msg_id, timestamp, job.body)
        for older in job.secrets[1:]:
            headers["webhook-signature"] += " " + sign(older, job.msg_id, timestamp, job.body)
        started = time.perf_counter()
        try:
            response = await self.client.post(job.url, content=job.body, headers=headers)
        except httpx.HTTPError as exc:
            elapsed = int((time.perf_counter() - started) * 1000)
            return Outcome(at, None, failure_cause(exc)[:500], elapsed)
        elapsed = int((time.perf_counter() - started) * 1000)
        error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        return Outcome(at, response.status_code, error, elapsed)

    async def _settle(self, job: Job, outcome: Outcome) -> None:
        now = self.clock.now()
        attempt: dict[str, Any] = {"at": outcome.at.isoformat(),
                                   "response_status": outcome.response_status,
                                   "error": outcome.error, "duration_ms": outcome.duration_ms}
        async with self.db.session() as session, session.begin():
            if outcome.succeeded:
                values: dict[str, Any] = {"status": DeliveryStatus.succeeded.value,
                                          "next_attempt_at": None}
                await repository.mark_endpoint_healthy(session, job.endpoint_id)
            else:
                delay = retry_delay(self.settings, job)
                if delay is not None:
                    values = {"status": DeliveryStatus.pending.value,
                              "next_attempt_at": now + timedelta(seconds=delay)}
                else:
                    values = {"status": DeliveryStatus.failed.value, "next_attempt_at": None}
                await self._note_failure(session, job.endpoint_id, now)
                log.info("delivery %s attempt %d failed: %s", job.delivery_id, job.attempt,
                         outcome.error, extra={"delivery_id": job.delivery_id})
            await repository.record_attempt(session, job.delivery_id,
                                            {**values, "last_attempt_at": outcome.at}, attempt)

    async def _note_failure(self, session: AsyncSession, endpoint_id: str, now: datetime) -> None:
        """Start or continue the endpoint's failing run; disable it (never an internal one) when
        the run is too long."""
        endpoint = await repository.mark_endpoint_failing(session, endpoint_id, now)
        if (endpoint is None or endpoint.internal or not endpoint.enabled
                or endpoint.failing_since is None):
            return
        limit = timedelta(days=self.settings.webhook_disable_after_days)
        if now - endpoint.failing_since > limit:
            reason = (f"deliveries failing since {endpoint.failing_since.isoformat()}, "
                      f"more than {self.settings.webhook_disable_after_days:g} days")
            if await repository.disable_endpoint(session, endpoint_id, reason, now):
                log.warning("webhook endpoint %s disabled: %s", endpoint_id, reason)

    async def run(self, stop: asyncio.Event) -> None:
        """Background loop: deliver, then wait until woken, stopped or the poll interval passes."""
        await poll_loop(self.deliver_once, stop=stop, wake=self._wake,
                        batch_size=self.settings.delivery_batch_size,
                        poll_seconds=self.settings.delivery_poll_seconds, log=log, what="delivery")
