"""The ledger SIGKILLs itself in the middle of an import of open invoices, after every row was
written and before the commit: on restart nothing of it is there, the books still agree, and
the same file sent again imports every row once."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.faults

ROWS = 2_000
HEADER = "number,customer_id,salesperson_id,currency,amount_minor,outstanding_minor,issue_date,due_date"
CSV = HEADER + "\n" + "".join(f"OLD-{i:05d},cust-{i % 50:03d},,CNY,{1_000 + i},,2026-01-02,2026-02-01\n"
                              for i in range(ROWS))


async def _check(http: httpx.AsyncClient, invoices: int) -> None:
    page = (await http.get("/v1/invoices", params={"limit": 1})).json()
    assert bool(page["items"]) == bool(invoices)
    check = (await http.get("/v1/ledger-check")).json()
    assert check["balanced"] is True, check["problems"]
    expected = sum(1_000 + i for i in range(ROWS)) if invoices else None
    controls = {(c["account_code"], c["currency"]): c for c in check["controls"]}
    if expected is None:
        assert ("1100", "CNY") not in controls
    else:
        assert controls[("1100", "CNY")]["balance_minor"] == expected
        assert controls[("1100", "CNY")]["documents_minor"] == expected


async def test_a_kill_before_the_import_commits_leaves_nothing_and_a_resend_imports_once(start_cluster):
    cluster = await start_cluster(("ledger",), failpoints={"ledger": "ledger.imports.before_commit=kill"})
    ledger = cluster.processes["ledger"]
    headers = {"Authorization": f"Bearer {cluster.keys['finance']}"}
    async with httpx.AsyncClient(base_url=ledger.url, headers=headers, timeout=60) as http:
        try:
            r = await http.post("/v1/invoice-imports", content=CSV,
                                headers={"Content-Type": "text/csv"})
        except httpx.TransportError:
            pass
        else:
            raise AssertionError(f"the import answered {r.status_code}: {r.text[:300]}")
        assert ledger.proc is not None
        ledger.proc.wait(timeout=15)  # it killed itself: the connection dropped with it
        assert ledger.failpoint_fired() == "ledger.imports.before_commit"
        await cluster.restart("ledger")
        await _check(http, invoices=0)

        first = await http.post("/v1/invoice-imports", content=CSV, headers={"Content-Type": "text/csv"})
        assert first.status_code == 201 and first.json()["created"] == ROWS, first.text
        await _check(http, invoices=ROWS)
        again = await http.post("/v1/invoice-imports", content=CSV, headers={"Content-Type": "text/csv"})
        assert again.status_code == 201 and again.json()["unchanged"] == ROWS, again.text
        await _check(http, invoices=ROWS)
