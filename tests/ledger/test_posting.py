"""Unit tests of the posting rules every journal entry goes through (no database)."""

from __future__ import annotations

import pytest

from services.ledger.errors import InvalidPosting
from services.ledger.posting import Line, check_lines, credit, debit
from shared.money import MAX_MINOR


def messages(lines, currency="CNY"):
    return {(e["field"], e["message"]) for e in check_lines(lines, currency)}


class TestCheckLines:
    def test_balanced_two_line_entry_passes(self):
        assert check_lines([debit("1100", 100, "c1"), credit("4000", 100)], "CNY") == []

    def test_balanced_multi_line_entry_passes(self):
        assert check_lines([debit("1000", 70), debit("4100", 30), credit("1100", 100, "c1")],
                           "EUR") == []

    def test_unbalanced_names_both_sums(self):
        assert ("lines", "debits 100 ≠ credits 90") in messages(
            [debit("1000", 100), credit("4000", 90)])

    def test_a_line_with_both_sides_is_refused(self):
        found = messages([Line("1000", 10, 10), credit("4000", 0), debit("1000", 0)])
        assert ("lines[0]", "a line is either a debit or a credit, not both") in found
        assert ("lines[1]", "a line needs a non-zero debit or credit") in found

    def test_negative_amounts_are_refused(self):
        found = messages([debit("1000", -5), credit("4000", -5)])
        assert ("lines[0]", "amounts must not be negative") in found
        assert ("lines[1]", "amounts must not be negative") in found

    def test_all_zero_entry_is_refused(self):
        found = messages([debit("1000", 0), credit("4000", 0)])
        assert {f for f, _ in found} == {"lines[0]", "lines[1]"}

    @pytest.mark.parametrize("lines", [[], [debit("1000", 5)]])
    def test_fewer_than_two_lines_are_refused(self, lines):
        assert ("lines", "an entry needs at least two lines") in messages(lines)

    def test_unknown_currency_is_refused(self):
        assert "currency" in {f for f, _ in messages([debit("1", 1), credit("2", 1)], "XYZ")}

    def test_amounts_beyond_the_money_limit_are_refused(self):
        found = messages([debit("1000", MAX_MINOR + 1), credit("4000", MAX_MINOR + 1)])
        assert ("lines[0]", f"amounts are at most {MAX_MINOR}") in found

    def test_invalid_posting_problem_lists_every_error(self):
        problem = InvalidPosting(check_lines([debit("1000", 100), credit("4000", 90)], "CNY"))
        body = problem.body()
        assert body["status"] == 422 and body["code"] == "validation_failed"
        assert "debits 100 ≠ credits 90" in body["detail"]
        assert body["errors"] == [{"field": "lines", "message": "debits 100 ≠ credits 90"}]


class TestPostEntry:
    """`post_entry` as later posting types (payments, credit notes) call it, in one transaction."""

    async def test_posts_lines_in_order_with_its_source(self, system):
        from services.ledger.posting import post_entry

        state = system.state("ledger")
        async with state.db.session() as session, session.begin():
            posted = await post_entry(
                session, outbox=state.outbox, clock=state.clock, kind="payment",
                memo="Payment PAY-1", currency="CNY", created_by="service",
                source_type="payment", source_id="pay-1",
                lines=[debit("1000", 500), credit("1100", 300, "c1"), credit("2100", 200, "c1")])
            entry_id = posted.entry.id
        assert posted.total_minor == 500 and posted.entry.number == "JE-000001"
        got = (await system.client("ledger", "finance").get(f"/v1/journal-entries/{entry_id}")).json()
        assert got["source_type"] == "payment" and got["source_id"] == "pay-1"
        assert [ln["line_no"] for ln in got["lines"]] == [1, 2, 3]
        assert got["posted_at"] == got["created_at"]

    async def test_refuses_and_writes_nothing(self, system):
        from services.ledger.posting import post_entry

        state = system.state("ledger")
        async with state.db.session() as session, session.begin():
            with pytest.raises(InvalidPosting) as raised:
                await post_entry(session, outbox=state.outbox, clock=state.clock, kind="payment",
                                 memo="x", currency="CNY", created_by="service",
                                 lines=[debit("1000", 5), credit("1100", 5), debit("7777", 1)])
        fields = {e["field"] for e in raised.value.errors}
        assert fields == {"lines", "lines[1].customer_id", "lines[2].account_code"}
        async with state.db.session() as session:
            assert await state.outbox.pending(session) == 0
