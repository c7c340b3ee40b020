"""Builders for dunning tests: a local SMTP server, customers with contacts, overdue invoices
and one helper that moves everything along (outbox relays, dunning, email, deliveries)."""

from __future__ import annotations

import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.harness import System

LEGAL_EMAIL = "legal@o2c.example"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        return self.message.get_content()


@dataclass
class SmtpServer:
    """An aiosmtpd server on 127.0.0.1 that keeps what it receives; start/stop at will."""

    port: int = field(default_factory=free_port)
    received: list[Mail] = field(default_factory=list)
    _controller: Controller | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self._lock:
            self.received.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def start(self) -> None:
        if self._controller is None:
            self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
            self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def to(self, address: str) -> list[Mail]:
        return [m for m in self.received if address in m.recipients]


def overrides(smtp: SmtpServer, **notifier: Any) -> dict[str, dict[str, Any]]:
    return {"notifier": {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_timeout_seconds": 5,
                         "dunning_legal_email": LEGAL_EMAIL, **notifier}}


CONTACTS = [
    {"name": "Li Na", "role": "finance", "email": "li.na@brightway.example"},
    {"name": "Zhao Lei", "role": "key_person", "email": "zhao.lei@brightway.example"},
    {"name": "Wang Wei", "role": "general_manager", "email": "wang.wei@brightway.example"},
    {"name": "Sun Mei", "role": "decision_maker", "email": "sun.mei@brightway.example"},
]


async def customer(system: System, *, contacts: list[dict[str, Any]] | None = None,
                   salesperson_id: str | None = "S-ALICE", name: str = "Brightway Electronics") -> str:
    r = await system.client("credit", "credit_manager").post("/v1/customers", json={
        "name": name, "salesperson_id": salesperson_id,
        "contacts": CONTACTS if contacts is None else contacts})
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def salesperson(system: System, salesperson_id: str = "S-ALICE", name: str = "Alice Chen",
                      email: str | None = "alice.chen@o2c.example") -> dict[str, Any]:
    r = await system.client("notifier", "finance").put(
        f"/v1/salespeople/{salesperson_id}", json={"name": name, "email": email})
    assert r.status_code in (200, 201), r.text
    return r.json()


async def invoice(system: System, customer_id: str, *, amount: int = 125_000,
                  salesperson_id: str | None = "S-ALICE", due_in_days: int = 0) -> dict[str, Any]:
    """An invoice due `due_in_days` from today, issued now (or on the due date if that is past)."""
    clock = system.clock
    issued = clock.now() + timedelta(days=min(0, due_in_days))
    r = await system.client("ledger", "service").post("/v1/invoices", json={
        "order_id": str(uuid.uuid4()), "customer_id": customer_id, "salesperson_id": salesperson_id,
        "currency": "CNY", "amount_minor": amount, "issued_at": issued.isoformat(),
        "due_date": (clock.today() + timedelta(days=due_in_days)).isoformat()})
    assert r.status_code == 201, r.text
    return r.json()


async def scan(system: System) -> dict[str, Any]:
    r = await system.client("ledger", "finance").post("/v1/overdue-scans", json={})
    assert r.status_code == 201, r.text
    return r.json()


async def settle(system: System, rounds: int = 10) -> None:
    """Move everything along until nothing is left to do at this moment."""
    notifier = system.state("notifier")
    for _ in range(rounds):
        moved = await system.pump()
        moved += await notifier.dunning.run_once()
        moved += await notifier.emails.send_once()
        moved += await system.pump()
        if moved == 0:
            return


async def day(system: System, due_date: str, days: int) -> None:
    """Set the clock to `days` after the due date (10:00 UTC), scan and settle."""
    from datetime import UTC, date, datetime

    target = date.fromisoformat(due_date) + timedelta(days=days)
    system.clock.set(datetime(target.year, target.month, target.day, 10, 0, tzinfo=UTC))
    await scan(system)
    await settle(system)


async def notifications(system: System, principal: str = "finance", **params: Any) -> list[dict[str, Any]]:
    r = await system.client("notifier", principal).get("/v1/notifications",
                                                        params={"limit": 200, **params})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def by_role(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n["recipient_role"]: n for n in items}


def overdue_event(invoice_id: str, level: int, *, days: int | None = None,
                  at: str = "2026-01-05T09:00:00+00:00") -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "type": "invoice.overdue", "occurred_at": at,
            "source": "ledger", "subject": invoice_id,
            "data": {"invoice_id": invoice_id, "level": level,
                     "days_overdue": level if days is None else days}}
