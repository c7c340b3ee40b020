"""The email worker: sends pending email notifications through SMTP (aiosmtplib).

`send_once` leases due pending email notifications (`FOR UPDATE SKIP LOCKED` on PostgreSQL
plus a `claimed_until` lease), asks ledger once per invoice whether dunning still applies (a
dispute opened or the invoice settled since → `skipped`; ledger not answering → tried again
later without counting an attempt), then sends one letter per customer and address: at the
highest level among its due reminders, the lead reminder's text followed, when the customer
has more than one overdue invoice, by all of them with their days, outstanding and charges
(disputed ones listed as such, not asked for). Every reminder it carries names it
(`letter_id`). A customer written to at a level is not written to again at that level or
below within `dunning_letter_interval_days` (those reminders are skipped naming the letter;
the next letter lists their invoices). A failed send
is counted in `attempts` with the error in `last_error` and retried after the next delay of
`email_retry_schedule_seconds`; when the schedule is used up the notification is `failed`
(`POST /v1/notifications/{id}/retry` makes it pending again for one more attempt).

Without `smtp_host` nothing is claimed: email notifications stay pending with a clear
`last_error` and go out once email is configured. The SMTP password is never logged, and never
sent over an unencrypted connection: with a username configured, a connection that is neither
implicit TLS (`smtp_tls`) nor upgraded by STARTTLS gets no AUTH and no message — the attempt
fails with that reason and is retried like any other failed send. (aiosmtplib's own `send`
with `start_tls=None` upgrades only when the server offers STARTTLS and then logs in all the
same, in clear: so the worker drives `aiosmtplib.SMTP` itself.) Without a username, plain SMTP
to a local relay stays allowed.
Each message carries `Message-ID: <notification id@o2c>` so a receiver can drop the
duplicate that a crash between sending and recording could cause.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

import aiosmtplib

from services.notifier import repository
from services.notifier.clients import Invoice, LedgerClient
from services.notifier.config import NotifierSettings
from services.notifier.dunning import skip_reason
from services.notifier.models import Notification, NotificationStatus
from services.notifier.policy import format_money
from shared.clock import Clock
from shared.db import Database
from shared.errors import DependencyUnavailable
from shared.polling import poll_loop

log = logging.getLogger("o2c.notifier.email")


def build_message(note: Notification, *, sender: str, at: datetime, subject: str | None = None,
                  body: str | None = None, invoice_ids: Sequence[str] = ()) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = formataddr((note.recipient_name or "", note.address or ""))
    message["Subject"] = note.subject if subject is None else subject
    message["Date"] = format_datetime(at)
    message["Message-ID"] = f"<{note.id}@o2c>"
    message["X-O2C-Notification-Id"] = note.id
    message["X-O2C-Invoice-Id"] = ", ".join(invoice_ids or [note.invoice_id])
    message.set_content(note.body if body is None else body)
    return message


def letter(lead: Notification, group: Sequence[Notification], listed: Sequence[Invoice],
           invoices: dict[str, Invoice | None | str]) -> tuple[str, str]:
    """The subject and body of a customer's letter: the lead reminder, then every overdue
    invoice of the customer with its days, outstanding and charges; disputed ones listed as
    such and not asked for."""
    reminded = {n.invoice_id for n in group}
    known = {i.id: i for i in listed}
    for invoice_id in reminded:  # an invoice of the group ledger's list left out (a long list)
        invoice = invoices.get(invoice_id)
        if isinstance(invoice, Invoice) and invoice_id not in known:
            known[invoice_id] = invoice
    rows = sorted(known.values(), key=lambda i: (i.due_date, i.number))
    asked = [i for i in rows if not i.disputed]
    currencies = sorted({i.currency for i in asked})
    lines = ["", "", f"All invoices of yours with us that are past due ({len(rows)}):", ""]
    for i in rows:
        charges = (f", including {format_money(i.debit_notes_minor, i.currency)} interest and "
                   "fees" if i.debit_notes_minor else "")
        state = ("disputed: not asked for until the dispute is resolved" if i.disputed else
                 f"{format_money(i.outstanding_minor, i.currency)} outstanding{charges}")
        lines.append(f"  {i.number}  due {i.due_date.isoformat()}  {i.days_overdue} days "
                     f"overdue  {state}")
    totals = "; ".join(format_money(sum(i.outstanding_minor for i in asked if i.currency == c), c)
                       for c in currencies)
    lines += ["", f"Total to pay now: {totals}" if totals else "Nothing to pay now."]
    subject = (f"Payment reminder: {len(asked)} overdue invoices, {totals} outstanding"
               if len(asked) > 1 else lead.subject)
    return " ".join(subject.split())[:1000], lead.body + "\n".join(lines) + "\n"


class EmailWorker:
    """Sends email notifications; `send_once` for one pass, `run` as the background loop."""

    def __init__(self, *, db: Database, clock: Clock, settings: NotifierSettings,
                 ledger: LedgerClient) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.ledger = ledger
        self._wake = asyncio.Event()

    @property
    def configured(self) -> bool:
        return bool(self.settings.smtp_host)

    def wake(self) -> None:
        self._wake.set()

    async def send_once(self) -> int:
        """Make one attempt for every due email; returns how many notifications were handled."""
        if not self.configured:
            return 0
        now = self.clock.now()
        async with self.db.session() as session, session.begin():
            notes = await repository.claim_due_emails(
                session, now=now,
                lease_until=now + timedelta(seconds=self.settings.email_lease_seconds),
                limit=self.settings.email_batch_size)
        if not notes:
            return 0
        invoices = await self._invoices(notes)
        letters: dict[tuple[str, str], list[Notification]] = {}
        for note in notes:
            try:
                if await self._checked(note, invoices.get(note.invoice_id)):
                    key = (note.customer_id or note.invoice_id, (note.address or "").lower())
                    letters.setdefault(key, []).append(note)
            except Exception:  # the lease runs out and it is tried again
                log.exception("email notification %s: could not record the outcome", note.id)
        for group in letters.values():
            try:
                await self._letter(group, invoices)
            except Exception:
                log.exception("email notifications %s: could not record the outcome",
                              ", ".join(n.id for n in group))
        return len(notes)

    async def _invoices(self, notes: Sequence[Notification]) -> dict[str, Invoice | None | str]:
        """Each invoice as ledger sees it now, or the reason it could not be read."""
        out: dict[str, Invoice | None | str] = {}
        for invoice_id in dict.fromkeys(n.invoice_id for n in notes):
            try:
                out[invoice_id] = await self.ledger.get_invoice(invoice_id)
            except DependencyUnavailable as exc:
                out[invoice_id] = exc.detail
        return out

    async def _later(self, notes: Sequence[Notification], why: str) -> None:
        """Ledger did not answer: check again later, no attempt used."""
        now = self.clock.now()
        delay = self.settings.email_retry_schedule_seconds[:1] or [60.0]
        for note in notes:
            await self._settle(note.id, {
                "last_error": f"not sent yet, dunning could not be confirmed: {why}",
                "next_attempt_at": now + timedelta(seconds=delay[0]), "updated_at": now})

    async def _checked(self, note: Notification, invoice: Invoice | None | str) -> bool:
        """Whether the reminder still applies (else it is settled as skipped, or postponed)."""
        now = self.clock.now()
        if isinstance(invoice, str):
            await self._later([note], invoice)
            return False
        skip = (f"ledger no longer knows invoice {note.invoice_id}" if invoice is None
                else skip_reason(invoice))
        if skip is not None:
            await self._settle(note.id, {"status": NotificationStatus.skipped, "last_error": skip,
                                         "next_attempt_at": None, "updated_at": now})
            return False
        return True

    async def _letter(self, group: list[Notification], invoices: dict[str, Invoice | None | str]
                      ) -> None:
        """One message for a customer's due reminders to one address, at the highest of their
        levels, listing every overdue invoice of the customer when there is more than one
        (disputed ones as such)."""
        lead = max(group, key=lambda n: (n.level, n.days_overdue, n.invoice_number or "", n.id))
        now = self.clock.now()
        interval = self.settings.dunning_letter_interval_days
        if interval and lead.customer_id and lead.address:
            async with self.db.session(read_only=True) as session:
                earlier = await repository.recent_letter(
                    session, customer_id=lead.customer_id, address=lead.address,
                    level=lead.level, since=now - timedelta(days=interval))
            if earlier is not None:
                for note in group:
                    await self._settle(note.id, {
                        "status": NotificationStatus.skipped, "letter_id": earlier.id,
                        "next_attempt_at": None, "updated_at": now, "last_error": (
                            f"the customer was reminded at level {earlier.level} on "
                            f"{earlier.sent_at:%Y-%m-%d} (notification {earlier.id}); not "
                            f"written to again at this level within {interval} days: the next "
                            "letter lists this invoice")})
                return
        subject, body = lead.subject, lead.body
        listed: list[Invoice] = []
        if lead.customer_id:
            try:
                listed = await self.ledger.overdue_invoices(lead.customer_id)
            except DependencyUnavailable as exc:
                await self._later(group, exc.detail)
                return
        if len(listed) > 1 or len(group) > 1:
            subject, body = letter(lead, group, listed, invoices)
        error = await self._send(lead, now, subject=subject, body=body,
                                 invoice_ids=[n.invoice_id for n in group])
        for note in group:
            attempts = note.attempts + 1
            values: dict[str, Any] = {"attempts": attempts, "updated_at": self.clock.now()}
            if error is None:
                values.update(status=NotificationStatus.sent, sent_at=self.clock.now(),
                              next_attempt_at=None, last_error=None, letter_id=lead.id)
                if note is lead:
                    values.update(subject=subject, body=body)  # what went out, to read back
            else:
                schedule = self.settings.email_retry_schedule_seconds
                values["last_error"] = error
                if attempts <= len(schedule):
                    values["next_attempt_at"] = (self.clock.now()
                                                 + timedelta(seconds=schedule[attempts - 1]))
                else:
                    values.update(status=NotificationStatus.failed, next_attempt_at=None)
                log.info("email notification %s attempt %d failed: %s", note.id, attempts, error)
            await self._settle(note.id, values)

    async def _send(self, note: Notification, now: datetime, *, subject: str, body: str,
                    invoice_ids: list[str]) -> str | None:
        """Send one message; returns None on success or what went wrong."""
        s = self.settings
        password = s.smtp_password.get_secret_value() if s.smtp_password else None
        try:
            message = build_message(note, sender=s.smtp_sender, at=now, subject=subject,
                                    body=body, invoice_ids=invoice_ids)
        except (ValueError, TypeError) as exc:  # a header the email library refuses
            return f"the message could not be built: {exc}"[:1000]
        smtp = aiosmtplib.SMTP(
            hostname=s.smtp_host, port=s.smtp_port, use_tls=s.smtp_tls, start_tls=s.smtp_starttls,
            timeout=s.smtp_timeout_seconds, validate_certs=s.smtp_validate_certs)
        try:
            async with smtp:  # connects (and upgrades by STARTTLS as configured); QUIT on leaving
                if s.smtp_username is not None:
                    if smtp.get_transport_info("sslcontext") is None:
                        return self._unencrypted_reason()
                    await smtp.login(s.smtp_username, password or "")
                await smtp.send_message(message, sender=s.smtp_sender,
                                        recipients=[note.address or ""])
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}"[:1000]
        return None

    def _unencrypted_reason(self) -> str:
        """Why nothing was sent on a connection that is still in clear although a login is due."""
        why = ("O2C_SMTP_STARTTLS is false and O2C_SMTP_TLS is not set"
               if self.settings.smtp_starttls is False else "the SMTP server did not offer STARTTLS")
        return f"{why}; o2c does not send credentials over an unencrypted connection"

    async def _settle(self, notification_id: str, values: dict[str, Any]) -> None:
        async with self.db.session() as session, session.begin():
            await repository.settle_notification(session, notification_id, values)

    async def run(self, stop: asyncio.Event) -> None:
        """Background loop: send due emails, then wait until woken, stopped or the poll interval."""
        await poll_loop(self.send_once, stop=stop, wake=self._wake,
                        batch_size=self.settings.email_batch_size,
                        poll_seconds=self.settings.email_poll_seconds, log=log, what="email")
