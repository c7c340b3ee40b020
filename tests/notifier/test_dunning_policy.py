"""The dunning policy (default, validation, versions), the salesperson directory, who may read
and change what, and email when SMTP is not configured (no smtp_host in this module)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from services.notifier import policy
from tests.fixtures.dunning import (
    by_role,
    customer,
    invoice,
    notifications,
    overdue_event,
    salesperson,
    settle,
)
from tests.fixtures.notifier import ingest

LEVEL = {"level": 1, "days_overdue": 1, "recipients": ["salesperson", "finance"],
         "channels": ["webhook", "email"], "template": "Invoice ${invoice_number} is overdue."}


def fields(response) -> dict[str, str]:
    return {e["field"]: e["message"] for e in response.json().get("errors", [])}


async def test_the_default_policy_applies_until_one_is_stored(system):
    r = await system.client("notifier", "auditor").get("/v1/dunning-policy")
    assert r.status_code == 200 and r.headers["etag"] == '"0"'
    body = r.json()
    assert body["is_default"] is True and body["version"] == 0
    assert [(lvl["days_overdue"], lvl["recipients"]) for lvl in body["levels"]] == [
        (1, ["salesperson", "finance"]),
        (15, ["salesperson", "finance", "key_person"]),
        (30, ["salesperson", "finance", "key_person", "general_manager"]),
        (60, ["salesperson", "finance", "key_person", "general_manager", "legal"])]
    assert "invoice_number" in body["placeholders"]


async def test_a_stored_policy_replaces_the_default_and_honours_if_match(system):
    client = system.client("notifier", "finance")
    levels = [LEVEL, {**LEVEL, "level": 2, "days_overdue": 20, "interest_annual_rate": "0.085",
                      "fee_minor": 1000, "subject": "Late: ${invoice_number}"}]
    r = await client.put("/v1/dunning-policy", json={"levels": levels})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["is_default"] is False and body["version"] == 1 and body["updated_by"] == "finance"
    assert body["levels"][1]["interest_annual_rate"] == "0.085"
    assert body["levels"][1]["fee_minor"] == 1000
    assert body["levels"][1]["subject"] == "Late: ${invoice_number}"
    assert body["levels"][0]["subject"] == policy.DEFAULT_SUBJECT
    assert (await client.get("/v1/dunning-policy")).json()["levels"] == body["levels"]

    stale = await client.put("/v1/dunning-policy", json={"levels": [LEVEL]},
                             headers={"If-Match": '"0"'})
    assert stale.status_code == 412 and stale.json()["code"] == "version_conflict"
    fresh = await client.put("/v1/dunning-policy", json={"levels": [LEVEL]},
                             headers={"If-Match": '"1"'})
    assert fresh.status_code == 200 and fresh.json()["version"] == 2
    assert len(fresh.json()["levels"]) == 1


@pytest.mark.parametrize(("levels", "field"), [
    ([{**LEVEL, "days_overdue": 30}, {**LEVEL, "level": 2, "days_overdue": 15}], "levels"),
    ([LEVEL, {**LEVEL, "level": 2}], "levels"),
    ([LEVEL, {**LEVEL, "days_overdue": 15}], "levels"),
    ([{**LEVEL, "recipients": ["salesperson", "ceo"]}], "levels[0].recipients[1]"),
    ([{**LEVEL, "recipients": ["finance", "finance"]}], "levels[0].recipients"),
    ([{**LEVEL, "recipients": []}], "levels[0].recipients"),
    ([{**LEVEL, "channels": ["sms"]}], "levels[0].channels[0]"),
    ([{**LEVEL, "interest_annual_rate": "1.5"}], "levels[0].interest_annual_rate"),
    ([{**LEVEL, "interest_annual_rate": "-0.1"}], "levels[0].interest_annual_rate"),
    ([{**LEVEL, "interest_annual_rate": "twelve"}], "levels[0].interest_annual_rate"),
    ([{**LEVEL, "fee_minor": 0}], "levels[0].fee_minor"),
    ([{**LEVEL, "template": "Dear ${boss}"}], "levels[0].template"),
    ([{**LEVEL, "template": "Pay $5 now"}], "levels[0].template"),
    ([{**LEVEL, "subject": "${invoice_number"}], "levels[0].subject"),
    ([{**LEVEL, "days_overdue": 0}], "levels[0].days_overdue"),
    ([{**LEVEL, "colour": "red"}], "levels[0].colour"),
    ([], "levels"),
])
async def test_a_bad_policy_is_refused_with_the_field(system, levels, field):
    r = await system.client("notifier", "finance").put("/v1/dunning-policy", json={"levels": levels})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_failed"
    assert field in fields(r), fields(r)
    assert (await system.client("notifier", "finance").get("/v1/dunning-policy")).json()["is_default"]


async def test_an_unknown_placeholder_names_the_known_ones(system):
    r = await system.client("notifier", "finance").put("/v1/dunning-policy", json={
        "levels": [{**LEVEL, "template": "Dear $boss, pay ${amount}"}]})
    message = fields(r)["levels[0].template"]
    assert "unknown placeholder(s): boss" in message and "invoice_number" in message


@pytest.mark.parametrize(("principal", "get", "put"), [
    ("admin", 200, 200), ("finance", 200, 200), ("credit_manager", 200, 403),
    ("auditor", 200, 403), ("alice", 403, 403), ("production", 403, 403), ("service", 403, 403),
])
async def test_who_may_read_and_change_the_policy(system, principal, get, put):
    client = system.client("notifier", principal)
    assert (await client.get("/v1/dunning-policy")).status_code == get
    r = await client.put("/v1/dunning-policy", json={"levels": [LEVEL]})
    assert r.status_code == put, r.text


async def test_two_first_puts_of_one_salesperson_at_once_both_succeed(system):
    finance = system.client("notifier", "finance")
    answers = await asyncio.gather(*(
        finance.put("/v1/salespeople/S-NEW", json={"name": name, "email": f"{name}@o2c.example"})
        for name in ("first", "second")))
    assert sorted(r.status_code for r in answers) in ([200, 201], [201, 201]), [r.text for r in answers]
    listed = (await finance.get("/v1/salespeople")).json()["items"]
    assert [p["salesperson_id"] for p in listed].count("S-NEW") == 1


async def test_a_salesperson_put_with_a_stale_if_match_is_refused(system):
    finance = system.client("notifier", "finance")
    body = {"name": "Alice Chen", "email": "alice@o2c.example"}
    exists = await finance.put("/v1/salespeople/S-ALICE", json=body, headers={"If-Match": '"1"'})
    assert exists.status_code == 412  # nothing at version 1 yet
    created = await finance.put("/v1/salespeople/S-ALICE", json=body, headers={"If-Match": '"0"'})
    assert created.status_code == 201 and created.headers["etag"] == '"1"'
    again = await finance.put("/v1/salespeople/S-ALICE", json=body, headers={"If-Match": '"0"'})
    assert again.status_code == 412 and again.json()["code"] == "version_conflict"
    moved = await finance.put("/v1/salespeople/S-ALICE", json={**body, "name": "Alice Li"},
                              headers={"If-Match": '"1"'})
    assert moved.status_code == 200 and moved.headers["etag"] == '"2"'
    stale = await finance.put("/v1/salespeople/S-ALICE", json={**body, "name": "Lost update"},
                              headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    assert (await finance.get("/v1/salespeople/S-ALICE")).json()["name"] == "Alice Li"


async def test_the_salesperson_directory(system):
    created = await system.client("notifier", "finance").put(
        "/v1/salespeople/S-ALICE", json={"name": "Alice Chen", "email": "alice@o2c.example"})
    assert created.status_code == 201 and created.json()["version"] == 1
    updated = await system.client("notifier", "admin").put(
        "/v1/salespeople/S-ALICE", json={"name": "Alice Chen-Li", "email": "alice.li@o2c.example"})
    assert updated.status_code == 200 and updated.json()["version"] == 2
    one = await system.client("notifier", "auditor").get("/v1/salespeople/S-ALICE")
    assert one.json()["email"] == "alice.li@o2c.example" and one.headers["etag"] == '"2"'
    await salesperson(system, "S-BOB", "Bob", None)
    listed = await system.client("notifier", "finance").get("/v1/salespeople", params={"limit": 1})
    assert [p["salesperson_id"] for p in listed.json()["items"]] == ["S-ALICE"]
    rest = await system.client("notifier", "finance").get(
        "/v1/salespeople", params={"cursor": listed.json()["next_cursor"]})
    assert [p["salesperson_id"] for p in rest.json()["items"]] == ["S-BOB"]
    assert rest.json()["next_cursor"] is None

    missing = await system.client("notifier", "finance").get("/v1/salespeople/S-NOBODY")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    bad = await system.client("notifier", "finance").put(
        "/v1/salespeople/S-X", json={"name": "X", "email": "not-an-address"})
    assert bad.status_code == 422 and "email" in fields(bad)
    assert (await system.client("notifier", "alice").put(
        "/v1/salespeople/S-ALICE", json={"name": "Me"})).status_code == 403


async def test_email_waits_while_smtp_is_not_configured(system):
    await salesperson(system)
    customer_id = await customer(system)
    inv = await invoice(system, customer_id, due_in_days=-1)
    await ingest(system, overdue_event(inv["id"], 1))
    await settle(system)
    items = by_role(await notifications(system))
    assert set(items) == {"salesperson", "finance"}
    for note in items.values():
        assert note["status"] == "pending" and note["attempts"] == 0
        assert "O2C_SMTP_HOST" in note["last_error"]
    assert await system.state("notifier").emails.send_once() == 0


async def test_sales_see_only_their_own_notifications(system):
    await salesperson(system)
    alice_customer = await customer(system)
    bob_customer = await customer(system, salesperson_id="S-BOB", name="Bobco")
    alice_invoice = await invoice(system, alice_customer, due_in_days=-1)
    bob_invoice = await invoice(system, bob_customer, salesperson_id="S-BOB", due_in_days=-1)
    await ingest(system, overdue_event(alice_invoice["id"], 1))
    await ingest(system, overdue_event(bob_invoice["id"], 1))
    await settle(system)

    everything = await notifications(system, "auditor")
    assert {n["salesperson_id"] for n in everything} == {"S-ALICE", "S-BOB"} and len(everything) == 4
    assert {n["salesperson_id"] for n in await notifications(system, "alice")} == {"S-ALICE"}
    assert await notifications(system, "alice", salesperson_id="S-BOB") == []
    assert len(await notifications(system, "credit_manager", customer_id=bob_customer)) == 2
    bobs = next(n for n in everything if n["salesperson_id"] == "S-BOB")
    hidden = await system.client("notifier", "alice").get(f"/v1/notifications/{bobs['id']}")
    assert hidden.status_code == 404
    shown = await system.client("notifier", "bob").get(f"/v1/notifications/{bobs['id']}")
    assert shown.status_code == 200 and shown.json()["invoice_number"] == bob_invoice["number"]
    assert (await system.client("notifier", "production").get("/v1/notifications")).status_code == 403
    retry = await system.client("notifier", "alice").post(f"/v1/notifications/{bobs['id']}/retry")
    assert retry.status_code == 403
    pending = await system.client("notifier", "finance").post(f"/v1/notifications/{bobs['id']}/retry")
    assert pending.status_code == 409  # only failed notifications are retried

    page = await system.client("notifier", "finance").get("/v1/notifications", params={"limit": 3})
    rest = await system.client("notifier", "finance").get(
        "/v1/notifications", params={"cursor": page.json()["next_cursor"]})
    assert len(page.json()["items"]) == 3 and len(rest.json()["items"]) == 1
    bad = await system.client("notifier", "finance").get("/v1/notifications",
                                                        params={"status": "lost"})
    assert bad.status_code == 422


def test_level_for_picks_the_greatest_level_at_or_below_the_step():
    levels = policy.DEFAULT_LEVELS
    assert policy.level_for(levels, 0) is None
    assert [policy.level_for(levels, d)["level"] for d in (1, 14, 15, 29, 30, 59, 60, 90, 400)] == [
        1, 1, 2, 2, 3, 3, 4, 4, 4]


def test_money_and_interest():
    assert policy.format_money(125_000, "CNY") == "CNY 1,250.00"
    assert policy.format_money(5, "JPY") == "JPY 5"
    assert policy.format_money(1234, "KWD") == "KWD 1.234"
    assert policy.interest_minor(125_000, Decimal("0.12"), 30) == 1233
    assert policy.interest_minor(365, Decimal("0.5"), 1) == 0  # 0.5 rounds half-even to 0
    assert policy.interest_minor(365 * 3, Decimal("0.5"), 1) == 2  # 1.5 → 2
    assert policy.interest_minor(100_000, Decimal("0"), 30) == 0


def test_templates_render_safely():
    assert policy.template_problems("Hi ${recipient_name}, $$5 fee") == []
    assert policy.render("Hi ${recipient_name}, $$5 fee", {"recipient_name": "Li"}) == "Hi Li, $5 fee"
    assert policy.render("${invoice_number} ${days_overdue}", {"invoice_number": "INV-1"}) == \
        "INV-1 ${days_overdue}"
