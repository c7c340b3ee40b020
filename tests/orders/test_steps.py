"""Transitions that need credit or ledger survive outages and crashes (DESIGN.md §9, steps.py).

Each test interrupts a step where a real fault would — the other service down, or the process
failing between two commits (a failpoint raising where `make test-faults` kills the process) —
and shows it finishing on the caller's retry or by the recovery worker, with one effect on the
other side and the same request sent every time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from shared import failpoints
from shared.db import checkpoint
from tests.fixtures import flows


@pytest.fixture
async def customer_id(system):
    return await flows.make_customer(system)


@pytest.fixture(autouse=True)
def no_failpoints():
    yield
    failpoints.configure("")


async def delivered_order(system: Any, customer_id: str, **overrides: Any) -> dict[str, Any]:
    order = await flows.in_fulfillment(system, customer_id, **overrides)
    r = await flows.deliver(system, order, "100")
    assert r.status_code == 200 and r.json()["state"] == "delivered", r.text
    return r.json()


async def settle(system: Any, order_id: str, key: str | None = None,
                 body: dict[str, Any] | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return await system.client("orders", "finance").post(
        f"/v1/orders/{order_id}/settle", json=body, headers=headers)


async def recover(system: Any) -> int:
    """Let the recovery worker's time come (past the grace and any backoff) and run one pass."""
    system.clock.advance(seconds=61)
    return await system.state("orders").jobs["step-recovery"]()


async def invoices_of(system: Any, order_id: str) -> list[dict[str, Any]]:
    r = await system.client("ledger", "finance").get("/v1/invoices", params={"order_id": order_id})
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def credit_notes_of(system: Any, invoice_id: str) -> list[dict[str, Any]]:
    r = await system.client("ledger", "finance").get("/v1/credit-notes",
                                                     params={"invoice_id": invoice_id})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def assert_waiting(body: dict[str, Any], service: str) -> None:
    assert body["code"] == "dependency_unavailable", body
    assert f"finishes on its own once {service} answers" in body["detail"], body["detail"]


class TestSettle:
    async def test_ledger_down_then_the_retry_sends_the_first_attempt_s_invoice(self, system,
                                                                                customer_id):
        order = await delivered_order(system, customer_id)
        first_attempt = system.clock.now()
        with flows.service_down(system, "ledger"):
            r = await settle(system, order["id"], "settle-1")
        assert r.status_code == 503
        assert_waiting(r.json(), "ledger and credit")
        waiting = await flows.get_order(system, order["id"])
        assert waiting["state"] == "delivered"
        assert (waiting["pending_step"]["kind"], waiting["pending_step"]["attempts"]) == ("settle", 1)
        # Nothing else changes the order while its settlement is half done.
        r = await system.client("orders", "sales").post(
            f"/v1/orders/{order['id']}/returns",
            json={"lines": [{"line_id": order["lines"][0]["id"], "quantity": "1"}], "reason": "x"})
        assert r.status_code == 409 and r.json()["code"] == "conflict"
        assert r.json()["step"]["kind"] == "settle"

        system.clock.advance(days=1)  # the retry comes the next day: the invoice is the same
        r = await settle(system, order["id"], "settle-1")
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "invoiced" and r.json()["pending_step"] is None
        [invoice] = await invoices_of(system, order["id"])
        assert invoice["issued_at"].replace("Z", "+00:00") == first_attempt.isoformat()
        assert invoice["due_date"] == (first_attempt.date() + timedelta(days=60)).isoformat()
        again = await settle(system, order["id"], "settle-1")
        assert again.headers["idempotent-replayed"] == "true" and again.json() == r.json()

    async def test_credit_down_after_the_invoice_the_worker_finishes(self, system, customer_id):
        order = await delivered_order(system, customer_id)
        with flows.credit_down(system):
            r = await settle(system, order["id"])
            assert r.status_code == 503
            assert await recover(system) == 0  # still down: postponed, not given up
        assert len(await invoices_of(system, order["id"])) == 1
        assert (await flows.get_order(system, order["id"]))["pending_step"]["attempts"] == 2
        assert await recover(system) == 1
        settled = await flows.get_order(system, order["id"])
        assert settled["state"] == "invoiced" and settled["credit"]["status"] == "converted"
        assert len(await invoices_of(system, order["id"])) == 1
        reservation = await flows.reservation(system, settled["credit"]["reservation_id"])
        assert reservation["status"] == "converted"

    async def test_a_crash_between_invoice_and_conversion_is_finished_by_the_retry(
            self, system, customer_id):
        order = await delivered_order(system, customer_id)
        failpoints.configure("orders.settle.after_invoice=error")
        r = await settle(system, order["id"], "settle-crash")
        failpoints.configure("")
        assert r.status_code == 500
        assert (await flows.get_order(system, order["id"]))["pending_step"]["kind"] == "settle"
        r = await settle(system, order["id"], "settle-crash")
        assert r.status_code == 200 and r.json()["state"] == "invoiced", r.text
        assert len(await invoices_of(system, order["id"])) == 1
        assert len(await flows.order_events(system, "order.invoiced")) == 1

    @pytest.mark.parametrize("point", ["after_intent", "after_remote"])
    async def test_a_crash_at_either_end_is_finished_by_the_worker(self, system, customer_id,
                                                                    point):
        order = await delivered_order(system, customer_id)
        failpoints.configure(f"orders.settle.{point}=error")
        assert (await settle(system, order["id"], "k")).status_code == 500
        failpoints.configure("")
        assert await recover(system) == 1
        assert (await flows.get_order(system, order["id"]))["state"] == "invoiced"
        assert len(await invoices_of(system, order["id"])) == 1
        # The request that began it, retried, replays what the worker answered for it.
        again = await settle(system, order["id"], "k")
        assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
        assert again.json()["state"] == "invoiced"

    async def test_a_retry_may_not_change_the_due_date_of_a_pending_settlement(self, system,
                                                                              customer_id):
        order = await delivered_order(system, customer_id)
        with flows.service_down(system, "ledger"):
            assert (await settle(system, order["id"], body={"due_date": "2026-03-31"})).status_code == 503
        r = await settle(system, order["id"], body={"due_date": "2026-04-30"})
        assert r.status_code == 409 and "due date 2026-03-31" in r.json()["detail"]
        r = await settle(system, order["id"])
        assert r.status_code == 200
        [invoice] = await invoices_of(system, order["id"])
        assert invoice["due_date"] == "2026-03-31"


async def pay(system: Any, customer_id: str, invoice_id: str, amount_minor: int) -> None:
    r = await system.client("ledger", "finance").post("/v1/payments", json={
        "customer_id": customer_id, "amount_minor": amount_minor, "currency": "CNY",
        "method": "bank_transfer", "allocations": [
            {"invoice_id": invoice_id, "amount_minor": amount_minor}]})
    assert r.status_code == 201, r.text


class TestPaidBeforeSettled:
    async def test_a_payment_while_the_settlement_waits_closes_the_order_once_settled(
            self, system, customer_id):
        order = await delivered_order(system, customer_id)
        with flows.credit_down(system):  # the invoice is issued, the conversion waits
            assert (await settle(system, order["id"])).status_code == 503
            [invoice] = await invoices_of(system, order["id"])
            await pay(system, customer_id, invoice["id"], invoice["amount_minor"])
            await system.pump()  # invoice.paid reaches orders while the settlement is pending
            waiting = await flows.get_order(system, order["id"])
            assert (waiting["state"], waiting["pending_step"]["kind"]) == ("delivered", "settle")
        assert await recover(system) == 1
        await system.pump()
        closed = await flows.get_order(system, order["id"])
        assert closed["state"] == "closed", closed
        assert len(await flows.order_events(system, "order.closed")) == 1

    async def test_a_prepaid_order_paid_at_contract_closes_with_its_settlement(self, system,
                                                                               customer_id):
        order = await flows.approved_order(system, customer_id, payment_method="prepaid",
                                           payment_terms_days=None)
        r = await system.client("orders", "sales").post(f"/v1/orders/{order['id']}/contract", json={
            "contract_number": "CT-P", "signed_at": "2026-01-05T08:30:00+00:00"})
        assert r.status_code == 200, r.text
        [invoice] = await invoices_of(system, order["id"])
        await pay(system, customer_id, invoice["id"], invoice["amount_minor"])
        await system.pump()  # invoice.paid for a contracted order: nothing to close yet
        r = await system.client("orders", "production").post(
            f"/v1/orders/{order['id']}/start-fulfillment")
        assert r.status_code == 200, r.text
        assert (await flows.deliver(system, r.json(), "100")).status_code == 200
        r = await settle(system, order["id"])
        assert r.status_code == 200 and r.json()["state"] == "closed", r.text
        last = (await flows.history(system, order["id"]))[-1]
        assert (last["trigger"], last["actor"], last["reason"]) == (
            "close", "system", "paid before settlement")


class TestOtherSteps:
    async def test_a_prepaid_contract_waits_for_ledger_s_invoice(self, system, customer_id):
        order = await flows.approved_order(system, customer_id, payment_method="prepaid",
                                           payment_terms_days=None)
        body = {"contract_number": "CT-9", "signed_at": "2026-01-05T08:30:00+00:00"}
        sales = system.client("orders", "sales")
        with flows.service_down(system, "ledger"):
            r = await sales.post(f"/v1/orders/{order['id']}/contract", json=body)
        assert r.status_code == 503 and (await flows.get_order(system, order["id"]))["state"] == "approved"
        r = await sales.post(f"/v1/orders/{order['id']}/contract", json={**body, "contract_number": "X"})
        assert r.status_code == 409  # another contract number than the pending one
        r = await sales.post(f"/v1/orders/{order['id']}/contract", json=body)
        assert r.status_code == 200 and r.json()["state"] == "contracted", r.text
        [invoice] = await invoices_of(system, order["id"])
        assert r.json()["invoice_id"] == invoice["id"] and invoice["due_date"] == "2026-01-05"

    async def test_cancel_with_credit_down_finishes_and_gives_the_reservation_back(
            self, system, customer_id):
        order = await flows.approved_order(system, customer_id)
        reservation_id = order["credit"]["reservation_id"]
        with flows.credit_down(system):
            r = await system.client("orders", "sales").post(
                f"/v1/orders/{order['id']}/cancel", json={"reason": "customer withdrew"})
        assert r.status_code == 503
        assert (await flows.reservation(system, reservation_id))["status"] == "active"
        assert await recover(system) == 1
        cancelled = await flows.get_order(system, order["id"])
        assert cancelled["state"] == "cancelled" and cancelled["credit"]["status"] == "released"
        assert (await flows.reservation(system, reservation_id))["status"] == "released"
        [entry] = [h for h in await flows.history(system, order["id"]) if h["trigger"] == "cancel"]
        assert (entry["actor"], entry["reason"]) == ("sales", "customer withdrew")

    async def test_revise_with_credit_down_finishes_by_the_retry(self, system, customer_id):
        order = await flows.submitted_order(system, customer_id)
        r = await flows.review(system, order["id"], "quality", "reject", comment="Class 3 needed")
        assert r.json()["state"] == "rejected"
        sales = system.client("orders", "sales")
        with flows.credit_down(system):
            assert (await sales.post(f"/v1/orders/{order['id']}/revise")).status_code == 503
        r = await sales.post(f"/v1/orders/{order['id']}/revise")
        assert r.status_code == 200 and (r.json()["state"], r.json()["revision"]) == ("draft", 2)
        reservation = await flows.reservation(system, order["credit"]["reservation_id"])
        assert reservation["status"] == "released"

    async def test_a_return_on_an_invoiced_order_credits_once(self, system, customer_id):
        order = await delivered_order(system, customer_id)
        invoiced = (await settle(system, order["id"])).json()
        body = {"lines": [{"line_id": order["lines"][0]["id"], "quantity": "10"}],
                "reason": "Scratched boards"}
        headers = {"Idempotency-Key": "return-1"}
        sales = system.client("orders", "sales")
        with flows.service_down(system, "ledger"):
            r = await sales.post(f"/v1/orders/{order['id']}/returns", json=body, headers=headers)
        assert r.status_code == 503
        assert await recover(system) == 1
        [note] = await credit_notes_of(system, invoiced["invoice_id"])
        assert note["amount_minor"] == 18_500
        again = await sales.post(f"/v1/orders/{order['id']}/returns", json=body, headers=headers)
        assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
        assert again.json()["credit_note_id"] == note["id"]
        now = await flows.get_order(system, order["id"])
        assert now["lines"][0]["returned_quantity"] == "10.000"
        assert len(await credit_notes_of(system, invoiced["invoice_id"])) == 1


class TestChangeApply:
    async def test_credit_down_the_apply_waits_and_cannot_be_withdrawn(self, system, customer_id):
        order = await flows.contracted_order(system, customer_id)
        changes = {"lines": [{"line_id": order["lines"][0]["id"], "quantity": "150"}]}
        cr = await flows.approved_change(system, order["id"], changes)
        with flows.credit_down(system):
            r = await flows.apply_change(system, order["id"], cr["id"])
        assert r.status_code == 503
        r = await system.client("orders", "sales").post(
            f"/v1/orders/{order['id']}/change-requests/{cr['id']}/withdraw", json={"reason": "x"})
        assert r.status_code == 409 and r.json()["step"]["kind"] == "change-apply"
        assert await recover(system) == 1
        changed = await flows.get_order(system, order["id"])
        assert (changed["revision"], changed["total_minor"]) == (2, 277_500)
        reservation = await flows.reservation(system, order["credit"]["reservation_id"])
        assert reservation["amount_minor"] == 277_500

    async def test_a_refused_increase_leaves_nothing_pending(self, system):
        customer_id = await flows.make_customer(system, limit_minor=200_000)
        order = await flows.contracted_order(system, customer_id)
        changes = {"lines": [{"line_id": order["lines"][0]["id"], "quantity": "150"}]}
        cr = await flows.approved_change(system, order["id"], changes)
        r = await flows.apply_change(system, order["id"], cr["id"])
        assert r.status_code == 409 and r.json()["guard"] == "credit_reserved", r.text
        after = await flows.get_order(system, order["id"])
        assert after["pending_step"] is None and after["total_minor"] == 185_000
        r = await system.client("orders", "sales").post(
            f"/v1/orders/{order['id']}/change-requests/{cr['id']}/withdraw", json={"reason": "no"})
        assert r.status_code == 200 and r.json()["state"] == "withdrawn"


class TestStepFinishedMeanwhile:
    async def test_a_submit_seen_pending_that_finishes_before_the_lock_is_no_500(
            self, system, customer_id, monkeypatch):
        """Found by the fault suite: a retry saw the submit pending, the recovery worker
        finished it before the retry took the order's lock, and the retry crashed (500)."""
        from services.orders import service

        order = await flows.create_order(system, customer_id)
        failpoints.configure("orders.submit.after_intent=error")
        assert (await flows.submit(system, order["id"])).status_code == 500  # the failpoint
        failpoints.configure("")
        assert (await flows.get_order(system, order["id"]))["pending_step"]["kind"] == "submit"
        real_lock = service._resume_or_lock
        finished = False

        async def worker_first(env, order, kind):
            nonlocal finished
            if not finished:  # the worker finishes the step between the look and the lock
                finished = True
                await checkpoint(env.session)  # (on SQLite the worker needs the writer's turn)
                assert await recover(system) == 1
            return await real_lock(env, order, kind)

        monkeypatch.setattr(service, "_resume_or_lock", worker_first)
        r = await flows.submit(system, order["id"])
        assert r.status_code == 409 and r.json()["code"] == "invalid_transition", r.text
        done = await flows.get_order(system, order["id"])
        assert done["state"] == "in_review" and done["pending_step"] is None
