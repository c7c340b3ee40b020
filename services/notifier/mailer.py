"""The email worker: sends pending email notifications through SMTP (aiosmtplib).

`send_once` leases due pending email notifications (`FOR UPDATE SKIP LOCKED` on PostgreSQL
plus a `claimed_until` lease), asks ledger once per invoice whether dunning still applies (a
dispute opened or the invoice settled since → `skipped`; ledger not answering → tried again
later without counting an attempt), then sends one message per notification. A failed send
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
from shared.clock import Clock
from shared.db import Database
from shared.errors import DependencyUnavailable
from shared.polling import poll_loop

log = logging.getLogger("o2c.notifier.email")


def build_message(note: Notification, *, sender: str, at: datetime) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = formataddr((note.recipient_name or "", note.address or ""))
    message["Subject"] = note.subject
    message["Date"] = format_datetime(at)
    message["Message-ID"] = f"<{note.id}@o2c>"
    message["X-O2C-Notification-Id"] = note.id
    message["X-O2C-Invoice-Id"] = note.invoice_id
    message.set_content(note.body)
    return message


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
        for note in notes:
            try:
                await self._handle(note, invoices.get(note.invoice_id))
            except Exception:  # the lease runs out and it is tried again
                log.exception("email notification %s: could not record the outcome", note.id)
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

    async def _handle(self, note: Notification, invoice: Invoice | None | str) -> None:
        now = self.clock.now()
        if isinstance(invoice, str):  # ledger did not answer: check again later, no attempt used
            delay = self.settings.email_retry_schedule_seconds[:1] or [60.0]
            await self._settle(note.id, {
                "last_error": f"not sent yet, dunning could not be confirmed: {invoice}",
                "next_attempt_at": now + timedelta(seconds=delay[0]), "updated_at": now})
            return
        skip = (f"ledger no longer knows invoice {note.invoice_id}" if invoice is None
                else skip_reason(invoice))
        if skip is not None:
            await self._settle(note.id, {"status": NotificationStatus.skipped, "last_error": skip,
                                         "next_attempt_at": None, "updated_at": now})
            return
        error = await self._send(note, now)
        attempts = note.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "updated_at": self.clock.now()}
        if error is None:
            values.update(status=NotificationStatus.sent, sent_at=self.clock.now(),
                          next_attempt_at=None, last_error=None)
        else:
            schedule = self.settings.email_retry_schedule_seconds
            values["last_error"] = error
            if attempts <= len(schedule):
                values["next_attempt_at"] = self.clock.now() + timedelta(seconds=schedule[attempts - 1])
            else:
                values.update(status=NotificationStatus.failed, next_attempt_at=None)
            log.info("email notification %s attempt %d failed: %s", note.id, attempts, error)
        await self._settle(note.id, values)

    async def _send(self, note: Notification, now: datetime) -> str | None:
        """Send one message; returns None on success or what went wrong."""
        s = self.settings
        password = s.smtp_password.get_secret_value() if s.smtp_password else None
        try:
            message = build_message(note, sender=s.smtp_sender, at=now)
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
