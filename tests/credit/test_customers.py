"""Customers through the HTTP API, as an integrator uses them."""

from __future__ import annotations

CUSTOMER = {
    "name": "Shenzhen Brightway Electronics",
    "registration_no": "91440300MA5F000001",
    "salesperson_id": "S-ALICE",
    "contacts": [{"name": "Li Na", "role": "finance", "email": "li.na@brightway.example"}],
}


async def test_create_get_list_update(system):
    credit = system.client("credit", "credit_manager")
    created = await credit.post("/v1/customers", json=CUSTOMER)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["number"] == "CUS-000001"
    assert body["contacts"][0]["role"] == "finance"
    assert created.headers["etag"] == '"1"'
    assert created.headers["location"] == f"/v1/customers/{body['id']}"

    got = await credit.get(f"/v1/customers/{body['id']}")
    assert got.status_code == 200 and got.json()["name"] == CUSTOMER["name"]

    patched = await credit.patch(f"/v1/customers/{body['id']}", json={"address": "1 Keji Road"},
                                 headers={"If-Match": '"1"'})
    assert patched.status_code == 200, patched.text
    assert patched.json()["version"] == 2 and patched.json()["address"] == "1 Keji Road"

    stale = await credit.patch(f"/v1/customers/{body['id']}", json={"address": "2 Keji Road"},
                               headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.json()["code"] == "version_conflict"

    listed = await credit.get("/v1/customers", params={"limit": 10})
    assert [c["id"] for c in listed.json()["items"]] == [body["id"]]


async def test_pagination_walks_every_customer_once(system):
    credit = system.client("credit", "credit_manager")
    ids = []
    for i in range(5):
        r = await credit.post("/v1/customers", json={**CUSTOMER, "name": f"Customer {i}"})
        ids.append(r.json()["id"])
        system.clock.advance(seconds=1)
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await credit.get("/v1/customers", params=params)).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids


async def test_sales_principal_sees_only_own_customers(system):
    manager = system.client("credit", "credit_manager")
    alice_customer = (await manager.post("/v1/customers", json=CUSTOMER)).json()
    bob_customer = (await manager.post(
        "/v1/customers", json={**CUSTOMER, "salesperson_id": "S-BOB"})).json()

    alice = system.client("credit", "alice")
    assert (await alice.get(f"/v1/customers/{alice_customer['id']}")).status_code == 200
    hidden = await alice.get(f"/v1/customers/{bob_customer['id']}")
    assert hidden.status_code == 404 and hidden.json()["code"] == "not_found"
    listed = (await alice.get("/v1/customers")).json()["items"]
    assert [c["id"] for c in listed] == [alice_customer["id"]]

    own = await alice.post("/v1/customers", json={**CUSTOMER, "salesperson_id": None})
    assert own.status_code == 201 and own.json()["salesperson_id"] == "S-ALICE"
    other = await alice.post("/v1/customers", json={**CUSTOMER, "salesperson_id": "S-BOB"})
    assert other.status_code == 403 and other.json()["code"] == "forbidden"


async def test_auditor_reads_but_cannot_write(system):
    manager = system.client("credit", "credit_manager")
    customer = (await manager.post("/v1/customers", json=CUSTOMER)).json()
    auditor = system.client("credit", "auditor")
    assert (await auditor.get(f"/v1/customers/{customer['id']}")).status_code == 200
    refused = await auditor.post("/v1/customers", json=CUSTOMER)
    assert refused.status_code == 403


async def test_bad_customer_input_lists_every_field(system):
    credit = system.client("credit", "credit_manager")
    r = await credit.post("/v1/customers", json={
        "name": "", "contacts": [{"name": "X", "role": "cfo", "email": "nope"}], "colour": "red"})
    assert r.status_code == 422
    body = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    fields = {e["field"] for e in body["errors"]}
    assert {"name", "contacts[0].role", "contacts[0].email", "colour"} <= fields
    assert any(e["message"] == "unknown field" for e in body["errors"])


async def test_customer_created_event_is_relayed_to_notifier(system):
    credit = system.client("credit", "credit_manager")
    customer = (await credit.post("/v1/customers", json=CUSTOMER)).json()
    outbox = system.state("credit").outbox
    db = system.state("credit").db
    async with db.session() as session:
        assert await outbox.pending(session) == 1
    assert await system.state("credit").relay.dispatch_once() in (0, 1)
    events = await system.client("notifier", "admin").get(
        "/v1/events", params={"type": "customer.created"})
    if events.status_code == 200:
        assert [e["subject"] for e in events.json()["items"]] == [customer["id"]]
