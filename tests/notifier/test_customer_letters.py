"""Customer-level reminders: a customer's overdue invoices of one level go out as one letter
listing all of them (disputed ones as such), not one email each; and a customer reminded at a
level is not written to again at that level within the interval. The per-invoice
`dunning.escalated` events stay. Emails are read back from a local SMTP server."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests.fixtures.dunning import SmtpServer, customer, invoice, notifications, overrides, scan, settle
from tests.fixtures.notifier import subscribe

FINANCE = "li.na@brightway.example"
POLICY = {"levels": [
    {"level": 1, "days_overdue": 1, "recipients": ["finance"], "channels": ["email", "webhook"],
     "subject": "Reminder: ${invoice_number} is ${days_overdue} days overdue",
     "template": "Dear ${recipient_name},\n\n${customer_name} owes ${outstanding} on "
                 "${invoice_number}, due ${due_date}."},
    {"level": 2, "days_overdue": 30, "recipients": ["finance"], "channels": ["email"],
     "template": "Second reminder for ${invoice_number}."}]}


@pytest.fixture
def smtp():
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def system_overrides(smtp):
    return overrides(smtp)


async def at(system, day: str) -> None:
    system.clock.set(datetime.fromisoformat(day).replace(hour=10, tzinfo=UTC))
    await scan(system)
    await settle(system)


async def test_one_letter_per_customer_and_level_lists_every_overdue_invoice(system, smtp):
    r = await system.client("notifier", "finance").put("/v1/dunning-policy", json=POLICY)
    assert r.status_code == 200, r.text
    await subscribe(system, "/dunning", ["dunning.escalated"])
    cid = await customer(system)
    a = await invoice(system, cid, amount=125_000, due_in_days=0)  # due 2026-01-05
    b = await invoice(system, cid, amount=40_000, due_in_days=0)
    c = await invoice(system, cid, amount=9_900, due_in_days=0)
    later = await invoice(system, cid, amount=5_000, due_in_days=3)  # due 2026-01-08
    r = await system.client("ledger", "finance").post(
        f"/v1/invoices/{c['id']}/disputes", json={"reason": "Short delivery", "contact_role": "finance"})
    assert r.status_code == 201, r.text

    await at(system, "2026-01-06")  # a and b cross level 1 together; c is disputed
    [mail] = smtp.to(FINANCE)
    assert mail.subject == "Payment reminder: 2 overdue invoices, CNY 1,650.00 outstanding"
    body = mail.body
    assert body.startswith("Dear Li Na,")
    listing = body[body.index("All invoices of yours with us that are past due (3):"):]
    assert f"{a['number']}  due 2026-01-05  1 days overdue  CNY 1,250.00 outstanding" in listing
    assert f"{b['number']}  due 2026-01-05  1 days overdue  CNY 400.00 outstanding" in listing
    assert f"{c['number']}  due 2026-01-05  1 days overdue  disputed: not asked for until the " \
           "dispute is resolved" in listing
    assert later["number"] not in listing  # not due yet
    assert "Total to pay now: CNY 1,650.00" in listing
    assert {i.strip() for i in str(mail.message["X-O2C-Invoice-Id"]).split(",")} == {a["id"], b["id"]}

    sent = {n["invoice_id"]: n for n in await notifications(system, level=1)}
    assert {sent[a["id"]]["status"], sent[b["id"]]["status"]} == {"sent"}
    lead = sent[a["id"]]["letter_id"]
    assert lead and sent[b["id"]]["letter_id"] == lead
    stored = next(n for n in sent.values() if n["id"] == lead)["body"]  # as it went out
    assert stored.splitlines() == body.splitlines()
    # the per-invoice escalations are kept for tools that want them
    escalated = {json.loads(r["body"])["data"]["invoice_id"] for r in system.receiver.requests
                 if json.loads(r["body"])["type"] == "dunning.escalated"}
    assert escalated == {a["id"], b["id"]}

    # `later` crosses level 1 two days after: the customer was reminded at level 1 this week
    await at(system, "2026-01-09")
    assert len(smtp.to(FINANCE)) == 1
    [held] = [n for n in await notifications(system, level=1) if n["invoice_id"] == later["id"]]
    assert held["status"] == "skipped" and held["letter_id"] == lead
    assert "reminded at level 1 on 2026-01-06" in held["last_error"]

    # a month later the 15- and 30-day steps are due together: one letter, at level 2, listing
    # every overdue invoice, the later one included
    await at(system, "2026-02-07")
    second = smtp.to(FINANCE)[1:]
    assert len(second) == 1 and later["number"] in second[0].body
    assert second[0].body.startswith("Second reminder for ")
    assert second[0].subject.startswith("Payment reminder: 3 overdue invoices")


async def test_with_no_interval_each_due_reminder_goes_out(system, smtp):
    system.state("notifier").settings.dunning_letter_interval_days = 0
    r = await system.client("notifier", "finance").put("/v1/dunning-policy", json=POLICY)
    assert r.status_code == 200, r.text
    cid = await customer(system)
    await invoice(system, cid, amount=1_000, due_in_days=0)
    await invoice(system, cid, amount=2_000, due_in_days=3)
    await at(system, "2026-01-06")
    await at(system, "2026-01-09")
    mails = smtp.to(FINANCE)
    assert len(mails) == 2
    assert mails[0].subject.startswith("Reminder: ")  # one overdue invoice: the level's own
    assert mails[1].subject == "Payment reminder: 2 overdue invoices, CNY 30.00 outstanding"
