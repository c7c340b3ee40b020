"""Property: whatever balanced entries are posted, the trial balance agrees with the lines."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# Every account a manual entry may post to: not the control accounts 1100 and 2100, which only
# documents post to (the invoice and payment properties cover those).
ACCOUNTS = ["1000", "1200", "3000", "4000", "4100", "4200", "4300", "6100"]
DEBIT_NORMAL = {"1000", "1200", "4100", "6100"}


@st.composite
def balanced_entry(draw):
    """Random debits split against random credits; always balanced, every line one-sided."""
    debits = draw(st.lists(st.integers(1, 10**9), min_size=1, max_size=4))
    n_credits = draw(st.integers(1, 4))
    total = sum(debits)
    cuts = sorted(draw(st.lists(st.integers(1, max(1, total - 1)), min_size=n_credits - 1,
                                max_size=n_credits - 1, unique=True))) if total > n_credits else []
    credits = [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]
    lines = []
    for side, amounts in (("debit_minor", debits), ("credit_minor", credits)):
        for amount in amounts:
            lines.append({"account_code": draw(st.sampled_from(ACCOUNTS)), side: amount})
    return {"memo": "property", "currency": draw(st.sampled_from(["CNY", "USD"])),
            "lines": draw(st.permutations(lines))}


async def all_entries(client):
    entries, cursor = [], None
    while True:
        page = (await client.get("/v1/journal-entries",
                                 params={"limit": 200} | ({"cursor": cursor} if cursor else {}))).json()
        entries += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return entries


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batch=st.lists(balanced_entry(), min_size=1, max_size=4))
async def test_trial_balance_matches_the_sum_of_lines(system, batch):
    ledger = system.client("ledger", "finance")
    for body in batch:
        r = await ledger.post("/v1/journal-entries", json=body)
        assert r.status_code == 201, r.text
        system.clock.advance(minutes=1)

    expected: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for e in await all_entries(ledger):
        for line in e["lines"]:
            sums = expected[(line["account_code"], e["currency"])]
            sums[0] += line["debit_minor"]
            sums[1] += line["credit_minor"]

    tb = (await ledger.get("/v1/trial-balance")).json()
    assert tb["total_debit_minor"] == tb["total_credit_minor"]
    got = {(r["code"], r["currency"]): r for r in tb["accounts"]}
    assert set(got) == set(expected)
    for key, (d, c) in expected.items():
        row = got[key]
        assert (row["debit_minor"], row["credit_minor"]) == (d, c)
        assert row["balance_minor"] == (d - c if key[0] in DEBIT_NORMAL else c - d)
    for currency in ("CNY", "USD"):
        per = (await ledger.get("/v1/trial-balance", params={"currency": currency})).json()
        assert per["total_debit_minor"] == per["total_credit_minor"]

    check = (await system.client("ledger", "auditor").get("/v1/ledger-check")).json()
    assert check["balanced"] is True, check["problems"]
