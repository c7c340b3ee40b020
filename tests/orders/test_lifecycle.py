"""The order machine, one test class per transition of DESIGN.md §4's table.

Each class checks the sources the table allows and refuses (409 `invalid_transition` with the
triggers the state does allow), its guards and its effects. Most tests bind an in-memory order
to the machine with fake facts, a recording session, outbox and credit client; a few go through
the HTTP API where the route's own rules (roles, problem bodies) are the point.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.orders import lifecycle, machine, terms
from services.orders.changes import lifecycle as change_lifecycle
from services.orders.clients import CreditProfile
from services.orders.errors import PreliminaryCheckFailed, StepInProgress
from services.orders.lifecycle import STATES, Facts, Opinion, fire
from services.orders.models import Order, OrderLine
from shared.errors import GuardFailed, InvalidTransition
from tests.fixtures import flows
from tests.fixtures.machine import NOW, World, an_order, reserved_credit

DEPARTMENTS = flows.DEPARTMENTS

# DESIGN.md §4, written out by hand: what each state allows, in the table's order.
ALLOWED = {
    "draft": ["update", "submit", "cancel"],
    "in_review": ["review", "approve", "credit-recheck", "cancel"],
    "approved": ["sign-contract", "cancel"],
    "rejected": ["revise", "cancel"],
    "contracted": ["start-fulfillment", "cancel"],
    "in_fulfillment": ["deliver"],
    "delivered": ["settle"],
    "invoiced": ["close"],
    "closed": [],
    "cancelled": [],
}


def sources(trigger: str) -> list[str]:
    return [s for s, allowed in ALLOWED.items() if machine.api_name(trigger) in allowed]


def refused(trigger: str) -> list[str]:
    return [s for s in STATES if s not in sources(trigger)]


# --- fakes (tests/fixtures/machine.py) ---------------------------------------------------


@pytest.fixture
def world() -> World:
    return World()


def opinions(*approving: str, **rejecting: str) -> dict[str, Opinion]:
    found = {d: Opinion(d, "approve", None) for d in approving}
    found.update({d: Opinion(d, "reject", why) for d, why in rejecting.items()})
    return found


def review_facts(ops: dict[str, Opinion], credit: dict[str, Any] | None = None) -> Facts:
    return Facts(required_departments=DEPARTMENTS, opinions=ops, credit=credit)


async def assert_refused(world: World, trigger: str, state: str, **kwargs: Any) -> None:
    order = an_order(state)
    with pytest.raises(InvalidTransition) as refusal:
        await fire(order, trigger, facts=Facts(), effects=world.effects(), **kwargs)
    body = refusal.value.body()
    assert body["code"] == "invalid_transition" and body["status"] == 409
    assert body["state"] == state and body["allowed"] == ALLOWED[state]
    assert order.state == state and order.version == 1
    assert world.session.added == [] and world.outbox.events == []


# --- the table as a whole -----------------------------------------------------------------


class TestTheTable:
    def test_every_state_allows_what_design_says(self):
        for state in STATES:
            assert lifecycle.allowed_triggers(state) == ALLOWED[state], state

    def test_states_and_final_states(self):
        described = lifecycle.describe()
        assert described["states"] == list(ALLOWED)
        assert described["initial"] == "draft"
        assert described["final_states"] == ["closed", "cancelled"]

    def test_rows_name_their_guards_events_and_endpoints(self):
        rows = lifecycle.describe()["transitions"]
        submit = next(r for r in rows if r["trigger"] == "submit")
        assert submit == {
            "trigger": "submit", "source": ["draft"], "dest": "in_review", "internal": False,
            "endpoint": "POST /v1/orders/{id}/submit",
            "guards": [{"name": "preliminary_check_passed",
                        "description": submit["guards"][0]["description"]},
                       {"name": "customer_not_blocked",
                        "description": submit["guards"][1]["description"]}],
            "remote": [{"service": "credit", "call": "POST /v1/reservations",
                        "description": submit["remote"][0]["description"]}],
            "effects": ["schedule_review", "keep_reservation"], "event": "order.submitted"}
        assert all(g["description"] for r in rows for g in r["guards"])
        events = {r["event"] for r in rows} - {None}
        assert events == {"order.submitted", "order.approved", "order.rejected", "order.contracted",
                          "order.fulfillment_started", "order.delivered", "order.invoiced",
                          "order.closed", "order.cancelled"}

    def test_mermaid_highlights_the_current_state(self):
        text = lifecycle.mermaid("in_review")
        assert text.startswith("stateDiagram-v2\n")
        assert "[*] --> draft" in text and "draft --> in_review: submit" in text
        assert "in_review --> approved: review / approve / credit-recheck" in text
        assert "classDef current" in text and text.rstrip().endswith("class in_review current")
        assert "class " not in lifecycle.mermaid(None).replace("classDef", "")

    async def test_unknown_trigger_is_an_invalid_transition(self, world):
        await assert_refused(world, "teleport", "draft")

    async def test_a_shared_machine_keeps_no_orders_bound(self, world):
        before = len(lifecycle.MACHINE.models)
        with pytest.raises(GuardFailed):
            await fire(an_order("in_review"), "approve", facts=review_facts({}), effects=world.effects())
        await fire(an_order("draft"), "cancel", facts=Facts(), effects=world.effects(), reason="x")
        assert len(lifecycle.MACHINE.models) == before


# --- one class per transition -------------------------------------------------------------


class TestUpdate:
    def test_only_drafts_are_updated(self):
        assert [s for s in STATES if lifecycle.allows(s, "update")] == ["draft"]

    @pytest.mark.parametrize("state", refused("update"))
    def test_refused_from(self, state):
        with pytest.raises(InvalidTransition) as refusal:
            lifecycle.ensure_allowed(an_order(state), "update")
        assert refusal.value.body()["allowed"] == ALLOWED[state]

    async def test_patch_of_a_submitted_order_is_refused(self, system):
        customer = await flows.make_customer(system)
        order = await flows.submitted_order(system, customer)
        r = await system.client("orders", "sales").patch(
            f"/v1/orders/{order['id']}", json={"delivery_place": "Dock 9"})
        assert r.status_code == 409
        assert r.json()["state"] == "in_review" and r.json()["allowed"] == ALLOWED["in_review"]


class TestSubmit:
    def submit_facts(self, **overrides: Any) -> Facts:
        values: dict[str, Any] = {"today": NOW.date(), "profile": CreditProfile(currency="CNY"),
                                  "required_departments": DEPARTMENTS}
        values.update(overrides)
        return Facts(**values)

    @pytest.mark.parametrize("state", refused("submit"))
    async def test_refused_from(self, world, state):
        await assert_refused(world, "submit", state)

    async def test_credit_order_enters_review_with_the_reservation_credit_gave(self, world):
        order = an_order()
        await fire(order, "submit", facts=self.submit_facts(credit=reserved_credit()),
                   effects=world.effects())
        assert order.state == "in_review" and order.version == 2
        # Mon 09:00 + 3 working days, with Wednesday a holiday → Friday 09:00
        assert order.review_due_at == datetime(2026, 1, 9, 9, 0, tzinfo=UTC)
        assert order.credit == {"status": "reserved", "reservation_id": "res-1", "reasons": []}
        [entry] = world.session.history
        assert (entry.from_state, entry.to_state, entry.trigger, entry.actor) == (
            "draft", "in_review", "submit", "tester")
        [event] = world.outbox.events
        assert event.type == "order.submitted" and event.subject == order.id
        assert event.data["review_due_at"] == "2026-01-09T09:00:00+00:00"
        assert event.data["credit"] == {"status": "reserved", "reservation_id": "res-1"}
        assert event.data["departments"] == list(DEPARTMENTS)

    async def test_prepaid_order_needs_no_credit(self, world):
        order = an_order(payment_method="prepaid", payment_terms_days=None)
        await fire(order, "submit", facts=self.submit_facts(), effects=world.effects())
        assert order.state == "in_review"
        assert order.credit["status"] == "not_required"

    async def test_without_credit_s_answer_the_reservation_is_pending(self, world):
        order = an_order()
        await fire(order, "submit", facts=self.submit_facts(), effects=world.effects())
        assert order.state == "in_review"
        assert order.credit == {"status": "pending", "reservation_id": None, "reasons": [],
                                "request_key": f"reserve:{order.id}:r1"}

    async def test_preliminary_check_lists_every_failure(self, world):
        order = an_order(
            delivery_date=None, delivery_place=None, payment_terms_days=None, currency="USD",
            lines=[OrderLine(position=1, name="a", quantity=Decimal("0"), unit_price_minor=5,
                             total_minor=0),
                   OrderLine(position=2, name="b", quantity=Decimal("1"), unit_price_minor=-1,
                             total_minor=-1)])
        with pytest.raises(PreliminaryCheckFailed) as refusal:
            await fire(order, "submit", facts=self.submit_facts(), effects=world.effects())
        assert refusal.value.status == 422
        assert [e["field"] for e in refusal.value.errors] == [
            "lines[0].quantity", "lines[1].unit_price_minor", "delivery_date", "delivery_place",
            "payment_terms_days", "currency"]
        assert order.state == "draft" and order.version == 1 and order.review_due_at is None
        assert world.outbox.events == []

    async def test_preliminary_check_of_an_empty_draft(self, world):
        order = an_order(payment_method=None, delivery_date=None, delivery_place=None, lines=[])
        with pytest.raises(PreliminaryCheckFailed) as refusal:
            await fire(order, "submit", facts=self.submit_facts(profile=None, customer_known=False),
                       effects=world.effects())
        assert [e["field"] for e in refusal.value.errors] == [
            "customer_id", "lines", "delivery_date", "delivery_place", "payment_method"]

    async def test_delivery_date_in_the_past_and_prepaid_only_policy(self, world):
        order = an_order(delivery_date=date(2026, 1, 2))
        with pytest.raises(PreliminaryCheckFailed) as refusal:
            await fire(order, "submit", effects=world.effects(), facts=self.submit_facts(
                profile=CreditProfile(currency="CNY", policy="prepaid_only")))
        assert refusal.value.errors == [
            {"field": "delivery_date", "message": "must be 2026-01-05 or later"},
            {"field": "payment_method", "message": "the customer's credit policy is prepaid_only"}]

    async def test_blocked_customer_is_refused(self, world):
        order = an_order()
        with pytest.raises(GuardFailed) as refusal:
            await fire(order, "submit", effects=world.effects(), facts=self.submit_facts(
                profile=CreditProfile(currency="CNY", status="blocked")))
        body = refusal.value.body()
        assert body["guard"] == "customer_not_blocked" and "blocked" in body["reason"]
        assert order.state == "draft"

    async def test_incomplete_order_of_a_blocked_customer_gets_the_field_list_first(self, world):
        order = an_order(delivery_place=None)
        with pytest.raises(PreliminaryCheckFailed):
            await fire(order, "submit", effects=world.effects(), facts=self.submit_facts(
                profile=CreditProfile(currency="CNY", status="blocked")))


class TestReview:
    def bind(self, **credit: Any) -> Order:
        return an_order("in_review", credit=credit or reserved_credit())

    @pytest.mark.parametrize("state", refused("review"))
    async def test_refused_from(self, world, state):
        await assert_refused(world, "review", state, opinion=Opinion("sales", "approve"))

    async def test_an_approval_is_stored_and_the_order_waits(self, world):
        order = self.bind()
        row = await fire(order, "review", facts=review_facts(opinions("sales")),
                         effects=world.effects("sales"), opinion=Opinion("sales", "approve", "ok"))
        assert row.dest is None and order.state == "in_review" and order.version == 2
        assert len(world.session.executed) == 1  # the opinion's upsert
        [entry] = world.session.history
        assert (entry.from_state, entry.to_state, entry.reason) == ("in_review", "in_review",
                                                                   "sales approve: ok")
        assert world.outbox.events == []

    async def test_the_last_approval_with_credit_reserved_approves(self, world):
        order = self.bind()
        await fire(order, "review", facts=review_facts(opinions(*DEPARTMENTS)),
                   effects=world.effects("finance"), opinion=Opinion("finance", "approve"))
        assert order.state == "approved"
        assert world.outbox.types == ["order.approved"]
        assert world.outbox.events[0].data["credit"]["status"] == "reserved"

    async def test_all_approved_but_credit_pending_stays_in_review(self, world):
        order = self.bind(status="pending", reservation_id=None, reasons=[])
        row = await fire(order, "review", facts=review_facts(opinions(*DEPARTMENTS)),
                         effects=world.effects(), opinion=Opinion("finance", "approve"))
        assert row.dest is None and order.state == "in_review" and world.outbox.events == []

    async def test_any_rejection_rejects_with_every_reason(self, world):
        order = self.bind()
        ops = opinions("sales", "production", technical="tolerance ±0.05 mm is not achievable",
                       quality="Class 3 needed")
        await fire(order, "review", facts=review_facts(ops), effects=world.effects("quality"),
                   opinion=Opinion("quality", "reject", "Class 3 needed"))
        assert order.state == "rejected"
        [event] = world.outbox.events
        assert event.type == "order.rejected"
        assert event.data["reasons"] == [
            {"source": "technical", "reason": "tolerance ±0.05 mm is not achievable"},
            {"source": "quality", "reason": "Class 3 needed"}]
        assert world.session.history[0].reason == (
            "technical: tolerance ±0.05 mm is not achievable; quality: Class 3 needed")

    async def test_a_rejection_wins_over_approvals(self, world):
        order = self.bind()
        ops = opinions("sales", "production", "technical", "quality", finance="cash flow risk")
        await fire(order, "review", facts=review_facts(ops), effects=world.effects(),
                   opinion=Opinion("finance", "reject", "cash flow risk"))
        assert order.state == "rejected"


class TestApprove:
    @pytest.mark.parametrize("state", refused("approve"))
    async def test_refused_from(self, world, state):
        await assert_refused(world, "approve", state)

    @pytest.mark.parametrize("credit", [reserved_credit(),
                                        {"status": "not_required", "reservation_id": None, "reasons": []}])
    async def test_approves_when_everyone_approved_and_credit_is_settled(self, world, credit):
        order = an_order("in_review", credit=credit)
        await fire(order, "approve", facts=review_facts(opinions(*DEPARTMENTS)), effects=world.effects())
        assert order.state == "approved" and world.outbox.types == ["order.approved"]

    async def test_missing_departments_are_named(self, world):
        order = an_order("in_review", credit=reserved_credit())
        with pytest.raises(GuardFailed) as refusal:
            await fire(order, "approve", facts=review_facts(opinions("sales", "finance")),
                       effects=world.effects())
        body = refusal.value.body()
        assert body["guard"] == "all_departments_approved"
        assert body["reason"] == "Waiting for the approval of: production, technical, quality."
        assert order.state == "in_review" and order.version == 1 and world.session.added == []

    @pytest.mark.parametrize(("credit", "words"), [
        ({"status": "pending", "reservation_id": None, "reasons": []},
         "Credit is pending: the credit service has not answered yet"),
        ({"status": "requires_guarantee", "reservation_id": "r", "reasons": ["policy needs a guarantee"]},
         "Credit requires a guarantee: policy needs a guarantee"),
        ({"status": "rejected", "reservation_id": "r", "reasons": ["short by 4,000.00 CNY"]},
         "Credit refused the reservation: short by 4,000.00 CNY"),
    ])
    async def test_credit_not_reserved_is_the_reason(self, world, credit, words):
        order = an_order("in_review", credit=credit)
        with pytest.raises(GuardFailed) as refusal:
            await fire(order, "approve", facts=review_facts(opinions(*DEPARTMENTS)),
                       effects=world.effects())
        assert refusal.value.body()["guard"] == "credit_reserved"
        assert refusal.value.body()["reason"].startswith(words)

    async def test_a_rejection_on_file_is_not_an_approval(self, world):
        order = an_order("in_review", credit=reserved_credit())
        with pytest.raises(GuardFailed) as refusal:
            await fire(order, "approve", effects=world.effects(), facts=review_facts(
                opinions("sales", "production", "technical", "quality", finance="no")))
        assert refusal.value.body()["reason"] == "Waiting for the approval of: finance."


class TestCreditRecheck:
    @pytest.mark.parametrize("state", refused("credit_recheck"))
    async def test_refused_from(self, world, state):
        await assert_refused(world, "credit_recheck", state)

    async def test_refusal_rejects_with_credit_reasons(self, world):
        order = an_order("in_review", credit={"status": "requires_guarantee", "reservation_id": "r1",
                                              "reasons": ["guarantee needed"]})
        answer = {"status": "rejected", "reservation_id": "r2",
                  "reasons": ["available 600,000 CNY, requested 1,000,000 CNY"]}
        await fire(order, "credit_recheck", facts=review_facts(opinions(*DEPARTMENTS), answer),
                   effects=world.effects())
        assert order.state == "rejected" and order.credit == answer
        assert world.outbox.events[0].data["reasons"] == [
            {"source": "credit", "reason": "available 600,000 CNY, requested 1,000,000 CNY"}]

    async def test_reserved_with_every_approval_approves(self, world):
        order = an_order("in_review", credit={"status": "requires_guarantee", "reservation_id": None,
                                              "reasons": []})
        await fire(order, "credit_recheck", facts=review_facts(opinions(*DEPARTMENTS), reserved_credit("r3")),
                   effects=world.effects())
        assert order.state == "approved" and order.credit["reservation_id"] == "r3"

    @pytest.mark.parametrize("answer", [
        reserved_credit("r4"),  # departments still missing
        {"status": "requires_guarantee", "reservation_id": "r5", "reasons": ["guarantee needed"]},
    ])
    async def test_otherwise_the_order_stays_in_review_with_the_new_answer(self, world, answer):
        order = an_order("in_review", credit={"status": "pending", "reservation_id": None, "reasons": []})
        row = await fire(order, "credit_recheck", facts=review_facts(opinions("sales"), answer),
                         effects=world.effects())
        assert row.dest is None and order.state == "in_review" and order.credit == answer
        assert world.session.history[0].trigger == "credit-recheck"


class TestRevise:
    @pytest.mark.parametrize("state", refused("revise"))
    async def test_refused_from(self, world, state):
        await assert_refused(world, "revise", state)

    async def test_back_to_draft_as_the_next_revision_with_fresh_credit(self, world):
        order = an_order("rejected", credit=reserved_credit("res-9"),
                         review_due_at=NOW + timedelta(days=3), review_overdue_notified_at=NOW)
        released = {**reserved_credit("res-9"), "status": "released"}
        await fire(order, "revise", facts=Facts(credit=released), effects=world.effects(),
                   reason="Class 3 now")
        assert order.state == "draft" and order.revision == 2
        assert order.credit == {"status": "pending", "reservation_id": None, "reasons": []}
        assert order.review_due_at is None and order.review_overdue_notified_at is None
        [entry] = world.session.history
        assert (entry.revision, entry.reason) == (2, "Class 3 now")
        assert world.outbox.events == []

    async def test_nothing_to_release(self, world):
        order = an_order("rejected", credit={"status": "rejected", "reservation_id": "declined-1",
                                             "reasons": ["over limit"]})
        await fire(order, "revise", facts=Facts(), effects=world.effects())
        assert order.state == "draft"



class TestSignContract:
    @pytest.mark.parametrize("state", refused("sign_contract"))
    async def test_refused_from(self, world, state):
        await assert_refused(world, "sign_contract", state, contract_number="C", signed_at=NOW)

    async def test_contract_is_recorded_and_the_reservation_kept(self, world):
        order = an_order("approved", credit=reserved_credit())
        await fire(order, "sign_contract", facts=Facts(), effects=world.effects(),
                   contract_number="CT-2026-0042", signed_at=NOW)
        assert order.state == "contracted"
        assert (order.contract_number, order.contract_signed_at) == ("CT-2026-0042", NOW)
        assert order.credit == reserved_credit()
        [event] = world.outbox.events
        assert event.type == "order.contracted" and event.data["contract_number"] == "CT-2026-0042"


class TestStartFulfillment:
    @pytest.mark.parametrize("state", refused("start_fulfillment"))
    async def test_refused_from(self, world, state):
        await assert_refused(world, "start_fulfillment", state)

    async def test_credit_order_starts(self, world):
        order = an_order("contracted")
        await fire(order, "start_fulfillment", facts=Facts(), effects=world.effects())
        assert order.state == "in_fulfillment"
        assert world.outbox.types == ["order.fulfillment_started"]

    @pytest.mark.parametrize(("paid", "reason"), [
        (None, "Payment of the prepaid order has not been checked with ledger."),
        (False, "Ledger does not show the prepaid order as paid.")])
    async def test_prepaid_order_waits_for_payment(self, world, paid, reason):
        order = an_order("contracted", payment_method="prepaid")
        with pytest.raises(GuardFailed) as refusal:
            await fire(order, "start_fulfillment", facts=Facts(ledger_paid=paid), effects=world.effects())
        assert refusal.value.body()["guard"] == "prepaid_received"
        assert refusal.value.body()["reason"] == reason

    async def test_paid_prepaid_order_starts(self, world):
        order = an_order("contracted", payment_method="prepaid")
        await fire(order, "start_fulfillment", facts=Facts(ledger_paid=True), effects=world.effects())
        assert order.state == "in_fulfillment"


def delivered(quantity: str) -> list[OrderLine]:
    return [OrderLine(position=1, name="a", quantity=Decimal("10"), unit_price_minor=1,
                      total_minor=10, delivered_quantity=Decimal(quantity))]


class TestDeliver:
    @pytest.mark.parametrize("state", refused("deliver"))
    async def test_refused_from(self, world, state):
        await assert_refused(world, "deliver", state)

    async def test_partial_delivery_stays_in_fulfillment(self, world):
        order = an_order("in_fulfillment", lines=delivered("4"))
        row = await fire(order, "deliver", facts=Facts(open_change_requests=()), effects=world.effects())
        assert row.dest is None and order.state == "in_fulfillment"

    async def test_everything_delivered(self, world):
        order = an_order("in_fulfillment", lines=delivered("10"))
        await fire(order, "deliver", facts=Facts(open_change_requests=()), effects=world.effects())
        assert order.state == "delivered" and world.outbox.types == ["order.delivered"]

    async def test_full_delivery_waits_for_open_change_requests(self, world):
        order = an_order("in_fulfillment", lines=delivered("10"))
        with pytest.raises(GuardFailed) as refusal:
            await fire(order, "deliver", facts=Facts(open_change_requests=["CR-000007"]),
                       effects=world.effects())
        assert refusal.value.body()["guard"] == "open_change_request"


def delivered_lines(*quantities: str) -> list[OrderLine]:
    """Lines of 10 at 1 234 each, delivered as given, the last with 3 returned."""
    return [OrderLine(position=i + 1, name="a", quantity=Decimal("10"), unit_price_minor=1_234,
                      total_minor=12_340, delivered_quantity=Decimal(q),
                      returned_quantity=Decimal("3") if i == len(quantities) - 1 else Decimal(0))
            for i, q in enumerate(quantities)]


class TestSettle:
    @pytest.mark.parametrize("state", refused("settle"))
    async def test_refused_from(self, world, state):
        await assert_refused(world, "settle", state)

    async def test_settles_with_the_invoice_and_the_conversion_the_step_got(self, world):
        order = an_order("delivered", credit=reserved_credit("res-7"),
                         lines=delivered_lines("10", "5"))
        assert terms.settlement_amount(order) == 1_234 * (10 + 5 - 3)
        await fire(order, "settle", facts=Facts(open_change_requests=(), invoice_id="inv-1",
                                                reservation_converted=True),
                   effects=world.effects(), due_date=date(2026, 3, 6))
        assert order.state == "invoiced" and world.outbox.types == ["order.invoiced"]
        assert order.invoice_id == "inv-1" and order.credit["status"] == "converted"
        data = world.outbox.events[0].data
        assert (data["invoice_id"], data["amount_minor"], data["due_date"]) == (
            "inv-1", 14_808, "2026-03-06")

    async def test_a_prepaid_order_has_no_reservation_to_convert(self, world):
        order = an_order("delivered", payment_method="prepaid", invoice_id="inv-0",
                         credit={"status": "not_required", "reservation_id": None, "reasons": []})
        await fire(order, "settle", facts=Facts(open_change_requests=()), effects=world.effects(),
                   due_date=date(2026, 3, 6))
        assert order.state == "invoiced" and order.invoice_id == "inv-0"

    @pytest.mark.parametrize(("facts", "guard"), [
        (Facts(open_change_requests=(), reservation_converted=True), "invoice_issued"),
        (Facts(open_change_requests=(), invoice_id="inv-1"), "reservation_converted"),
    ])
    async def test_without_the_remote_answers_it_does_not_fire(self, world, facts, guard):
        order = an_order("delivered", credit=reserved_credit())
        with pytest.raises(GuardFailed) as refusal:
            await fire(order, "settle", facts=facts, effects=world.effects(),
                       due_date=date(2026, 3, 6))
        assert refusal.value.body()["guard"] == guard
        assert order.state == "delivered" and world.outbox.events == []

    def test_check_looks_at_the_local_guards_only(self):
        order = an_order("delivered", credit=reserved_credit())
        assert lifecycle.check(order, "settle", Facts(open_change_requests=())).dest == "invoiced"
        with pytest.raises(GuardFailed) as refusal:
            lifecycle.check(order, "settle", Facts(open_change_requests=["CR-000001"]))
        assert refusal.value.body()["guard"] == "open_change_request"

    def test_a_pending_step_of_another_trigger_refuses_it(self):
        order = an_order("delivered", pending_step={
            "kind": "return", "service": "ledger", "started_at": NOW.isoformat(), "attempts": 2})
        with pytest.raises(StepInProgress) as refusal:
            lifecycle.check(order, "settle", Facts(open_change_requests=()))
        body = refusal.value.body()
        assert (body["status"], body["code"], body["step"]["kind"]) == (409, "conflict", "return")

    async def test_unchecked_change_requests_fail_closed(self, world):
        with pytest.raises(GuardFailed) as refusal:
            await fire(an_order("delivered"), "settle", facts=Facts(), effects=world.effects())
        assert refusal.value.body()["reason"] == "Open change requests have not been checked."


class TestClose:
    @pytest.mark.parametrize("state", refused("close"))
    async def test_refused_from(self, world, state):
        await assert_refused(world, "close", state)

    async def test_closes_when_paid_and_nothing_is_open(self, world):
        order = an_order("invoiced")
        await fire(order, "close", effects=world.effects(), facts=Facts(
            outstanding_minor=0, open_exceptions=0, open_change_requests=()))
        assert order.state == "closed" and world.outbox.types == ["order.closed"]

    @pytest.mark.parametrize(("facts", "guard", "reason"), [
        (Facts(outstanding_minor=50_000, open_exceptions=0, open_change_requests=()),
         "nothing_outstanding", "500.00 CNY is still outstanding."),
        (Facts(outstanding_minor=0, open_exceptions=2, open_change_requests=()),
         "no_open_exception", "2 exception(s) are open."),
        (Facts(outstanding_minor=0, open_exceptions=0, open_change_requests=["CR-000007"]),
         "open_change_request",
         "Change request CR-000007 is open on order SO-000001: apply, withdraw or reject it first."),
        (Facts(), "nothing_outstanding", "The order's balance has not been checked with ledger."),
    ])
    async def test_refusals(self, world, facts, guard, reason):
        order = an_order("invoiced")
        with pytest.raises(GuardFailed) as refusal:
            await fire(order, "close", facts=facts, effects=world.effects())
        assert (refusal.value.body()["guard"], refusal.value.body()["reason"]) == (guard, reason)
        assert order.state == "invoiced"


    async def test_outstanding_is_quoted_in_the_currency_s_own_decimals(self, world):
        order = an_order("invoiced", currency="JPY")
        with pytest.raises(GuardFailed) as refusal:
            await fire(order, "close", effects=world.effects(), facts=Facts(
                outstanding_minor=50_000, open_exceptions=0, open_change_requests=()))
        assert refusal.value.body()["reason"] == "50,000 JPY is still outstanding."


class TestCancel:
    @pytest.mark.parametrize("state", refused("cancel"))
    async def test_refused_from(self, world, state):
        await assert_refused(world, "cancel", state, reason="x")

    @pytest.mark.parametrize("state", sources("cancel"))
    async def test_cancels_keeping_the_released_reservation(self, world, state):
        order = an_order(state, credit=reserved_credit("res-7"))
        released = {**reserved_credit("res-7"), "status": "released"}
        await fire(order, "cancel", facts=Facts(credit=released), effects=world.effects(),
                   reason="customer withdrew")
        assert order.state == "cancelled" and order.credit["status"] == "released"
        [event] = world.outbox.events
        assert event.type == "order.cancelled"
        assert event.data["reason"] == "customer withdrew" and event.data["reservation_released"]
        assert world.session.history[0].reason == "customer withdrew"

    async def test_an_order_invoiced_at_contract_is_cancelled_once_ledger_was_asked(self, world):
        order = an_order("contracted", payment_method="prepaid")
        order.invoice_id = "inv-1"
        for facts in (Facts(), Facts(invoice_paid_minor=0),  # what to credit was not gathered
                      Facts(outstanding_minor=185_000)):
            with pytest.raises(GuardFailed) as refused:
                await fire(order, "cancel", facts=facts, effects=world.effects(), reason="x")
            body = refused.value.body()
            assert (body["guard"], body["reason"]) == (
                "invoice_checked", "The invoice of the order has not been checked with ledger.")
            assert order.state == "contracted"
        # paid or not: the credit note gives what was paid back to unapplied cash (steps)
        await fire(order, "cancel", facts=Facts(invoice_paid_minor=100_000, outstanding_minor=85_000),
                   effects=world.effects(), reason="customer withdrew")
        assert order.state == "cancelled"

    async def test_a_draft_has_nothing_to_release(self, world):
        order = an_order("draft")
        await fire(order, "cancel", facts=Facts(credit=order.credit), effects=world.effects(),
                   reason="duplicate")
        assert order.state == "cancelled" and order.credit["status"] == "pending"


# --- the same rules through the API -------------------------------------------------------


class TestOverTheApi:
    async def test_state_machine_and_diagram(self, system):
        customer = await flows.make_customer(system)
        order = await flows.create_order(system, customer)
        machine = await system.client("orders", "auditor").get("/v1/state-machine")
        assert machine.status_code == 200
        assert machine.json() == {**lifecycle.describe(),
                                  "change_request_machine": change_lifecycle.describe()}
        diagram = await system.client("orders", "alice").get(f"/v1/orders/{order['id']}/diagram")
        assert diagram.status_code == 200
        assert diagram.json()["state"] == "draft"
        assert diagram.json()["mermaid"] == lifecycle.mermaid("draft")
        hidden = await system.client("orders", "bob").get(f"/v1/orders/{order['id']}/diagram")
        assert hidden.status_code == 404

    async def test_invalid_transition_is_a_409_problem(self, system):
        customer = await flows.make_customer(system)
        order = await flows.create_order(system, customer)
        r = await system.client("orders", "sales").post(
            f"/v1/orders/{order['id']}/contract",
            json={"contract_number": "CT-1", "signed_at": "2026-01-05T08:00:00+00:00"})
        assert r.status_code == 409
        assert r.headers["content-type"].startswith("application/problem+json")
        body = r.json()
        assert body["code"] == "invalid_transition"
        assert body["state"] == "draft" and body["allowed"] == ALLOWED["draft"]

    async def test_approve_refusal_is_a_guard_failed_problem(self, system):
        customer = await flows.make_customer(system)
        order = await flows.submitted_order(system, customer)
        await flows.review(system, order["id"], "sales")
        r = await system.client("orders", "sales").post(f"/v1/orders/{order['id']}/approve")
        assert r.status_code == 409
        body = r.json()
        assert body["code"] == "guard_failed" and body["guard"] == "all_departments_approved"
        assert body["reason"] == "Waiting for the approval of: production, technical, quality, finance."

    async def test_if_match_guards_transitions(self, system):
        customer = await flows.make_customer(system)
        order = await flows.create_order(system, customer)
        orders = system.client("orders", "sales")
        stale = await orders.post(f"/v1/orders/{order['id']}/submit", headers={"If-Match": '"7"'})
        assert stale.status_code == 412 and stale.json()["code"] == "version_conflict"
        ok = await orders.post(f"/v1/orders/{order['id']}/submit", headers={"If-Match": '"1"'})
        assert ok.status_code == 200 and ok.headers["etag"] == '"2"'

    @pytest.mark.parametrize(("body", "field"), [
        ({"department": "marketing", "decision": "approve"}, "department"),
        ({"department": "production", "decision": "maybe"}, "decision"),
        ({"department": "production", "decision": "reject"}, "comment"),
        ({"department": "production", "decision": "reject", "comment": "x" * 2001}, "comment"),
        ({"department": "production", "decision": "approve", "mood": "happy"}, "mood"),
    ])
    async def test_bad_reviews_are_422(self, system, body, field):
        customer = await flows.make_customer(system)
        order = await flows.submitted_order(system, customer)
        r = await system.client("orders", "admin").post(f"/v1/orders/{order['id']}/reviews", json=body)
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == [field]

    async def test_reviewer_needs_the_departments_role(self, system):
        customer = await flows.make_customer(system)
        order = await flows.submitted_order(system, customer)
        wrong = await flows.review(system, order["id"], "quality", principal="production")
        assert wrong.status_code == 403 and wrong.json()["code"] == "forbidden"
        for principal in ("auditor", "credit_manager", "service"):
            r = await flows.review(system, order["id"], "quality", principal=principal)
            assert r.status_code == 403, principal
        admin = await flows.review(system, order["id"], "quality", principal="admin")
        assert admin.status_code == 200
        assert admin.json()["reviews"][0]["by"] == "admin"

    async def test_a_later_opinion_replaces_the_earlier_one(self, system):
        customer = await flows.make_customer(system)
        order = await flows.submitted_order(system, customer)
        await flows.review(system, order["id"], "production", comment="capacity ok")
        system.clock.advance(hours=1)
        r = await flows.review(system, order["id"], "production", comment="capacity ok, week 9")
        assert r.status_code == 200
        [opinion] = r.json()["reviews"]
        assert opinion == {"department": "production", "decision": "approve",
                           "comment": "capacity ok, week 9", "by": "production",
                           "at": "2026-01-05T10:00:00Z"}

    async def test_configured_departments_decide(self, database_urls, keys_file, keys, clock, tmp_path):
        from tests.harness import running_system

        overrides = {"orders": {"review_departments": ["quality", "finance"]}}
        async with running_system(database_urls=database_urls, keys_file=keys_file, keys=keys,
                                  clock=clock, data_dir=tmp_path, **overrides) as system:
            customer = await flows.make_customer(system)
            order = await flows.submitted_order(system, customer)
            production = await flows.review(system, order["id"], "production")
            assert production.status_code == 422
            await flows.review(system, order["id"], "quality")
            r = await flows.review(system, order["id"], "finance")
            assert r.json()["state"] == "approved"

    async def test_contract_in_the_future_is_refused(self, system):
        customer = await flows.make_customer(system)
        order = await flows.approved_order(system, customer)
        r = await system.client("orders", "sales").post(
            f"/v1/orders/{order['id']}/contract",
            json={"contract_number": "CT-1", "signed_at": "2026-01-06T09:00:00+00:00"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "signed_at"
        naive = await system.client("orders", "sales").post(
            f"/v1/orders/{order['id']}/contract",
            json={"contract_number": "CT-1", "signed_at": "2026-01-05T08:00:00"})
        assert naive.status_code == 422

    async def test_cancel_needs_a_reason(self, system):
        customer = await flows.make_customer(system)
        order = await flows.create_order(system, customer)
        for body in ({}, {"reason": ""}, {"reason": "x" * 1001}):
            r = await system.client("orders", "sales").post(f"/v1/orders/{order['id']}/cancel", json=body)
            assert r.status_code == 422, body
            assert r.json()["errors"][0]["field"] == "reason"

    async def test_history_pages(self, system):
        customer = await flows.make_customer(system)
        order = await flows.submitted_order(system, customer)
        await flows.approve_by_all(system, order["id"])
        reader = system.client("orders", "auditor")
        seen, cursor = [], None
        while True:
            page = (await reader.get(f"/v1/orders/{order['id']}/history",
                                     params={"limit": 2} | ({"cursor": cursor} if cursor else {}))).json()
            seen += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert [h["trigger"] for h in seen] == ["submit"] + ["review"] * 5
        assert [h["to"] for h in seen][-1] == "approved"
        assert len({h["seq"] for h in seen}) == 6
        bad = await reader.get(f"/v1/orders/{order['id']}/history", params={"cursor": "zzz"})
        assert bad.status_code == 422
