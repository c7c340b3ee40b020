"""The shared request types: strict integers, ISO 8601 dates in a business range, digit-only
query integers; and what OpenAPI says of them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Query
from pydantic import BaseModel, TypeAdapter, ValidationError

from services.ledger.config import LedgerSettings
from services.ledger.schemas import PaymentCreate
from shared.dates import MAX_DATE, MAX_SPAN_DAYS, MIN_DATE, AwareTimestamp, BusinessDate, Timestamp
from shared.money import AmountMinor, PositiveAmountMinor
from shared.schemas import query_int

DATE = TypeAdapter(BusinessDate)
AWARE = TypeAdapter(AwareTimestamp)
ANY_OFFSET = TypeAdapter(Timestamp)


def _refused(adapter: TypeAdapter, value: Any, *, json: bool = False) -> bool:
    try:
        adapter.validate_json(value) if json else adapter.validate_python(value)
    except ValidationError:
        return True
    return False


@pytest.mark.parametrize("value", [
    "0001-01-01", "9999-12-31", "1899-12-31", "3000-01-01", "0", "1e10", "1767225600", 0, 1e10,
    True, "2026-01-05T00:00:00", "2026-01-05T00:00:00Z", "20260105", "2026-1-5", " 2026-01-05",
    "2026-02-30", datetime(2026, 1, 5, tzinfo=UTC)])
def test_business_date_takes_only_yyyy_mm_dd_in_range(value):
    assert _refused(DATE, value)


def test_business_date_range_ends_and_python_dates():
    assert DATE.validate_python("1900-01-01") == MIN_DATE
    assert DATE.validate_python("2999-12-31") == MAX_DATE
    assert DATE.validate_json('"2026-01-05"') == date(2026, 1, 5)
    assert DATE.validate_python(date(2026, 1, 5)) == date(2026, 1, 5)  # built in Python
    assert _refused(DATE, "20260105", json=True) and _refused(DATE, "1767225600", json=True)


@pytest.mark.parametrize("value", [
    "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "2999-12-31T23:59:59-01:00",
    "1900-01-01T00:00:00+01:00", "3000-01-01T00:00:00Z", "0", "1e10", 0, 1_700_000_000, True,
    "2026-01-05", "2026-01-05T09:00:00"])
def test_aware_timestamp_is_iso_with_offset_and_in_range_in_utc(value):
    assert _refused(AWARE, value)


def test_aware_timestamp_keeps_its_offset():
    east = AWARE.validate_python("2999-12-31T23:59:59+14:00")  # 09:59:59 UTC that day
    assert east.utcoffset() == timedelta(hours=14)
    assert AWARE.validate_python("1900-01-01T00:59:59-01:00").astimezone(UTC) == datetime(
        1900, 1, 1, 1, 59, 59, tzinfo=UTC)
    given = datetime(2026, 1, 5, 9, tzinfo=timezone(timedelta(hours=8)))
    assert AWARE.validate_python(given) == given


def test_timestamp_without_offset_is_read_as_utc_for_the_range():
    assert ANY_OFFSET.validate_python("2026-01-05T09:00:00") == datetime(2026, 1, 5, 9)
    assert _refused(ANY_OFFSET, "3000-01-01T00:00:00") and _refused(ANY_OFFSET, "0")
    assert ANY_OFFSET.validate_python("2999-12-31T23:59:59Z").utcoffset() == timedelta(0)


def test_arithmetic_within_the_range_cannot_overflow():
    """A century either side (plus a day for the offset) is still a date Python holds."""
    assert MIN_DATE - timedelta(days=MAX_SPAN_DAYS + 1) > date.min
    assert MAX_DATE + timedelta(days=MAX_SPAN_DAYS + 1) < date.max
    with pytest.raises(ValueError, match="at most"):
        LedgerSettings(aging_bucket_days=[30, MAX_SPAN_DAYS + 1])
    with pytest.raises(ValueError, match="at most"):
        LedgerSettings(overdue_thresholds_days=[1, 10**9])


@pytest.mark.parametrize("adapter", [TypeAdapter(AmountMinor), TypeAdapter(PositiveAmountMinor)])
@pytest.mark.parametrize("value", [True, False, "100", 1.5, 100.0, "1e2"])
def test_money_refuses_bools_strings_and_floats(adapter, value):
    assert _refused(adapter, value)


def test_money_takes_integers_from_json_and_python():
    assert TypeAdapter(AmountMinor).validate_json("125000") == 125000
    assert TypeAdapter(PositiveAmountMinor).validate_python(1) == 1
    assert _refused(TypeAdapter(AmountMinor), "true", json=True)
    assert _refused(TypeAdapter(AmountMinor), '"100"', json=True)


class ProbeBody(BaseModel):
    amount_minor: AmountMinor
    due_date: BusinessDate


def _app() -> FastAPI:
    """A route with a date query parameter, an integer query parameter and a body."""
    app = FastAPI()

    @app.post("/probe")
    async def probe(body: ProbeBody,
                    as_of: Annotated[BusinessDate | None, Query()] = None,
                    size: Annotated[query_int(ge=1, le=200), Query()] = 50) -> dict:
        return {"as_of": as_of, "size": size, "amount_minor": body.amount_minor}

    return app


async def test_query_and_body_are_read_alike():
    body = {"amount_minor": 100, "due_date": "2026-02-04"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()),
                                 base_url="http://probe.test") as client:
        ok = await client.post("/probe", params={"as_of": "2026-01-05", "size": "10"}, json=body)
        assert ok.json() == {"as_of": "2026-01-05", "size": 10, "amount_minor": 100}
        for params in ({"as_of": "0"}, {"as_of": "1e10"}, {"as_of": "9999-12-31"},
                       {"size": "1.5"}, {"size": "true"}, {"size": "1.0"}, {"size": "0"}):
            r = await client.post("/probe", params=params, json=body)
            assert r.status_code == 422, params
        for loose in ({"amount_minor": True}, {"amount_minor": "100"}, {"due_date": 0},
                      {"due_date": "0"}, {"due_date": "2026-02-04T00:00:00Z"}):
            r = await client.post("/probe", json={**body, **loose})
            assert r.status_code == 422, loose


def test_openapi_still_says_integer_and_date():
    schema = PaymentCreate.model_json_schema()["properties"]
    assert schema["amount_minor"]["type"] == "integer"
    assert (schema["amount_minor"]["exclusiveMinimum"], schema["amount_minor"]["maximum"]) == (
        0, 10**15)
    assert {"type": "string", "format": "date-time"} in schema["received_at"]["anyOf"]
    params = {p["name"]: p["schema"] for p in _app().openapi()["paths"]["/probe"]["post"]["parameters"]}
    assert {"type": "string", "format": "date"} in params["as_of"]["anyOf"]
    assert (params["size"]["type"], params["size"]["minimum"], params["size"]["maximum"]) == (
        "integer", 1, 200)


async def test_body_booleans_are_strict_and_page_sizes_whole(system):
    credit = system.client("credit")
    customer = (await credit.post("/v1/customers", json={"name": "Strict Bools Ltd"})).json()["id"]
    asset = {"kind": "building", "description": "Plant", "value_minor": 1, "currency": "CNY"}
    for loose in (0, 1, "yes", "true"):
        response = await credit.post(f"/v1/customers/{customer}/assets",
                                     json={**asset, "encumbered": loose})
        assert response.status_code == 422, loose
        assert response.json()["errors"][0]["field"] == "encumbered"
    assert (await credit.post(f"/v1/customers/{customer}/assets",
                              json={**asset, "encumbered": True})).status_code == 201
    for limit in ("1.0", "1.5", "true"):
        response = await credit.get(f"/v1/customers?limit={limit}")
        assert response.status_code == 422, limit
        assert response.json()["errors"][0]["field"] == "query.limit"
    assert (await credit.get("/v1/customers?limit=10")).status_code == 200


async def test_text_longer_than_its_limit_is_refused_as_sent_then_trimmed(system):
    credit = system.client("credit")
    customer = (await credit.post("/v1/customers", json={"name": "Padding Ltd"})).json()["id"]
    padded = await credit.post(f"/v1/customers/{customer}/holds",
                               json={"reason": "x" + "\u000b" * 600})
    assert padded.status_code == 422
    assert padded.json()["errors"] == [{"field": "reason",
                                        "message": "String should have at most 500 characters"}]
    optional = await credit.patch(f"/v1/customers/{customer}", json={"registration_no": "9" * 65})
    assert optional.status_code == 422  # Annotated inside `str | None` too
    trimmed = await credit.post(f"/v1/customers/{customer}/holds", json={"reason": "  ok  "})
    assert trimmed.status_code == 201 and trimmed.json()["reason"] == "ok"


@pytest.mark.parametrize(("service", "path", "body", "field"), [
    ("credit", "/v1/customers", {"name": "Nul\u0000Ltd"}, "name"),
    ("credit", "/v1/customers", {"name": "Ok", "contacts": [{"name": "A\u0000"}]}, "contacts"),
    ("notifier", "/v1/webhook-endpoints",
     {"url": "https://hooks.example.com/x", "event_types": ["order.created\u0000"]}, "event_types"),
])
async def test_nul_anywhere_in_a_body_is_refused(system, service, path, body, field):
    response = await system.client(service).post(path, json=body)
    assert response.status_code == 422, response.text
    assert field in {e["field"] for e in response.json()["errors"]}, response.json()


async def test_nul_inside_event_data_is_refused(system):
    from tests.fixtures.notifier import envelope

    event = envelope(system)
    event["data"] = {"note": {"deep": ["x\u0000"]}}
    response = await system.client("notifier", "service").post("/v1/events", json=event)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "data"
