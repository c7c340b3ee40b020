"""Every operation is documented for integrators, and logs carry request ids, never keys."""

from __future__ import annotations

import json
import logging

import pytest

from shared.observability import JsonFormatter
from shared.settings import SERVICES


@pytest.mark.parametrize("service", SERVICES)
async def test_every_operation_is_documented(system, service):
    spec = (await system.client(service, None).get("/openapi.json")).json()
    seen_ids = set()
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            where = f"{method.upper()} {path}"
            assert op["operationId"].startswith(f"{service}_"), where
            assert op["operationId"] not in seen_ids, where
            seen_ids.add(op["operationId"])
            assert op.get("tags"), f"{where} has no tag"
            assert op.get("summary"), f"{where} has no summary"
            if path.startswith("/v1/") and "x-o2c-auth" not in op:  # inbox: signed, not keyed
                assert op.get("description"), f"{where} has no docstring"
                assert op.get("security"), f"{where} declares no bearer security"
                assert "401" in op["responses"] and "403" in op["responses"], where
            if method in ("post", "put", "patch") and "requestBody" in op:
                ref = op["requestBody"]["content"]["application/json"]["schema"]
                name = ref.get("$ref", "").rsplit("/", 1)[-1]
                schema = spec["components"]["schemas"].get(name, ref)
                assert schema.get("examples") or schema.get("example") or any(
                    "examples" in p or "example" in p
                    for p in schema.get("properties", {}).values()), f"{where} has no example"


async def test_log_lines_are_json_with_request_id_and_no_key(system, caplog):
    caplog.set_level(logging.INFO, logger="o2c.access")
    credit = system.client("credit", "credit_manager")
    await credit.get("/v1/customers?limit=5", headers={"X-Request-ID": "trace-log-1"})
    records = [r for r in caplog.records if r.name == "o2c.access"]
    assert records, "no access log line"
    line = json.loads(JsonFormatter().format(records[-1]))
    assert line["request_id"] == "trace-log-1"
    assert line["service"] == "credit"
    assert line["route"] == "/v1/customers" and line["status"] == 200
    assert system.keys["credit_manager"] not in caplog.text


def test_calls_between_services_are_not_logged_again_by_httpx():
    """The callee's access line tells each call; httpx's own INFO line per call (full URL,
    query included) is off, its warnings stay."""
    from shared.observability import configure_logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("httpx").level,
             logging.getLogger("httpcore").level, logging.getLogger("uvicorn.access").disabled)
    try:
        configure_logging("INFO", True)
        for name in ("httpx", "httpcore"):
            assert not logging.getLogger(name).isEnabledFor(logging.INFO)
            assert logging.getLogger(name).isEnabledFor(logging.WARNING)
        configure_logging("ERROR", True)
        assert not logging.getLogger("httpx").isEnabledFor(logging.WARNING)
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        logging.getLogger("httpx").setLevel(saved[2])
        logging.getLogger("httpcore").setLevel(saved[3])
        logging.getLogger("uvicorn.access").disabled = saved[4]
