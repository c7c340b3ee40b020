"""Dunning end to end: ledger's overdue scan → notifier's notifications, emails received by a
local SMTP server, `dunning.escalated` delivered to a webhook, interest once, and the faults
(SMTP down, credit or ledger down, missing addresses, disputes, duplicates). Time moves
only with the frozen clock."""

from __future__ import annotations

import asyncio
import json

import pytest

from shared.webhooks import verify
from tests.fixtures.dunning import (
    CONTACTS,
    LEGAL_EMAIL,
    SmtpServer,
    by_role,
    customer,
    day,
    invoice,
    notifications,
    overdue_event,
    overrides,
    salesperson,
    scan,
    settle,
)
from tests.fixtures.notifier import ingest, subscribe


@pytest.fixture
def smtp():
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def system_overrides(smtp):
    return overrides(smtp)


def escalations(system) -> list[dict]:
    return [json.loads(r["body"]) for r in system.receiver.requests
            if json.loads(r["body"])["type"] == "dunning.escalated"]


async def test_escalation_over_weeks_reaches_the_right_people_by_email_and_webhook(system, smtp):
    endpoint = await subscribe(system, "/dunning", ["dunning.escalated"])
    await salesperson(system)
    customer_id = await customer(system)
    inv = await invoice(system, customer_id, due_in_days=10)
    due = inv["due_date"]

    await day(system, due, 0)  # not overdue yet
    assert await notifications(system) == []

    await day(system, due, 1)
    first = by_role(await notifications(system, invoice_id=inv["id"]))
    assert set(first) == {"salesperson", "finance"}
    assert {n["status"] for n in first.values()} == {"sent"}
    assert {n["level"] for n in first.values()} == {1}
    assert first["finance"]["address"] == "li.na@brightway.example"
    assert first["salesperson"]["recipient_name"] == "Alice Chen"
    (mail,) = smtp.to("li.na@brightway.example")
    assert mail.subject == f"Payment reminder: invoice {inv['number']} is 1 days overdue"
    assert "Dear Li Na" in mail.body
    assert "CNY 1,250.00" in mail.body and f"due on {due}" in mail.body
    assert "Brightway Electronics" in mail.body and "Alice Chen" in mail.body
    assert mail.message["Message-ID"] == f"<{first['finance']['id']}@o2c>"
    assert len(smtp.to("alice.chen@o2c.example")) == 1

    (hook,) = [r for r in system.receiver.requests if r["path"] == "/dunning"]
    verify(endpoint["secret"], hook["headers"], hook["body"], now=system.clock.now())
    event = json.loads(hook["body"])
    assert event["type"] == "dunning.escalated" and event["source"] == "notifier"
    assert event["subject"] == inv["id"]
    data = event["data"]
    assert data["invoice_number"] == inv["number"] and data["customer_id"] == customer_id
    assert data["salesperson_id"] == "S-ALICE" and data["level"] == 1
    assert data["days_overdue"] == 1 and data["outstanding_minor"] == 125_000
    assert {r["role"] for r in data["recipients"]} == {"salesperson", "finance"}

    await day(system, due, 15)
    second = by_role(await notifications(system, invoice_id=inv["id"], level=2))
    assert set(second) == {"salesperson", "finance", "key_person"}
    assert len(smtp.to("zhao.lei@brightway.example")) == 1

    await day(system, due, 30)
    third = by_role(await notifications(system, invoice_id=inv["id"], level=3))
    assert set(third) == {"salesperson", "finance", "key_person", "general_manager"}
    assert third["general_manager"]["recipient_name"] == "Wang Wei"
    (boss,) = smtp.to("wang.wei@brightway.example")
    assert boss.subject.startswith("Escalation: invoice") and "copying this reminder" in boss.body
    assert smtp.to("sun.mei@brightway.example") == []  # a GM exists: the decision-maker is not copied

    await day(system, due, 60)
    fourth = by_role(await notifications(system, invoice_id=inv["id"], level=4))
    assert set(fourth) == {"salesperson", "finance", "key_person", "general_manager", "legal"}
    assert fourth["legal"]["address"] == LEGAL_EMAIL and len(smtp.to(LEGAL_EMAIL)) == 1

    # 90 days: past the last level, whose recipients are reminded again for this step
    await day(system, due, 90)
    again = [n for n in await notifications(system, invoice_id=inv["id"]) if n["threshold_days"] == 90]
    assert {n["recipient_role"] for n in again} == set(fourth) and {n["level"] for n in again} == {4}
    assert len(smtp.to(LEGAL_EMAIL)) == 2

    assert [(e["data"]["level"], e["data"]["threshold_days"]) for e in escalations(system)] == [
        (1, 1), (2, 15), (3, 30), (4, 60), (4, 90)]
    assert all(n["status"] == "sent" for n in await notifications(system))
    assert len(smtp.received) == 2 + 3 + 4 + 5 + 5


async def test_catching_up_sends_each_step_once_and_the_decision_maker_stands_in_for_the_boss(
        system, smtp):
    await salesperson(system)
    contacts = [c for c in CONTACTS if c["role"] != "general_manager"]
    customer_id = await customer(system, contacts=contacts)
    inv = await invoice(system, customer_id)
    await day(system, inv["due_date"], 31)  # the scan catches up: steps 1, 15 and 30 at once
    items = await notifications(system, invoice_id=inv["id"])
    assert sorted((n["threshold_days"], n["recipient_role"]) for n in items) == [
        (1, "finance"), (1, "salesperson"),
        (15, "finance"), (15, "key_person"), (15, "salesperson"),
        (30, "finance"), (30, "general_manager"), (30, "key_person"), (30, "salesperson")]
    boss = next(n for n in items if n["recipient_role"] == "general_manager")
    assert boss["recipient_name"] == "Sun Mei" and boss["address"] == "sun.mei@brightway.example"
    assert len(smtp.to("sun.mei@brightway.example")) == 1
    # one letter per addressee at the highest level due, carrying the lower steps too
    assert len(smtp.to("li.na@brightway.example")) == 1
    assert {n["status"] for n in items} == {"sent"}
    finance = [n for n in items if n["recipient_role"] == "finance"]
    assert {n["letter_id"] for n in finance} == {
        next(n["id"] for n in finance if n["threshold_days"] == 30)}

    await scan(system)  # the same day again: nothing new anywhere
    await settle(system)
    assert len(await notifications(system, invoice_id=inv["id"])) == 9
    assert len(smtp.received) == 4  # finance, key person, salesperson, general manager


async def test_the_same_step_delivered_twice_notifies_once(system, smtp):
    await subscribe(system, "/dunning", ["dunning.escalated"])
    await salesperson(system)
    customer_id = await customer(system)
    inv = await invoice(system, customer_id, due_in_days=-1)
    event = overdue_event(inv["id"], 1)
    await ingest(system, event)
    await ingest(system, event, expect=200)  # the same id: stored once
    await ingest(system, overdue_event(inv["id"], 1))  # the same step under another id
    await settle(system)
    await ingest(system, overdue_event(inv["id"], 1))  # and again after it was worked
    await settle(system)

    items = await notifications(system, invoice_id=inv["id"])
    assert sorted(n["recipient_role"] for n in items) == ["finance", "salesperson"]
    assert len(smtp.received) == 2
    assert len(escalations(system)) == 1


async def test_smtp_down_keeps_email_pending_then_sends_once_when_it_is_back(system, smtp):
    smtp.stop()
    await salesperson(system)
    customer_id = await customer(system)
    inv = await invoice(system, customer_id, due_in_days=-1)
    await ingest(system, overdue_event(inv["id"], 1))
    await settle(system)

    items = by_role(await notifications(system))
    finance = items["finance"]
    assert finance["status"] == "pending" and finance["attempts"] == 1
    assert "Connect" in finance["last_error"] or "refused" in finance["last_error"].lower()
    r = await system.client("notifier", "finance").get(f"/v1/notifications/{finance['id']}")
    assert r.json()["next_attempt_at"] is not None

    system.clock.advance(seconds=4)
    await settle(system)
    assert by_role(await notifications(system))["finance"]["attempts"] == 1  # not due yet

    smtp.start()
    system.clock.advance(seconds=1)
    await settle(system)
    items = by_role(await notifications(system))
    assert {n["status"] for n in items.values()} == {"sent"}
    assert items["finance"]["attempts"] == 2 and items["finance"]["last_error"] is None
    assert len(smtp.to("li.na@brightway.example")) == 1
    system.clock.advance(days=1)
    await settle(system)
    assert len(smtp.received) == 2


async def test_a_failed_email_after_the_schedule_can_be_retried(system, smtp):
    smtp.stop()
    await salesperson(system)
    customer_id = await customer(system, contacts=[CONTACT_FINANCE])
    inv = await invoice(system, customer_id, due_in_days=-1)
    await ingest(system, overdue_event(inv["id"], 1))
    await settle(system)
    for delay in [5, 300, 1800, 7200, 18000, 36000, 36000]:
        system.clock.advance(seconds=delay)
        await settle(system)
    finance = by_role(await notifications(system))["finance"]
    assert finance["status"] == "failed" and finance["attempts"] == 8
    assert finance["next_attempt_at"] is None and finance["last_error"]
    assert len(await notifications(system, status="failed")) == 2  # the salesperson's too

    client = system.client("notifier", "finance")
    assert (await client.post(f"/v1/notifications/{finance['id']}/retry")).status_code == 200
    smtp.start()
    await settle(system)
    r = await client.get(f"/v1/notifications/{finance['id']}")
    assert r.json()["status"] == "sent" and r.json()["attempts"] == 9
    assert len(smtp.received) == 1
    again = await client.post(f"/v1/notifications/{finance['id']}/retry")
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"


CONTACT_FINANCE = {"name": "Li Na", "role": "finance", "email": "li.na@brightway.example"}


async def test_recipients_without_an_address_are_skipped_visibly(system, smtp):
    customer_id = await customer(system, contacts=[
        {"name": "Li Na", "role": "finance"},  # no email
        {"name": "Zhao Lei", "role": "key_person", "email": "zhao.lei@brightway.example"}])
    inv = await invoice(system, customer_id, salesperson_id="S-NEW", due_in_days=-1)
    await ingest(system, overdue_event(inv["id"], 15))
    await settle(system)
    items = by_role(await notifications(system))
    assert items["finance"]["status"] == "skipped"
    assert "Li Na has no email address" in items["finance"]["last_error"]
    assert items["salesperson"]["status"] == "skipped"
    assert "S-NEW is not in the directory" in items["salesperson"]["last_error"]
    assert items["key_person"]["status"] == "sent"
    assert [m.recipients for m in smtp.received] == [["zhao.lei@brightway.example"]]
    assert await notifications(system, status="skipped") != []


async def test_a_disputed_invoice_is_not_dunned(system, smtp):
    await subscribe(system, "/dunning", ["dunning.escalated"])
    await salesperson(system)
    customer_id = await customer(system)
    inv = await invoice(system, customer_id, due_in_days=-1)
    r = await system.client("ledger", "finance").post(
        f"/v1/invoices/{inv['id']}/disputes", json={"reason": "Quality below QS-7",
                                                     "contact_role": "barrier"})
    assert r.status_code == 201, r.text
    await ingest(system, overdue_event(inv["id"], 1))  # emitted before the dispute was opened
    await settle(system)
    items = await notifications(system, invoice_id=inv["id"])
    assert {n["status"] for n in items} == {"skipped"} and len(items) == 2
    assert all("disputed" in n["last_error"] for n in items)
    assert smtp.received == [] and escalations(system) == []


async def test_a_dispute_opened_while_email_waits_stops_it(system, smtp):
    smtp.stop()
    await salesperson(system)
    customer_id = await customer(system)
    inv = await invoice(system, customer_id, due_in_days=-1)
    await ingest(system, overdue_event(inv["id"], 1))
    await settle(system)
    assert {n["status"] for n in await notifications(system)} == {"pending"}
    r = await system.client("ledger", "finance").post(
        f"/v1/invoices/{inv['id']}/disputes", json={"reason": "Wrong quantity"})
    assert r.status_code == 201, r.text
    smtp.start()
    system.clock.advance(seconds=5)
    await settle(system)
    items = await notifications(system)
    assert {n["status"] for n in items} == {"skipped"}
    assert all("disputed" in n["last_error"] for n in items)
    assert smtp.received == []


async def test_a_paid_invoice_is_not_dunned(system, smtp):
    await salesperson(system)
    customer_id = await customer(system)
    inv = await invoice(system, customer_id, due_in_days=-1)
    r = await system.client("ledger", "finance").post("/v1/payments", json={
        "customer_id": customer_id, "amount_minor": 125_000, "currency": "CNY",
        "method": "bank_transfer", "reference": "BANK-1"})
    assert r.status_code == 201, r.text
    await ingest(system, overdue_event(inv["id"], 1))
    await settle(system)
    items = await notifications(system)
    assert {n["status"] for n in items} == {"skipped"}
    assert all("nothing outstanding" in n["last_error"] for n in items)


async def test_credit_or_ledger_down_postpones_the_work_without_losing_it(system, smtp):
    await salesperson(system)
    customer_id = await customer(system)
    inv = await invoice(system, customer_id, due_in_days=-1)
    credit = system.mounts.pop("http://credit.test")
    await ingest(system, overdue_event(inv["id"], 1))
    await settle(system)
    assert await notifications(system) == []
    notifier = system.state("notifier")
    assert await notifier.dunning.run_once() == 0  # postponed, not due again yet
    runs = (await system.client("notifier", "auditor").get(
        "/v1/dunning-runs", params={"status": "pending"})).json()["items"]
    assert [(r["invoice_id"], r["attempts"]) for r in runs] == [(inv["id"], 1)]
    assert "credit" in runs[0]["last_error"] and runs[0]["next_attempt_at"] is not None

    ledger = system.mounts.pop("http://ledger.test")
    system.mounts["http://credit.test"] = credit
    system.clock.advance(seconds=30)
    assert await notifier.dunning.run_once() == 1
    assert await notifications(system) == []

    system.mounts["http://ledger.test"] = ledger
    system.clock.advance(seconds=60)
    await settle(system)
    items = by_role(await notifications(system))
    assert set(items) == {"salesperson", "finance"}
    assert {n["status"] for n in items.values()} == {"sent"}
    assert len(smtp.received) == 2


async def test_an_unknown_invoice_is_dropped_without_an_escalation(system, smtp):
    await subscribe(system, "/dunning", ["dunning.escalated"])
    await ingest(system, overdue_event("no-such-invoice", 1))
    await settle(system)
    assert await notifications(system) == [] and escalations(system) == []
    assert smtp.received == []


async def test_interest_and_fee_are_charged_once_per_level(system, smtp):
    r = await system.client("notifier", "finance").put("/v1/dunning-policy", json={"levels": [
        {"level": 1, "days_overdue": 1, "recipients": ["finance"], "channels": ["email"],
         "template": "Invoice ${invoice_number}: ${outstanding} overdue."},
        {"level": 2, "days_overdue": 30, "recipients": ["finance"], "channels": ["webhook"],
         "template": "Invoice ${invoice_number} is ${days_overdue} days late.",
         "interest_annual_rate": "0.12", "fee_minor": 5000}]})
    assert r.status_code == 200, r.text
    customer_id = await customer(system)
    inv = await invoice(system, customer_id)
    await day(system, inv["due_date"], 30)
    await day(system, inv["due_date"], 60)  # level 2 again for the 60-day step: no new charge
    await ingest(system, overdue_event(inv["id"], 30, days=30))  # a stray repeat
    await settle(system)

    notes = (await system.client("ledger", "finance").get(
        "/v1/debit-notes", params={"invoice_id": inv["id"]})).json()["items"]
    # 125,000 × 0.12 × 30 / 365 = 1,232.88 → 1,233 (half-even)
    assert sorted((n["kind"], n["amount_minor"]) for n in notes) == [("fee", 5000), ("interest", 1233)]
    assert all(f"dunning:{inv['id']}:2:" in n["reason"] for n in notes)
    charges = (await system.client("notifier", "credit_manager").get(
        "/v1/dunning-charges", params={"invoice_id": inv["id"]})).json()["items"]
    assert {(c["kind"], c["status"], c["days_charged"], c["debit_note_id"]) for c in charges} == {
        (n["kind"], "posted", 30 if n["kind"] == "interest" else 0, n["id"]) for n in notes}
    runs = (await system.client("notifier", "finance").get(
        "/v1/dunning-runs", params={"invoice_id": inv["id"]})).json()["items"]
    assert sorted((r["threshold_days"], r["policy_level"], r["status"]) for r in runs) == [
        (1, 1, "done"), (15, 1, "done"), (30, 2, "done"), (60, 2, "done")]
    ledger_invoice = (await system.client("ledger", "finance").get(
        f"/v1/invoices/{inv['id']}")).json()
    assert ledger_invoice["outstanding_minor"] == 125_000 + 5000 + 1233
    level1 = await notifications(system, level=1)
    # steps 1 and 15 both fall under level 1 and are due together: one letter (one per
    # customer and level), which both notifications name
    assert {n["channel"] for n in level1} == {"email"} and len(smtp.received) == 1
    assert len({n["letter_id"] for n in level1}) == 1 and level1[0]["letter_id"]
    level2 = await notifications(system, level=2)
    assert {(n["threshold_days"], n["channel"], n["status"]) for n in level2} == {
        (30, "webhook", "sent"), (60, "webhook", "sent")}


async def test_interest_accrues_on_the_principal_not_on_earlier_interest_or_fees(system, smtp):
    # ERPNext's dunning charges interest on the invoice's own outstanding, never on charges.
    r = await system.client("notifier", "finance").put("/v1/dunning-policy", json={"levels": [
        {"level": 1, "days_overdue": 15, "recipients": ["finance"], "channels": ["webhook"],
         "template": "Late: ${invoice_number}", "interest_annual_rate": "0.10", "fee_minor": 1000},
        {"level": 2, "days_overdue": 30, "recipients": ["finance"], "channels": ["webhook"],
         "template": "Later: ${invoice_number}", "interest_annual_rate": "0.10"}]})
    assert r.status_code == 200, r.text
    customer_id = await customer(system)
    inv = await invoice(system, customer_id, amount=10_000)
    await day(system, inv["due_date"], 15)
    await day(system, inv["due_date"], 30)

    notes = (await system.client("ledger", "finance").get(
        "/v1/debit-notes", params={"invoice_id": inv["id"]})).json()["items"]
    # 10,000 × 10 % × 15 / 365 = 41.1 → 41 at each level; on 11,041 it would have been 45
    assert sorted((n["kind"], n["amount_minor"]) for n in notes) == [
        ("fee", 1000), ("interest", 41), ("interest", 41)]
    later = next(n for n in notes if f"dunning:{inv['id']}:2:interest" in n["reason"])
    assert "CNY 100.00" in later["reason"], later["reason"]  # the base it names is the principal
    ledger_invoice = (await system.client("ledger", "finance").get(
        f"/v1/invoices/{inv['id']}")).json()
    assert ledger_invoice["outstanding_minor"] == 10_000 + 1000 + 41 + 41


async def test_a_charge_waits_for_ledger_and_is_posted_once(system, smtp):
    r = await system.client("notifier", "finance").put("/v1/dunning-policy", json={"levels": [
        {"level": 1, "days_overdue": 1, "recipients": ["finance"], "channels": ["webhook"],
         "template": "Late: ${invoice_number}", "fee_minor": 2500}]})
    assert r.status_code == 200, r.text
    customer_id = await customer(system)
    inv = await invoice(system, customer_id, due_in_days=-1)
    notifier = system.state("notifier")
    await ingest(system, overdue_event(inv["id"], 1))

    real = notifier.dunning.ledger.issue_debit_note
    calls = 0

    async def ledger_down_once(**kwargs):
        nonlocal calls
        calls += 1
        if calls == 1:  # the request reached ledger but the answer was lost
            await real(**kwargs)
            from shared.errors import DependencyUnavailable
            raise DependencyUnavailable("The ledger service did not answer.", dependency="ledger")
        return await real(**kwargs)

    notifier.dunning.ledger.issue_debit_note = ledger_down_once
    await settle(system)
    assert len(await notifications(system)) == 1  # the notification does not wait for ledger
    system.clock.advance(seconds=30)
    await settle(system)
    notes = (await system.client("ledger", "finance").get(
        "/v1/debit-notes", params={"invoice_id": inv["id"]})).json()["items"]
    assert [(n["kind"], n["amount_minor"]) for n in notes] == [("fee", 2500)]
    assert calls == 1  # found on ledger by its key the second time, not issued again


async def test_concurrent_steps_and_workers_notify_once(system, smtp):
    await salesperson(system)
    customer_id = await customer(system)
    inv = await invoice(system, customer_id, due_in_days=-1)
    client = system.client("notifier", "service")
    responses = await asyncio.gather(*(client.post("/v1/events", json=overdue_event(inv["id"], 1))
                                       for _ in range(4)))
    assert {r.status_code for r in responses} == {201}
    notifier = system.state("notifier")
    worked = await asyncio.gather(notifier.dunning.run_once(), notifier.dunning.run_once())
    assert sum(worked) == 1  # one run for the step, leased by one worker
    sent = await asyncio.gather(notifier.emails.send_once(), notifier.emails.send_once())
    assert sum(sent) == 2
    items = await notifications(system)
    assert sorted(n["recipient_role"] for n in items) == ["finance", "salesperson"]
    assert {n["status"] for n in items} == {"sent"} and len(smtp.received) == 2


async def test_a_customer_name_with_a_line_break_still_makes_one_subject_line(system, smtp):
    await system.client("notifier", "finance").put("/v1/dunning-policy", json={"levels": [
        {"level": 1, "days_overdue": 1, "recipients": ["finance"], "channels": ["email"],
         "subject": "${customer_name}: ${invoice_number}", "template": "Pay ${outstanding}."}]})
    customer_id = await customer(system, name="Bright\nway")
    inv = await invoice(system, customer_id, due_in_days=-1)
    await ingest(system, overdue_event(inv["id"], 1))
    await settle(system)
    (note,) = await notifications(system)
    assert note["status"] == "sent" and note["subject"] == f"Bright way: {inv['number']}"
    (mail,) = smtp.received
    assert mail.subject == f"Bright way: {inv['number']}" and mail.body.strip() == "Pay CNY 1,250.00."


async def test_email_waits_for_smtp_to_be_configured_then_goes_out(system, smtp):
    notifier = system.state("notifier")
    configured = notifier.settings
    unconfigured = configured.model_copy(update={"smtp_host": None})
    notifier.dunning.settings = notifier.emails.settings = unconfigured  # as if started without it
    await salesperson(system)
    customer_id = await customer(system)
    inv = await invoice(system, customer_id, due_in_days=-1)
    await ingest(system, overdue_event(inv["id"], 1))
    await settle(system)
    assert {(n["status"], n["attempts"]) for n in await notifications(system)} == {("pending", 0)}
    assert smtp.received == []

    notifier.dunning.settings = notifier.emails.settings = configured  # restarted with a host
    await settle(system)
    items = await notifications(system)
    assert {(n["status"], n["last_error"]) for n in items} == {("sent", None)}
    assert len(smtp.received) == 2


async def test_a_charge_ledger_refuses_is_kept_with_the_reason(system, smtp):
    r = await system.client("notifier", "finance").put("/v1/dunning-policy", json={"levels": [
        {"level": 1, "days_overdue": 1, "recipients": ["finance"], "channels": ["webhook"],
         "template": "Late: ${invoice_number}", "fee_minor": 2500}]})
    assert r.status_code == 200, r.text
    customer_id = await customer(system)
    inv = await invoice(system, customer_id, due_in_days=-1)
    notifier = system.state("notifier")

    async def refuse(**_):
        return None, "ledger refused the debit note (409): the invoice is written off"

    notifier.dunning.ledger.issue_debit_note = refuse
    await ingest(system, overdue_event(inv["id"], 1))
    await settle(system)
    (charge,) = (await system.client("notifier", "finance").get("/v1/dunning-charges")).json()["items"]
    assert charge["status"] == "refused" and "written off" in charge["last_error"]
    assert charge["debit_note_id"] is None and charge["attempts"] == 1
    (run,) = (await system.client("notifier", "finance").get("/v1/dunning-runs")).json()["items"]
    assert run["status"] == "done"
    assert [n["status"] for n in await notifications(system)] == ["sent"]


async def test_a_dispute_pauses_dunning_over_weeks_and_resolving_it_resumes(system, smtp):
    await salesperson(system)
    customer_id = await customer(system)
    inv = await invoice(system, customer_id, due_in_days=5)
    due = inv["due_date"]
    await day(system, due, 1)
    assert len(await notifications(system, invoice_id=inv["id"])) == 2

    opened = await system.client("ledger", "finance").post(
        f"/v1/invoices/{inv['id']}/disputes", json={"reason": "Quality below QS-7",
                                                     "contact_role": "barrier"})
    assert opened.status_code == 201, opened.text
    for days in (15, 20, 30):
        await day(system, due, days)
    assert len(await notifications(system, invoice_id=inv["id"])) == 2  # paused
    assert len(smtp.received) == 2

    resolved = await system.client("ledger", "finance").post(
        f"/v1/invoices/{inv['id']}/disputes/{opened.json()['id']}/resolve",
        json={"resolution": "Retest passed"})
    assert resolved.status_code == 200, resolved.text
    await day(system, due, 31)
    items = await notifications(system, invoice_id=inv["id"])
    assert {n["threshold_days"] for n in items} == {1, 15, 30}  # the steps missed, once each
    boss = [n for n in items if n["recipient_role"] == "general_manager"]
    assert [(b["status"], b["days_overdue"]) for b in boss] == [("sent", 31)]
    assert len(smtp.to("wang.wei@brightway.example")) == 1
