"""The delivery worker: sends due deliveries to their endpoints, signed per Standard Webhooks.

It works in cycles of one write transaction each (`DeliveryWorker._cycle`): record the
outcomes of the sends that finished since the last cycle, then lease due pending deliveries
(`FOR UPDATE SKIP LOCKED` on PostgreSQL plus a `claimed_until` lease on both databases, so
several replicas never send the same one at once, and a killed process's leases run out and
its deliveries are sent again). Leased deliveries are POSTed at once, concurrently — at most
`delivery_concurrency` in flight, `delivery_endpoint_concurrency` to one endpoint, so a slow
endpoint holds only its own senders — each event envelope with `webhook-id` = the event id
(receivers dedup on it). Any 2xx succeeds; anything else is retried after the next delay of
`webhook_retry_schedule_seconds`, and `failed` when the schedule is used up. An endpoint that
has been failing without a single success for more than `webhook_disable_after_days` is
disabled. Internal endpoints (the services' own inboxes, DESIGN.md §9) retry on
`internal_retry_schedule_seconds` instead, its last delay repeating: never `failed`, never
disabled. Webhooks go out through their own client (`webhook_client`), which never carries
the service key. The background loop is woken by ingest; it also polls for retries coming due.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier import destinations, repository
from services.notifier.config import NotifierSettings
from services.notifier.models import DeliveryStatus
from services.notifier.webhook_client import SendFailed, WebhookClient
from shared.clock import Clock
from shared.db import Database
from shared.events import Event
from shared.failpoints import failpoint
from shared.webhooks import sign, signed_headers

log = logging.getLogger("o2c.notifier.delivery")


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


class DeliveryWorker:
    """Sends webhook deliveries; `deliver_once` for one pass, `run` as the background loop.

    Work goes in cycles of one write transaction each: record the outcomes of the sends that
    finished since the last cycle (each delivery's attempt and next step, then each endpoint's
    health), then lease due deliveries for the senders that are free: at most
    `delivery_concurrency` sends in flight in all and `delivery_endpoint_concurrency` to one
    endpoint. A cycle leases no more of an endpoint's deliveries than it has free senders, so
    a slow endpoint holds only its own and nothing leased waits behind it. Leased deliveries
    are sent at once, concurrently, over the one webhook client.
    """

    def __init__(self, *, db: Database, clock: Clock, settings: NotifierSettings,
                 client: WebhookClient) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.client = client
        self._wake = asyncio.Event()
        self._sending: collections.Counter[str] = collections.Counter()  # endpoint -> in flight
        self._outcomes: list[tuple[Job, Outcome]] = []  # sent, not yet recorded
        self._freed = asyncio.Event()  # set when a send finishes

    def wake(self) -> None:
        self._wake.set()

    async def aclose(self) -> None:
        await self.client.aclose()

    @property
    def in_flight(self) -> int:
        return sum(self._sending.values())

    async def deliver_once(self) -> int:
        """Make one attempt for each due delivery the limits allow (a batch at most), record
        the outcomes; returns how many attempts were made."""
        jobs, _, _ = await self._cycle()
        if jobs:
            await asyncio.gather(*(self._attempt(job) for job in jobs))
            await self._cycle(claim=False)
        return len(jobs)

    async def _cycle(self, *, claim: bool = True) -> tuple[list[Job], bool, bool]:
        """One write transaction: record the finished sends, then lease due deliveries.

        Returns the jobs, whether the lease was cut off by its limit (more may be due), and
        whether deliveries of busy endpoints may have been held back. If the transaction
        fails its outcomes are lost with it: those deliveries are sent again after their
        lease, as after a crash.
        """
        done, self._outcomes = self._outcomes, []
        if not done and not claim:
            return [], False, False
        try:
            async with self.db.session() as session, session.begin():
                await self._record(session, done)
                if not claim:
                    return [], False, False
                return await self._claim(session)
        except Exception:
            if done:
                log.exception("could not record %d delivery attempts", len(done))
            raise

    async def _claim(self, session: AsyncSession) -> tuple[list[Job], bool, bool]:
        """Lease due deliveries: a batch at most, within the free senders overall and per
        endpoint (endpoints with none free are not even read). Their endpoints and events are
        read in the same transaction; each event's body is built once for all its endpoints."""
        limit = min(self.settings.delivery_batch_size,
                    self.settings.delivery_concurrency - self.in_flight)
        if limit <= 0:
            return [], True, False
        per_endpoint = self.settings.delivery_endpoint_concurrency
        busy = [e for e, n in self._sending.items() if n >= per_endpoint]
        now = self.clock.now()
        lease_until = now + timedelta(seconds=self.settings.delivery_lease_seconds)
        leased = await repository.lease_due_deliveries(
            session, now=now, lease_until=lease_until, limit=limit, skip_endpoints=busy)
        taken: collections.Counter[str] = collections.Counter()
        rows, excess = [], []
        for row in leased:  # no more per endpoint than it has free senders
            if self._sending[row.endpoint_id] + taken[row.endpoint_id] < per_endpoint:
                taken[row.endpoint_id] += 1
                rows.append(row)
            else:
                excess.append(row.id)
        await repository.release_deliveries(session, excess)
        cut_off, held_back = len(leased) >= limit, bool(busy or excess)
        if not rows:
            return [], cut_off, held_back
        endpoints = await repository.sending_endpoints(session, taken.keys())
        events = await repository.envelopes(session, {r.event_id for r in rows})
        bodies = {event_id: Event(id=e.id, type=e.type, occurred_at=e.occurred_at,
                                  source=e.source, subject=e.subject,
                                  data=e.data).model_dump_json().encode()
                  for event_id, e in events.items()}
        jobs = []
        for row in rows:
            endpoint = endpoints[row.endpoint_id]
            secrets = [endpoint.secret]
            if (endpoint.previous_secret and endpoint.previous_secret_expires_at
                    and endpoint.previous_secret_expires_at > now):
                secrets.append(endpoint.previous_secret)
            jobs.append(Job(
                delivery_id=row.id, attempt=row.attempt_count + 1, endpoint_id=row.endpoint_id,
                url=endpoint.url,
                allow_private=endpoint.allow_private or self.settings.webhook_allow_private,
                internal=endpoint.internal, secrets=tuple(secrets), msg_id=row.event_id,
                body=bodies[row.event_id]))
            self._sending[row.endpoint_id] += 1
        return jobs, cut_off, held_back

    async def _attempt(self, job: Job) -> None:
        """Send one job and queue its outcome for the next cycle; its sender is free after."""
        try:
            outcome = await self._send(job)
            if outcome.succeeded:
                failpoint("notifier.delivery.after_send")
            self._outcomes.append((job, outcome))
        except Exception:  # the lease runs out and the delivery is tried again
            log.exception("delivery %s: could not be attempted", job.delivery_id)
        finally:
            self._sending[job.endpoint_id] -= 1
            if self._sending[job.endpoint_id] <= 0:
                del self._sending[job.endpoint_id]
            self._freed.set()

    async def _send(self, job: Job) -> Outcome:
        at = self.clock.now()
        if not job.allow_private:
            problem = await destinations.private_address_problem(
                job.url, dns_timeout=self.settings.webhook_dns_timeout_seconds)
            if problem is not None:
                return Outcome(at, None, f"not sent: {problem}", 0)
        timestamp = int(self.clock.wall_now().timestamp())  # receivers check it against theirs
        headers = signed_headers(job.secrets[0], job.msg_id, timestamp, job.body)
        for older in job.secrets[1:]:
            headers["webhook-signature"] += " " + sign(older, job.msg_id, timestamp, job.body)
        started = time.perf_counter()
        try:
            status = await self.client.post(job.url, job.body, headers)
        except SendFailed as exc:
            elapsed = int((time.perf_counter() - started) * 1000)
            return Outcome(at, None, exc.cause[:500], elapsed)
        elapsed = int((time.perf_counter() - started) * 1000)
        return Outcome(at, status, None if 200 <= status < 300 else f"HTTP {status}", elapsed)

    async def _record(self, session: AsyncSession, done: list[tuple[Job, Outcome]]) -> None:
        """Record finished sends: each delivery's attempt and next step (one statement), then
        each endpoint's health in the order its outcomes came."""
        if not done:
            return
        now = self.clock.now()
        rows = []
        last_failed: dict[str, bool] = {}  # endpoint -> whether its latest outcome failed
        succeeded: set[str] = set()
        for job, outcome in done:
            if outcome.succeeded:
                status, next_at = DeliveryStatus.succeeded, None
                succeeded.add(job.endpoint_id)
            else:
                delay = retry_delay(self.settings, job)
                status, next_at = ((DeliveryStatus.pending, now + timedelta(seconds=delay))
                                   if delay is not None else (DeliveryStatus.failed, None))
                log.info("delivery %s attempt %d failed: %s", job.delivery_id, job.attempt,
                         outcome.error, extra={"delivery_id": job.delivery_id})
            last_failed[job.endpoint_id] = not outcome.succeeded
            rows.append({"id": job.delivery_id, "status": status.value, "next_attempt_at": next_at,
                         "last_attempt_at": outcome.at,
                         "attempt": {"at": outcome.at.isoformat(),
                                     "response_status": outcome.response_status,
                                     "error": outcome.error, "duration_ms": outcome.duration_ms}})
        await repository.record_attempts(session, rows)
        # a success ends the endpoint's failing run; a failure after it starts a new one
        await repository.mark_endpoints_healthy(session, succeeded)
        for endpoint_id, failed in last_failed.items():
            if failed:
                await self._note_failure(session, endpoint_id, now)

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
        """Background loop of cycles, each sending what it leased at once.

        The next cycle comes right away after one cut off by its limit while senders are free;
        a moment (`delivery_gather_seconds`) after a send finishes, to record it with the
        others that finish meanwhile; when ingest wakes it; else after the poll interval
        (retries coming due). On stop, sends in flight get `delivery_stop_grace_seconds` to
        finish and are recorded; the rest keep their lease, as after a crash.
        """
        senders: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                self._wake.clear()
                self._freed.clear()
                try:
                    jobs, cut_off, _ = await self._cycle()
                except Exception:
                    log.exception("delivery cycle failed")
                    jobs, cut_off = [], False
                for job in jobs:
                    task = asyncio.create_task(self._attempt(job))
                    senders.add(task)
                    task.add_done_callback(senders.discard)
                if cut_off and self.in_flight < self.settings.delivery_concurrency:
                    continue  # more may be due, and there are senders for it
                await self._wait(stop)
        finally:
            if senders:
                await asyncio.wait(senders, timeout=self.settings.delivery_stop_grace_seconds)
                for task in senders:
                    task.cancel()
            try:
                await self._cycle(claim=False)
            except Exception:
                log.exception("delivery attempts not recorded at stop")

    async def _wait(self, stop: asyncio.Event) -> None:
        """Until woken, stopped, a send finishes (then a moment more, for others to finish
        too) or the poll interval passes."""
        if self._outcomes:
            self._freed.set()
        waiters = [asyncio.ensure_future(e.wait()) for e in (self._wake, stop, self._freed)]
        try:
            await asyncio.wait(waiters, timeout=self.settings.delivery_poll_seconds,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        if self._freed.is_set() and not (self._wake.is_set() or stop.is_set()):
            await asyncio.sleep(self.settings.delivery_gather_seconds)
