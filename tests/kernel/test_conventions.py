"""DESIGN.md §3 conventions every service shares: auth, problems, idempotency, request ids,
probes and metrics. Exercised on the credit service and, where a service-specific route is
not needed, on every service."""

from __future__ import annotations

import asyncio
import json

import pytest

from shared import failpoints
from shared.settings import SERVICES

CUSTOMER = {"name": "Acme Trading", "salesperson_id": "S-ALICE"}


@pytest.mark.parametrize("service", SERVICES)
async def test_probes_and_metrics_on_every_service(system, service):
    client = system.client(service, principal=None)
    assert (await client.get("/health")).json() == {"status": "ok", "service": service}
    ready = await client.get("/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"
    await client.get("/v1/does-not-exist")
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert "o2c_http_requests_total" in metrics.text
    assert 'route="unmatched"' in metrics.text
    spec = (await client.get("/openapi.json")).json()
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


@pytest.mark.parametrize("service", SERVICES)
async def test_unknown_route_and_wrong_method_are_problems(system, service):
    client = system.client(service)
    missing = await client.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["code"] == "not_found"
    wrong = await client.delete("/health")
    assert wrong.status_code == 405
    assert wrong.json()["code"] == "method_not_allowed"


async def test_missing_and_invalid_keys_are_401(system):
    anonymous = system.client("credit", principal=None)
    r = await anonymous.get("/v1/customers")
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"
    bad = system.client("credit", principal=None, headers={"Authorization": "Bearer nope-123"})
    r = await bad.get("/v1/customers")
    assert r.status_code == 401
    assert "nope-123" not in r.text


async def test_wrong_role_is_403(system):
    r = await system.client("credit", "production").post("/v1/customers", json=CUSTOMER)
    assert r.status_code == 403 and r.json()["code"] == "forbidden"


async def test_service_key_is_accepted_as_service_principal(system):
    r = await system.client("credit", "service").get("/v1/customers")
    assert r.status_code == 200


async def test_malformed_json_and_unknown_fields_are_422(system):
    credit = system.client("credit", "credit_manager")
    r = await credit.post("/v1/customers", content=b'{"name": "x",',
                          headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["code"] == "validation_failed"
    assert r.json()["errors"] == [{"field": "body", "message": "malformed JSON"}]
    r = await credit.post("/v1/customers", json={**CUSTOMER, "nickname": "A"})
    assert r.status_code == 422
    assert {"field": "nickname", "message": "unknown field"} in r.json()["errors"]


async def test_bad_query_parameters_and_cursor_are_422(system):
    credit = system.client("credit", "credit_manager")
    r = await credit.get("/v1/customers", params={"limit": 0})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.limit"
    r = await credit.get("/v1/customers", params={"cursor": "!!garbage!!"})
    assert r.status_code == 422 and r.json()["code"] == "validation_failed"


async def test_request_id_is_echoed_or_generated(system):
    credit = system.client("credit", "credit_manager")
    r = await credit.get("/v1/customers", headers={"X-Request-ID": "trace-abc-123"})
    assert r.headers["x-request-id"] == "trace-abc-123"
    generated = (await credit.get("/v1/customers")).headers["x-request-id"]
    assert len(generated) == 32
    problem = await credit.get("/v1/customers/unknown", headers={"X-Request-ID": "trace-404"})
    assert problem.json()["request_id"] == "trace-404"


class TestIdempotency:
    async def test_same_key_same_body_replays(self, system):
        credit = system.client("credit", "credit_manager")
        headers = {"Idempotency-Key": "create-acme-1"}
        first = await credit.post("/v1/customers", json=CUSTOMER, headers=headers)
        second = await credit.post("/v1/customers", json=CUSTOMER, headers=headers)
        assert first.status_code == second.status_code == 201
        assert second.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
        assert second.json() == first.json()
        assert second.headers["location"] == first.headers["location"]
        listed = (await credit.get("/v1/customers")).json()["items"]
        assert len(listed) == 1

    async def test_same_key_other_body_is_refused(self, system):
        credit = system.client("credit", "credit_manager")
        headers = {"Idempotency-Key": "create-acme-2"}
        await credit.post("/v1/customers", json=CUSTOMER, headers=headers)
        other = await credit.post("/v1/customers", json={**CUSTOMER, "name": "Other"},
                                  headers=headers)
        assert other.status_code == 422
        assert other.json()["code"] == "idempotency_key_reused"

    async def test_keys_are_scoped_per_principal(self, system):
        headers = {"Idempotency-Key": "shared-key"}
        a = await system.client("credit", "credit_manager").post(
            "/v1/customers", json=CUSTOMER, headers=headers)
        b = await system.client("credit", "admin").post(
            "/v1/customers", json=CUSTOMER, headers=headers)
        assert a.status_code == b.status_code == 201
        assert a.json()["id"] != b.json()["id"]
        assert "idempotent-replayed" not in b.headers

    async def test_key_expires_after_24_hours(self, system):
        credit = system.client("credit", "credit_manager")
        headers = {"Idempotency-Key": "create-acme-3"}
        first = await credit.post("/v1/customers", json=CUSTOMER, headers=headers)
        system.clock.advance(hours=24, seconds=1)
        again = await credit.post("/v1/customers", json=CUSTOMER, headers=headers)
        assert again.status_code == 201 and again.json()["id"] != first.json()["id"]

    async def test_errors_are_replayed_too_but_not_server_errors(self, system):
        credit = system.client("credit", "credit_manager")
        headers = {"Idempotency-Key": "bad-body"}
        first = await credit.post("/v1/customers", json={"name": ""}, headers=headers)
        second = await credit.post("/v1/customers", json={"name": ""}, headers=headers)
        assert first.status_code == second.status_code == 422
        assert second.headers["idempotent-replayed"] == "true"

    async def test_concurrent_first_attempts_have_one_effect_and_one_answer(self, system):
        credit = system.client("credit", "credit_manager")
        headers = {"Idempotency-Key": "race"}
        results = await asyncio.gather(*[
            credit.post("/v1/customers", json=CUSTOMER, headers=headers) for _ in range(5)])
        assert [r.status_code for r in results] == [201] * 5  # never 409 "in progress"
        assert len({r.json()["id"] for r in results}) == 1
        assert sum(r.headers.get("idempotent-replayed") == "true" for r in results) == 4
        assert len((await credit.get("/v1/customers")).json()["items"]) == 1

    async def test_a_retry_right_after_the_answer_replays_it(self, system):
        credit = system.client("credit", "credit_manager")
        headers = {"Idempotency-Key": "at-once"}
        for _ in range(20):
            first = await credit.post("/v1/customers", json=CUSTOMER, headers=headers)
            again = await credit.post("/v1/customers", json=CUSTOMER, headers=headers)
            assert (first.status_code, again.status_code) == (201, 201)
            assert again.headers["idempotent-replayed"] == "true"
            headers = {"Idempotency-Key": f"at-once-{first.json()['id']}"}

    @pytest.mark.parametrize("point", ["before_commit", "after_commit"])
    async def test_a_crash_around_the_commit_leaves_one_effect(self, system, point):
        """The effect and the stored answer commit together: a failure just before the commit
        leaves neither (the retry runs once), just after leaves both (the retry replays)."""
        credit = system.client("credit", "credit_manager")
        headers = {"Idempotency-Key": f"crash-{point}"}
        failpoints.configure(f"credit.idempotency.{point}=error")
        try:
            crashed = await credit.post("/v1/customers", json=CUSTOMER, headers=headers)
        finally:
            failpoints.configure("")
        assert crashed.status_code == 500
        retry = await credit.post("/v1/customers", json=CUSTOMER, headers=headers)
        assert retry.status_code == 201
        assert (retry.headers.get("idempotent-replayed") == "true") == (point == "after_commit")
        assert len((await credit.get("/v1/customers")).json()["items"]) == 1

    async def test_answers_of_the_idempotency_layer_name_their_route(self, system):
        credit = system.client("credit", "credit_manager")
        headers = {"Idempotency-Key": "metrics-route"}
        for _ in range(2):
            await credit.post("/v1/customers", json=CUSTOMER, headers=headers)
        await credit.post("/v1/customers", json={**CUSTOMER, "name": "Other"}, headers=headers)
        metrics = (await credit.get("/metrics")).text
        line = ('o2c_http_requests_total{method="POST",route="/v1/customers",service="credit",'
                'status="%s"}')
        assert line % "201" + " 2.0" in metrics
        assert line % "422" + " 1.0" in metrics

    async def test_overlong_key_is_422(self, system):
        r = await system.client("credit", "credit_manager").post(
            "/v1/customers", json=CUSTOMER, headers={"Idempotency-Key": "k" * 300})
        assert r.status_code == 422


async def test_unexpected_error_is_a_500_problem_without_internals(system):
    app = system.apps["credit"]

    @app.get("/v1/boom", include_in_schema=False)
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    r = await system.client("credit").get("/v1/boom", headers={"X-Request-ID": "trace-500"})
    assert r.status_code == 500
    body = r.json()
    assert body["code"] == "internal_error" and body["request_id"] == "trace-500"
    assert "hunter2" not in r.text and "Traceback" not in r.text
    assert r.headers["x-request-id"] == "trace-500"


async def test_outbox_survives_notifier_outage_and_delivers_once(system):
    import httpx

    credit = system.client("credit", "credit_manager")
    healthy = system.mounts["http://notifier.test"]

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("notifier is down", request=request)

    system.mounts["http://notifier.test"] = httpx.MockTransport(down)
    customer = (await credit.post("/v1/customers", json=CUSTOMER)).json()
    relay = system.state("credit").relay
    assert await relay.dispatch_once() == 0
    # an hour of outage: retries back off but the event stays
    for _ in range(12):
        system.clock.advance(minutes=5)
        assert await relay.dispatch_once() == 0
    system.mounts["http://notifier.test"] = healthy
    system.clock.advance(minutes=5)
    assert await relay.dispatch_once() == 1
    assert await relay.dispatch_once() == 0
    events = (await system.client("notifier").get(
        "/v1/events", params={"type": "customer.created"})).json()["items"]
    assert [e["subject"] for e in events] == [customer["id"]]


async def test_outbox_event_posted_twice_is_stored_once(system):
    credit = system.client("credit", "credit_manager")
    await credit.post("/v1/customers", json=CUSTOMER)
    state = system.state("credit")
    async with state.db.session() as session:
        row = (await session.execute(state.outbox.table.select())).one()
    notifier = system.client("notifier", "service")
    payload = json.loads(row.payload)
    first = await notifier.post("/v1/events", json=payload)
    second = await notifier.post("/v1/events", json=payload)
    assert first.status_code in (200, 201) and second.status_code in (200, 201)
    assert await state.relay.dispatch_once() == 1  # accepted as a duplicate
    events = (await system.client("notifier").get("/v1/events")).json()["items"]
    assert len(events) == 1


async def test_forged_cursor_is_422_not_500(system):
    from shared.pagination import encode_cursor

    r = await system.client("credit", "credit_manager").get(
        "/v1/customers", params={"cursor": encode_cursor("not-a-time", "x")})
    assert r.status_code == 422 and r.json()["code"] == "validation_failed"


async def test_concurrent_first_numbers_are_distinct(system):
    credit = system.client("credit", "credit_manager")
    results = await asyncio.gather(*[
        credit.post("/v1/customers", json={**CUSTOMER, "name": f"C{i}"}) for i in range(6)])
    assert all(r.status_code == 201 for r in results), [r.text for r in results]
    numbers = sorted(r.json()["number"] for r in results)
    assert numbers == [f"CUS-00000{i}" for i in range(1, 7)]
