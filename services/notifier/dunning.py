"""Dunning: from `invoice.overdue` to notifications, `dunning.escalated` and late-payment charges.

Ingest queues one `DunningRun` per (invoice, threshold) in the same transaction that stores
the event, so nothing is lost if the process stops before the worker sees it. The worker
(`DunningWorker.run_once`) leases due runs and, for each:

1. picks the policy level with the greatest `days_overdue` at or below the event's threshold
   (a 90-day step with levels up to 60 notifies the 60-day recipients again);
2. reads the invoice from ledger and the customer from credit (as the service principal);
   either not answering keeps the run pending and tries again later with a doubling delay;
3. in one transaction writes one notification per recipient (unique per invoice, threshold and
   recipient), the `dunning.escalated` event when the level has the webhook channel (its id is
   derived from invoice and threshold, so it is stored once), and the level's interest and fee
   charges (unique per invoice, level and kind). A disputed or settled invoice gets skipped
   notifications saying why, and no event or charge;
4. posts each charge to ledger as a debit note with the Idempotency-Key
   `dunning:{invoice_id}:{level}:{kind}`, which the note's reason carries too, so a retry after
   ledger's idempotency window finds the note instead of issuing a second one.

Email notifications are sent by `mailer.EmailWorker`; webhook-only ones are `sent` once the
event is stored (its deliveries are then the webhook worker's business).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier import ingest, policy, repository
from services.notifier.clients import CreditClient, Customer, Invoice, LedgerClient
from services.notifier.config import NotifierSettings
from services.notifier.models import (
    ChargeStatus,
    DunningCharge,
    DunningRun,
    Notification,
    NotificationStatus,
    RunStatus,
    Salesperson,
    StoredEvent,
)
from shared.clock import Clock
from shared.db import Database
from shared.errors import DependencyUnavailable
from shared.events import Event
from shared.polling import poll_loop

log = logging.getLogger("o2c.notifier.dunning")

OVERDUE = "invoice.overdue"
ESCALATED = "dunning.escalated"
ESCALATION_NAMESPACE = uuid.UUID("5f0e6c1a-8d4b-4f7e-9c2a-3b1d0e7f6a42")
EMAIL_NOT_CONFIGURED = "email is not configured (set O2C_SMTP_HOST); it goes out once it is"


def escalation_event_id(invoice_id: str, threshold_days: int) -> uuid.UUID:
    """The one id of the `dunning.escalated` event of an invoice's overdue step."""
    return uuid.uuid5(ESCALATION_NAMESPACE, f"{ESCALATED}:{invoice_id}:{threshold_days}")


def charge_key(invoice_id: str, level: int, kind: str) -> str:
    return f"dunning:{invoice_id}:{level}:{kind}"


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


async def queue_run(session: AsyncSession, *, event: StoredEvent, now: datetime) -> DunningRun | None:
    """Queue the dunning work of a newly stored `invoice.overdue` event (in its transaction).

    Once per (invoice, threshold): the same step delivered again under another event id adds
    nothing. An event without an invoice id or a numeric level is ignored (logged).
    """
    data = event.data or {}
    invoice_id = data.get("invoice_id") or event.subject
    threshold = _int(data.get("level"))
    days = _int(data.get("days_overdue"))
    if not isinstance(invoice_id, str) or not invoice_id or len(invoice_id) > 36 or threshold is None:
        log.warning("invoice.overdue %s without invoice_id or level: no dunning", event.id)
        return None
    if await repository.get_run(session, invoice_id, threshold) is not None:
        return None
    run = DunningRun(invoice_id=invoice_id, threshold_days=threshold,
                     days_overdue=days if days is not None else threshold, event_id=event.id,
                     next_attempt_at=now, created_at=now)
    try:
        async with session.begin_nested():
            session.add(run)
    except IntegrityError:  # a concurrent ingest queued the same step first
        if await repository.get_run(session, invoice_id, threshold) is None:
            raise
        return None
    return run


def reaction(wake: ingest.Wake) -> ingest.Reaction:
    """Dunning as a reaction of the ingest: a new `invoice.overdue` of ledger queues its run."""

    async def react(session: AsyncSession, event: StoredEvent) -> bool:
        return await queue_run(session, event=event, now=event.received_at) is not None

    return ingest.Reaction(OVERDUE, "ledger", react, wake)


async def current_levels(session: AsyncSession) -> list[dict[str, Any]]:
    stored = await repository.get_policy(session)
    return stored.levels if stored is not None else policy.DEFAULT_LEVELS


@dataclass(frozen=True)
class Recipient:
    role: str
    name: str | None
    address: str | None
    problem: str | None  # why no message can reach them (no such contact, no address)
    exists: bool  # there is someone in that role (a webhook can still name them)


def resolve_recipients(roles: list[str], *, customer: Customer | None,
                       salesperson_id: str | None, salesperson: Salesperson | None,
                       settings: NotifierSettings) -> list[Recipient]:
    """Who each role of a level is, with their address or why there is none."""
    out = []
    for role in roles:
        if role == policy.RecipientRole.salesperson:
            if not salesperson_id:
                out.append(Recipient(role, None, None, "the invoice has no salesperson", False))
            elif salesperson is None:
                out.append(Recipient(role, salesperson_id, None,
                                     f"salesperson {salesperson_id} is not in the directory "
                                     f"(PUT /v1/salespeople/{salesperson_id})", True))
            else:
                out.append(Recipient(role, salesperson.name, salesperson.email,
                                     None if salesperson.email else
                                     f"salesperson {salesperson_id} has no email address", True))
        elif role == policy.RecipientRole.legal:
            out.append(Recipient(role, settings.dunning_legal_name, settings.dunning_legal_email,
                                 None if settings.dunning_legal_email else
                                 "no legal address is configured (O2C_DUNNING_LEGAL_EMAIL)", True))
        else:
            contact = customer.contact(role) if customer is not None else None
            if (contact is None and role == policy.RecipientRole.general_manager and customer is not None
                    and policy.RecipientRole.decision_maker not in roles):
                contact = customer.contact(policy.RecipientRole.decision_maker)
            label = role.replace("_", " ")
            if customer is None:
                out.append(Recipient(role, None, None, "credit does not know the customer", False))
            elif contact is None:
                wanted = "general manager or decision-maker" if role == "general_manager" else label
                out.append(Recipient(role, None, None, f"the customer has no {wanted} contact", False))
            else:
                who = contact.name or label
                out.append(Recipient(role, contact.name, contact.email,
                                     None if contact.email else
                                     f"the customer's {contact.role.replace('_', ' ')} contact "
                                     f"{who} has no email address", True))
    return out


def skip_reason(invoice: Invoice) -> str | None:
    """Why an invoice is not dunned now (disputed, or nothing outstanding), if at all."""
    if invoice.disputed:
        return f"invoice {invoice.number} is disputed: dunning is paused until the dispute is resolved"
    if invoice.outstanding_minor <= 0:
        return f"invoice {invoice.number} has nothing outstanding"
    return None


class DunningWorker:
    """Turns queued overdue steps into notifications; `run_once` for one pass, `run` as a loop."""

    def __init__(self, *, db: Database, clock: Clock, settings: NotifierSettings,
                 ledger: LedgerClient, credit: CreditClient,
                 wake_deliveries: Callable[[], None], wake_emails: Callable[[], None]) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.ledger = ledger
        self.credit = credit
        self.wake_deliveries = wake_deliveries
        self.wake_emails = wake_emails
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run_once(self) -> int:
        """Work every due run once; returns how many runs were worked on."""
        now = self.clock.now()
        async with self.db.session() as session, session.begin():
            runs = await repository.claim_due_runs(
                session, now=now,
                lease_until=now + timedelta(seconds=self.settings.dunning_lease_seconds),
                limit=self.settings.dunning_batch_size)
        for run in runs:
            try:
                await self._work(run)
            except DependencyUnavailable as exc:
                await self._later(run, exc.detail)
            except Exception as exc:  # recorded on the run and tried again later
                log.exception("dunning run %s failed", run.id)
                await self._later(run, f"{type(exc).__name__}: {exc}")
        return len(runs)

    async def _later(self, run: DunningRun, error: str) -> None:
        delay = min(self.settings.dunning_retry_max_seconds,
                    self.settings.dunning_retry_min_seconds * 2 ** min(run.attempts, 20))
        async with self.db.session() as session, session.begin():
            row = await repository.lock_run(session, run.id)
            if row.status != RunStatus.pending:
                return
            row.attempts += 1
            row.last_error = error[:1000]
            row.next_attempt_at = self.clock.now() + timedelta(seconds=delay)
            row.claimed_until = None
        log.info("dunning run %s for invoice %s postponed %.0fs: %s", run.id, run.invoice_id,
                 delay, error)

    async def _finish(self, run_id: str, status: RunStatus, note: str | None = None) -> None:
        async with self.db.session() as session, session.begin():
            row = await repository.lock_run(session, run_id)
            row.status = status
            row.last_error = note[:1000] if note else None
            row.completed_at = self.clock.now()
            row.next_attempt_at = None
            row.claimed_until = None

    async def _work(self, run: DunningRun) -> None:
        if run.policy_level is None:  # first pass: notifications, event and charges to post
            if not await self._notify(run):
                return
        await self._post_charges(run)

    async def _notify(self, run: DunningRun) -> bool:
        """Write the run's notifications, event and charges; False when the run ended here."""
        async with self.db.session(read_only=True) as session:
            levels = await current_levels(session)
        level = policy.level_for(levels, run.threshold_days)
        if level is None:
            await self._finish(run.id, RunStatus.skipped,
                               f"no policy level at or below {run.threshold_days} days overdue")
            return False
        invoice = await self.ledger.get_invoice(run.invoice_id)
        if invoice is None:
            await self._finish(run.id, RunStatus.skipped,
                               f"ledger does not know invoice {run.invoice_id}")
            return False
        customer = await self.credit.get_customer(invoice.customer_id)
        salesperson_id = invoice.salesperson_id or (customer.salesperson_id if customer else None)
        now = self.clock.now()
        email_on = policy.Channel.email in level["channels"]
        skip = skip_reason(invoice)
        async with self.db.session() as session, session.begin():
            row = await repository.lock_run(session, run.id)
            if row.status != RunStatus.pending or row.policy_level is not None:
                return row.status == RunStatus.pending
            salesperson = (await repository.get_salesperson(session, salesperson_id)
                           if salesperson_id else None)
            figures = policy.Figures(
                invoice_id=invoice.id, invoice_number=invoice.number,
                amount_minor=invoice.amount_minor, outstanding_minor=invoice.outstanding_minor,
                currency=invoice.currency, due_date=invoice.due_date, days_overdue=run.days_overdue,
                level=level["level"], customer_id=invoice.customer_id,
                customer_name=customer.name if customer else None,
                customer_number=customer.number if customer else None,
                salesperson_id=salesperson_id,
                salesperson_name=salesperson.name if salesperson else None)
            recipients = resolve_recipients(level["recipients"], customer=customer,
                                            salesperson_id=salesperson_id, salesperson=salesperson,
                                            settings=self.settings)
            # a run's notifications are written only here, with policy_level, under the lock
            # taken above: none exist yet
            notes = [self._notification(run, level, figures, recipient, email_on=email_on,
                                        skip=skip, now=now) for recipient in recipients]
            session.add_all(notes)
            charges: list[DunningCharge] = []
            if skip is None:
                charges = await self._charges(session, run, level, invoice, now)
            await session.flush()
            if skip is None and policy.Channel.webhook in level["channels"]:
                await self._escalate(session, run, level, invoice, customer, salesperson_id,
                                     notes, charges, now)
            row.policy_level = level["level"]
            row.last_error = skip
            if skip is not None or not charges:
                row.status = RunStatus.done
                row.completed_at = now
                row.next_attempt_at = None
                row.claimed_until = None
            # else the lease stays while this pass posts the charges to ledger
            done = row.status == RunStatus.done
        self.wake_deliveries()
        if email_on:
            self.wake_emails()
        run.policy_level = level["level"]
        return not done

    def _notification(self, run: DunningRun, level: dict[str, Any], figures: policy.Figures,
                      recipient: Recipient, *, email_on: bool, skip: str | None,
                      now: datetime) -> Notification:
        values = figures.for_recipient(recipient.role, recipient.name)
        note = Notification(
            run_id=run.id, invoice_id=figures.invoice_id, invoice_number=figures.invoice_number,
            customer_id=figures.customer_id, salesperson_id=figures.salesperson_id,
            level=level["level"], threshold_days=run.threshold_days, days_overdue=run.days_overdue,
            recipient_role=recipient.role, recipient_name=recipient.name, address=recipient.address,
            channel=policy.Channel.email if email_on else policy.Channel.webhook,
            subject=" ".join(policy.render(level.get("subject") or policy.DEFAULT_SUBJECT,
                                           values).split())[:1000],  # one line: a mail header
            body=policy.render(level["template"], values), created_at=now, updated_at=now)
        problem = skip or (recipient.problem if email_on else
                           None if recipient.exists else recipient.problem)
        if problem is not None:
            note.status, note.last_error = NotificationStatus.skipped, problem
        elif email_on:
            note.status, note.next_attempt_at = NotificationStatus.pending, now
            if not self.settings.smtp_host:
                note.last_error = EMAIL_NOT_CONFIGURED
        else:  # webhook only: the dunning.escalated event carries it
            note.status, note.sent_at = NotificationStatus.sent, now
        return note

    async def _charges(self, session: AsyncSession, run: DunningRun, level: dict[str, Any],
                       invoice: Invoice, now: datetime) -> list[DunningCharge]:
        """The level's interest and fee, each at most once per (invoice, level, kind).

        Interest covers the days overdue not yet charged as interest on this invoice by an
        earlier level, so two levels with a rate never charge the same days twice, and it
        accrues on the principal only: the outstanding less the charges already posted to it
        (payments count against the principal first), never on earlier interest or fees.
        """
        earlier = await repository.invoice_charges(session, invoice.id)
        taken = {(c.level, c.kind) for c in earlier}
        out = []
        rate = level.get("interest_annual_rate")
        if rate is not None and (level["level"], "interest") not in taken:
            charged_days = sum(c.days_charged for c in earlier
                               if c.kind == "interest" and c.status != ChargeStatus.refused)
            days = run.days_overdue - charged_days
            principal = max(0, invoice.outstanding_minor - sum(
                c.amount_minor for c in earlier if c.status == ChargeStatus.posted))
            amount = policy.interest_minor(principal, Decimal(str(rate)), max(days, 0))
            if days > 0 and amount > 0:
                key = charge_key(invoice.id, level["level"], "interest")
                out.append(DunningCharge(
                    run_id=run.id, invoice_id=invoice.id, level=level["level"], kind="interest",
                    amount_minor=amount, currency=invoice.currency, days_charged=days,
                    idempotency_key=key, created_at=now,
                    reason=(f"Late-payment interest on {invoice.number}: {days} days at "
                            f"{Decimal(str(rate)) * 100:f}% a year on "
                            f"{policy.format_money(principal, invoice.currency)} "
                            f"[{key}]")[:400]))
        fee = level.get("fee_minor")
        if fee and (level["level"], "fee") not in taken:
            key = charge_key(invoice.id, level["level"], "fee")
            out.append(DunningCharge(
                run_id=run.id, invoice_id=invoice.id, level=level["level"], kind="fee",
                amount_minor=int(fee), currency=invoice.currency, idempotency_key=key,
                created_at=now,
                reason=f"Dunning fee, level {level['level']}, on {invoice.number} [{key}]"[:400]))
        for charge in out:
            session.add(charge)
        return out

    async def _escalate(self, session: AsyncSession, run: DunningRun, level: dict[str, Any],
                        invoice: Invoice, customer: Customer | None, salesperson_id: str | None,
                        notes: list[Notification], charges: list[DunningCharge],
                        now: datetime) -> None:
        data = {
            "invoice_id": invoice.id, "invoice_number": invoice.number,
            "customer_id": invoice.customer_id, "customer_name": customer.name if customer else None,
            "salesperson_id": salesperson_id, "level": level["level"],
            "threshold_days": run.threshold_days, "days_overdue": run.days_overdue,
            "outstanding_minor": invoice.outstanding_minor, "amount_minor": invoice.amount_minor,
            "currency": invoice.currency, "due_date": invoice.due_date.isoformat(),
            "channels": list(level["channels"]),
            "recipients": [{"role": n.recipient_role, "name": n.recipient_name,
                            "address": n.address, "channel": n.channel, "status": n.status,
                            "notification_id": n.id} for n in notes],
            "charges": [{"kind": c.kind, "amount_minor": c.amount_minor} for c in charges],
        }
        event = Event(id=escalation_event_id(invoice.id, run.threshold_days), type=ESCALATED,
                      occurred_at=now, source="notifier", subject=invoice.id, data=data)
        await ingest.record_event(session, clock=self.clock, event=event)

    async def _post_charges(self, run: DunningRun) -> None:
        """Post the run's pending charges to ledger; the run is done when none is left."""
        async with self.db.session(read_only=True) as session:
            charges = await repository.pending_charges(session, run.id)
        for charge in charges:
            note_id = None
            if charge.attempts > 0:  # an earlier try may have reached ledger
                note_id = await self.ledger.find_debit_note(charge.invoice_id, charge.idempotency_key)
            refusal = None
            if note_id is None:
                async with self.db.session() as session, session.begin():
                    row = await repository.get_charge(session, charge.id)
                    if row is not None:
                        row.attempts += 1
                note_id, refusal = await self.ledger.issue_debit_note(
                    invoice_id=charge.invoice_id, amount_minor=charge.amount_minor,
                    kind=charge.kind, reason=charge.reason, idempotency_key=charge.idempotency_key)
            async with self.db.session() as session, session.begin():
                row = await repository.get_charge(session, charge.id)
                if row is None:
                    continue
                if note_id is not None:
                    row.status, row.debit_note_id = ChargeStatus.posted, note_id
                    row.posted_at, row.last_error = self.clock.now(), None
                else:
                    row.status, row.last_error = ChargeStatus.refused, refusal
                    log.warning("dunning charge %s refused: %s", charge.id, refusal)
        await self._finish(run.id, RunStatus.done)

    async def run(self, stop: asyncio.Event) -> None:
        """Background loop: work due runs, then wait until woken, stopped or the poll interval."""
        await poll_loop(self.run_once, stop=stop, wake=self._wake,
                        batch_size=self.settings.dunning_batch_size,
                        poll_seconds=self.settings.dunning_poll_seconds, log=log, what="dunning")
