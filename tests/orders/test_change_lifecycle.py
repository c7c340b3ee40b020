"""The change-request machine, one test class per transition (and one for the change plan).

Change requests are bound to the machine in memory with fake facts, a recording session,
outbox and credit client — the same fakes as the order machine's tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from services.orders.changes import lifecycle as change_lifecycle
from services.orders.changes.lifecycle import ChangeEffects, ChangeFacts, fire
from services.orders.changes.plan import plan_change
from services.orders.lifecycle import Opinion
from services.orders.models import OrderChangeRequest, OrderLine, OrderRevision
from services.orders.schemas import ChangeSet
from shared.errors import DependencyUnavailable, GuardFailed, InvalidTransition
from tests.fixtures import flows
from tests.fixtures.fakes import FakeCredit
from tests.fixtures.machine import NOW, World, an_order, reserved_credit

DEPARTMENTS = flows.DEPARTMENTS
TODAY = date(2026, 1, 5)
ALLOWED = {"in_review": ["review", "withdraw"], "approved": ["withdraw", "apply"],
           "applied": [], "rejected": [], "withdrawn": []}


@dataclass
class CreditWorld(World):
    credit: FakeCredit = field(default_factory=FakeCredit)


@pytest.fixture
def world() -> CreditWorld:
    return CreditWorld()


def effects(world: World, actor: str = "tester") -> ChangeEffects:
    return ChangeEffects(session=world.session, outbox=world.outbox, clock=world.clock,  # type: ignore[arg-type]
                         actor=actor)


def a_change(state: str = "in_review", changes: dict[str, Any] | None = None) -> OrderChangeRequest:
    return OrderChangeRequest(number="CR-000001", order_id="o-1", base_revision=1, state=state,
                              changes=changes or {}, reason="more boards", requested_by="sales",
                              requested_at=NOW, updated_at=NOW)


def lines(*delivered: str) -> list[OrderLine]:
    return [OrderLine(position=i + 1, name=f"board {i + 1}", quantity=Decimal("100"),
                      unit_price_minor=1850, total_minor=185_000, delivered_quantity=Decimal(d))
            for i, d in enumerate(delivered)]


def contracted(*delivered: str, **overrides: Any) -> Any:
    ls = lines(*(delivered or ("0",)))
    return an_order("contracted", lines=ls, total_minor=sum(x.total_minor for x in ls),
                    credit=reserved_credit(), **overrides)


def opinions(*approving: str, **rejecting: str) -> dict[str, Opinion]:
    found = {d: Opinion(d, "approve", "ok") for d in approving}
    found.update({d: Opinion(d, "reject", why) for d, why in rejecting.items()})
    return found


def plan_for(order: Any, **changes: Any):
    return plan_change(order, ChangeSet.model_validate(changes), today=TODAY)


async def assert_refused(world: World, trigger: str, state: str, **kwargs: Any) -> None:
    cr, order = a_change(state), contracted()
    with pytest.raises(InvalidTransition) as refusal:
        await fire(cr, order, trigger, facts=ChangeFacts(), effects=effects(world), **kwargs)
    body = refusal.value.body()
    assert (body["state"], body["allowed"]) == (state, ALLOWED[state])
    assert cr.state == state and cr.version == 1
    assert world.session.added == [] and world.outbox.events == []


class TestTheTable:
    def test_what_each_state_allows(self):
        assert {s: change_lifecycle.allowed_triggers(s) for s in change_lifecycle.STATES} == ALLOWED

    def test_final_states_and_description(self):
        described = change_lifecycle.describe()
        assert described["final_states"] == ["applied", "rejected", "withdrawn"]
        assert {t["event"] for t in described["transitions"]} == {
            "order.change_request_rejected", "order.change_request_approved", None,
            "order.change_request_withdrawn", "order.changed"}

    async def test_a_shared_machine_keeps_no_change_requests_bound(self, world):
        await fire(a_change(), contracted(), "review", facts=ChangeFacts(
            required_departments=DEPARTMENTS, opinions=opinions("sales")),
            opinion=Opinion("sales", "approve", None), effects=effects(world))
        assert change_lifecycle.MACHINE.models == []


class TestPlan:
    """What `POST …/change-requests` checks: as strict as a new order, every problem at once."""

    def test_differences_of_a_line_and_a_term(self):
        order = contracted("0")
        line = order.lines[0]
        plan = plan_for(order, lines=[{"line_id": line.id, "quantity": "150", "unit_price_minor": 1900}],
                        delivery_place="Dock 7")
        assert plan.errors == [] and plan.total_minor == 285_000
        assert plan.differences == [
            {"field": "delivery_place", "from": "Warehouse 3", "to": "Dock 7"},
            {"line_id": line.id, "position": 1, "field": "quantity", "from": "100.000", "to": "150.000"},
            {"line_id": line.id, "position": 1, "field": "unit_price_minor", "from": 1850, "to": 1900},
            {"line_id": line.id, "position": 1, "field": "total_minor", "from": 185_000, "to": 285_000},
            {"field": "total_minor", "from": 185_000, "to": 285_000}]

    def test_added_lines_come_after_every_position(self):
        order = contracted("0", "0")
        plan = plan_for(order, remove_lines=[order.lines[1].id],
                        add_lines=[{"name": "stencil", "quantity": "1", "unit_price_minor": 500}])
        assert plan.removals == [order.lines[1].id] and plan.additions[0]["position"] == 3
        assert plan.total_minor == 185_000 + 500

    def test_deliveries_bound_what_can_change(self):
        order = contracted("40", "5")
        plan = plan_for(order, lines=[{"line_id": order.lines[0].id, "quantity": "39.999"}],
                        remove_lines=[order.lines[1].id])
        assert plan.errors == [
            {"field": "changes.remove_lines[0]",
             "message": "line 2 was delivered (5.000); it cannot be removed"},
            {"field": "changes.lines[0].quantity",
             "message": "must be at least the 40.000 already delivered"}]

    def test_down_to_exactly_what_was_delivered_is_fine(self):
        order = contracted("40")
        assert plan_for(order, lines=[{"line_id": order.lines[0].id, "quantity": "40"}]).errors == []

    def test_unknown_twice_and_both_changed_and_removed(self):
        order = contracted("0", "0")
        a, b = order.lines[0].id, order.lines[1].id
        plan = plan_for(order, lines=[{"line_id": "ghost", "quantity": "1"},
                                      {"line_id": a, "quantity": "2"}, {"line_id": a, "quantity": "3"},
                                      {"line_id": b, "quantity": "4"}],
                        remove_lines=[b, b])
        assert plan.errors == [
            {"field": "changes.remove_lines[1]", "message": "listed twice"},
            {"field": "changes.lines[0].line_id", "message": "not a line of this order"},
            {"field": "changes.lines[2].line_id", "message": "listed twice"},
            {"field": "changes.lines[3].line_id", "message": "also listed in remove_lines"}]

    def test_the_preliminary_check_speaks_in_change_paths(self):
        order = contracted("0")
        plan = plan_for(order, remove_lines=[order.lines[0].id], delivery_date="2026-01-02")
        assert plan.errors == [{"field": "changes.delivery_date", "message": "must be 2026-01-05 or later"}]
        plan = plan_for(order, remove_lines=[order.lines[0].id])
        assert plan.errors == [{"field": "changes.remove_lines", "message": "at least one line is required"}]

    def test_no_date_check_at_apply(self):
        order = contracted("0")
        plan = plan_change(order, ChangeSet.model_validate({"delivery_date": "2026-01-02"}), today=None)
        assert plan.errors == []

    def test_nothing_to_change(self):
        order = contracted("0")
        for changes in ({}, {"delivery_place": "Warehouse 3"},
                        {"lines": [{"line_id": order.lines[0].id, "quantity": "100"}]}):
            assert plan_for(order, **changes).errors == [{
                "field": "changes",
                "message": "changes nothing: every value given equals the order's current terms"}]

    def test_absurd_amounts(self):
        order = contracted("0")
        plan = plan_for(order, lines=[{"line_id": order.lines[0].id,
                                       "quantity": "999999999999", "unit_price_minor": 10**12}])
        assert plan.errors[0]["field"] == "changes.lines[0]"
        assert "exceeds" in plan.errors[0]["message"]

    def test_payment_method_is_refused(self):
        order = contracted("0")
        [error] = plan_for(order, payment_method="prepaid").errors
        assert error["field"] == "changes.payment_method"


class TestReview:
    @pytest.mark.parametrize("state", ["approved", "applied", "rejected", "withdrawn"])
    async def test_refused_from(self, world, state):
        await assert_refused(world, "review", state, opinion=Opinion("sales", "approve", None))

    async def test_an_approval_is_stored_and_the_change_waits(self, world):
        cr, order = a_change(), contracted()
        row = await fire(cr, order, "review", facts=ChangeFacts(
            required_departments=DEPARTMENTS, opinions=opinions("sales")),
            opinion=Opinion("sales", "approve", "ok"), effects=effects(world, "sales"))
        assert row.dest is None and cr.state == "in_review" and cr.version == 2
        assert len(world.session.executed) == 1 and world.outbox.events == []
        [step] = world.session.history
        assert (step.trigger, step.change_request_from, step.change_request_to) == (
            "change-request-review", "in_review", "in_review")
        assert (step.from_state, step.to_state, step.actor) == ("contracted", "contracted", "sales")
        assert step.reason == "CR-000001 sales approve: ok"

    async def test_the_last_approval_approves(self, world):
        cr, order = a_change(), contracted()
        await fire(cr, order, "review", facts=ChangeFacts(
            required_departments=DEPARTMENTS, opinions=opinions(*DEPARTMENTS)),
            opinion=Opinion("finance", "approve", "ok"), effects=effects(world))
        assert cr.state == "approved" and cr.decided_at == NOW
        assert world.outbox.types == ["order.change_request_approved"]
        assert order.version == 1  # the order's terms did not change

    async def test_a_rejection_rejects_with_every_reason(self, world):
        cr, order = a_change(), contracted()
        await fire(cr, order, "review", facts=ChangeFacts(
            required_departments=DEPARTMENTS,
            opinions=opinions("sales", "production", quality="Class 3 needed", finance="No margin")),
            opinion=Opinion("finance", "reject", "No margin"), effects=effects(world))
        assert cr.state == "rejected"
        assert cr.rejection_reasons == [{"source": "quality", "reason": "Class 3 needed"},
                                        {"source": "finance", "reason": "No margin"}]
        [event] = world.outbox.events
        assert event.type == "order.change_request_rejected"
        assert event.data["reasons"] == cr.rejection_reasons


class TestWithdraw:
    @pytest.mark.parametrize("state", ["applied", "rejected", "withdrawn"])
    async def test_refused_from(self, world, state):
        await assert_refused(world, "withdraw", state, reason="x")

    @pytest.mark.parametrize("state", ["in_review", "approved"])
    async def test_withdrawn_from_open_states(self, world, state):
        cr, order = a_change(state), contracted()
        await fire(cr, order, "withdraw", facts=ChangeFacts(), reason="Customer changed mind",
                   effects=effects(world, "alice"))
        assert cr.state == "withdrawn" and cr.withdrawn_reason == "Customer changed mind"
        assert (cr.closed_by, cr.closed_at) == ("alice", NOW)
        assert world.outbox.types == ["order.change_request_withdrawn"]
        assert world.session.history[0].reason == "CR-000001 withdrawn: Customer changed mind"


class TestApply:
    def apply_facts(self, order: Any, **changes: Any) -> ChangeFacts:
        return ChangeFacts(required_departments=DEPARTMENTS, opinions=opinions(*DEPARTMENTS),
                           plan=plan_change(order, ChangeSet.model_validate(changes), today=None))

    async def apply(self, world: CreditWorld, order: Any, facts: ChangeFacts,
                    cr: OrderChangeRequest | None = None) -> OrderChangeRequest:
        """What the apply step does: check, fix credit's adjustment, ask credit, then fire."""
        cr = cr or a_change("approved")
        change_lifecycle.check(cr, order, "apply", facts)
        assert facts.plan is not None
        adjustment = change_lifecycle.plan_credit(order, facts.plan, cr)
        facts.credit_answers = await change_lifecycle.adjust_credit(world.credit, adjustment)  # type: ignore[arg-type]
        await fire(cr, order, "apply", facts=facts, agreement_number="A-1",
                   signed_at=datetime(2026, 1, 5, 8, tzinfo=UTC), effects=effects(world))
        return cr

    @pytest.mark.parametrize("state", ["in_review", "applied", "rejected", "withdrawn"])
    async def test_refused_from(self, world, state):
        await assert_refused(world, "apply", state)

    async def test_credit_first_then_the_new_terms(self, world):
        order = contracted()
        line_id = order.lines[0].id
        facts = self.apply_facts(order, lines=[{"line_id": line_id, "quantity": "150"}])
        cr = await self.apply(world, order, facts)
        assert world.credit.changed == [("res-1", 277_500)]
        assert cr.state == "applied" and cr.applied_revision == 2 and cr.agreement_number == "A-1"
        assert cr.credit_adjustment == {"reservation_id": "res-1", "from_minor": 185_000,
                                        "to_minor": 277_500, "action": "increased"}
        assert (order.revision, order.version, order.total_minor) == (2, 2, 277_500)
        assert order.lines[0].quantity == Decimal("150") and order.lines[0].total_minor == 277_500
        [kept] = [o for o in world.session.added if isinstance(o, OrderRevision)]
        assert (kept.revision, kept.terms["total_minor"]) == (1, 185_000)
        assert kept.terms["lines"][0]["quantity"] == "100.000"
        assert kept.replaced_by_change_request_id == cr.id
        assert len(world.session.executed) == len(DEPARTMENTS)  # the approvals, for revision 2
        [event] = world.outbox.events
        assert event.type == "order.changed" and event.data["previous_revision"] == 1
        assert {"line_id": line_id, "position": 1, "field": "quantity", "from": "100.000",
                "to": "150.000"} in event.data["differences"]

    async def test_a_refused_increase_changes_nothing(self, world):
        world.credit.room = 200_000
        order = contracted()
        cr = a_change("approved")
        facts = self.apply_facts(order, lines=[{"line_id": order.lines[0].id, "quantity": "150"}])
        with pytest.raises(GuardFailed) as refusal:
            await self.apply(world, order, facts, cr)
        assert refusal.value.body()["guard"] == "credit_reserved"
        assert cr.state == "approved" and cr.version == 1
        assert (order.revision, order.total_minor, order.lines[0].quantity) == (1, 185_000, Decimal("100"))
        assert world.session.added == [] and world.outbox.events == []

    async def test_credit_not_answering_changes_nothing(self, world):
        world.credit.down = True
        order, cr = contracted(), a_change("approved")
        facts = self.apply_facts(order, lines=[{"line_id": order.lines[0].id, "quantity": "50"}])
        with pytest.raises(DependencyUnavailable):
            await self.apply(world, order, facts, cr)
        assert cr.state == "approved" and order.total_minor == 185_000 and world.outbox.events == []

    async def test_down_to_zero_releases_the_reservation(self, world):
        order = contracted()
        facts = self.apply_facts(order, lines=[{"line_id": order.lines[0].id, "unit_price_minor": 0}])
        cr = await self.apply(world, order, facts)
        assert world.credit.released == ["res-1"] and world.credit.changed == []
        assert order.credit["status"] == "not_required" and cr.credit_adjustment["action"] == "released"

    async def test_an_order_that_needed_no_credit_reserves_the_new_total(self, world):
        order = contracted()
        order.credit = {"status": "not_required", "reservation_id": None, "reasons": []}
        cr = a_change("approved")
        facts = self.apply_facts(order, lines=[{"line_id": order.lines[0].id, "quantity": "150"}])
        await self.apply(world, order, facts, cr)
        [asked] = world.credit.reserved
        assert asked["amount_minor"] == 277_500 and asked["idempotency_key"] == f"change:{cr.id}"
        assert order.credit["status"] == "reserved"

    async def test_the_order_must_still_accept_changes(self, world):
        order = contracted()
        order.state = "delivered"
        with pytest.raises(GuardFailed) as refusal:
            await self.apply(world, order, self.apply_facts(order, delivery_place="Dock 7"))
        assert refusal.value.body()["guard"] == "order_accepts_changes"

    async def test_the_change_must_still_fit_the_deliveries(self, world):
        order = contracted("70")
        facts = self.apply_facts(order, lines=[{"line_id": order.lines[0].id, "quantity": "50"}])
        with pytest.raises(GuardFailed) as refusal:
            await self.apply(world, order, facts)
        assert refusal.value.body()["guard"] == "change_fits_deliveries"
        assert world.credit.changed == []

    async def test_a_prepaid_order_invoiced_keeps_its_amount(self, world):
        order = contracted(payment_method="prepaid", invoice_id="inv-1")
        facts = self.apply_facts(order, lines=[{"line_id": order.lines[0].id, "quantity": "150"}])
        with pytest.raises(GuardFailed) as refusal:
            await self.apply(world, order, facts)
        assert refusal.value.body()["guard"] == "prepaid_invoice_unchanged"
        cr = await self.apply(world, order, self.apply_facts(order, delivery_place="Dock 7"))
        assert cr.state == "applied" and world.credit.changed == []
