"""Run by tests/e2e/test_generated_client.py in the generator's own venv (not by pytest):
the clients openapi-python-client made from the live specs, used as an integrator would.

argv: orders URL, credit URL, JSON of the printed keys. Prints one JSON object of findings;
the test asserts on them. Every call goes through the generated functions and models.
"""

from __future__ import annotations

import datetime
import json
import sys
import uuid

from o2c_credit_client import AuthenticatedClient as CreditClient
from o2c_credit_client.api.customers import credit_create_customer
from o2c_credit_client.models import CustomerCreate
from o2c_orders_client import AuthenticatedClient as OrdersClient
from o2c_orders_client.api.lifecycle import orders_approve_order, orders_submit_order
from o2c_orders_client.api.orders import orders_create_order, orders_get_order, orders_update_order
from o2c_orders_client.models import (
    OrderCreate,
    OrderLineIn,
    OrderPublic,
    OrderState,
    OrderUpdate,
    PaymentMethod,
    ProblemBody,
)


def problem(parsed: object) -> dict[str, object]:
    assert isinstance(parsed, ProblemBody), f"not parsed into ProblemBody: {parsed!r}"
    errors = parsed.errors if isinstance(parsed.errors, list) else []
    return {"status": parsed.status, "code": parsed.code, "guard": parsed.guard or None,
            "reason": parsed.reason or None, "type": parsed.type_,
            "errors": [{"field": e.field, "message": e.message} for e in errors]}


def main() -> None:
    orders_url, credit_url, keys = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    orders = OrdersClient(base_url=orders_url, token=keys["sales"])
    credit = CreditClient(base_url=credit_url, token=keys["credit-manager"])
    found: dict[str, object] = {}

    customer = credit_create_customer.sync(client=credit, body=CustomerCreate(
        name="Generated Client Ltd", salesperson_id="S-ALICE"))
    found["customer_type"] = type(customer).__name__

    missing = orders_get_order.sync_detailed(str(uuid.uuid4()), client=orders)
    found["404"] = problem(missing.parsed)

    body = OrderCreate(
        customer_id=customer.id, currency="CNY", payment_method=PaymentMethod.CREDIT,
        payment_terms_days=30, delivery_date=datetime.date.today() + datetime.timedelta(days=30),
        delivery_place="Shenzhen warehouse 3",
        lines=[OrderLineIn(sku="PCB-1", name="Controller board", quantity="10",
                           unit_price_minor=12550)])
    key = f"gen-{uuid.uuid4()}"
    first = orders_create_order.sync_detailed(client=orders, body=body, idempotency_key=key)
    again = orders_create_order.sync_detailed(client=orders, body=body, idempotency_key=key)
    assert isinstance(first.parsed, OrderPublic), first.content
    order = first.parsed
    found["created"] = first.status_code
    found["replayed"] = [again.headers.get("idempotent-replayed"),
                         again.parsed.id == order.id if isinstance(again.parsed, OrderPublic)
                         else None]
    found["state"] = [type(order.state).__name__, order.state == OrderState.DRAFT]
    found["etag"] = first.headers.get("etag")

    stale = orders_update_order.sync_detailed(order.id, client=orders, if_match='"7"',
                                              body=OrderUpdate(delivery_place="Dock 9"))
    found["412"] = problem(stale.parsed)

    invalid = orders_update_order.sync_detailed(order.id, client=orders,
                                                body=OrderUpdate(payment_terms_days=-5))
    found["422"] = problem(invalid.parsed)

    submitted = orders_submit_order.sync_detailed(order.id, client=orders, if_match=found["etag"])
    assert isinstance(submitted.parsed, OrderPublic), submitted.content
    found["submitted"] = submitted.parsed.state == OrderState.IN_REVIEW
    # No department has reviewed it yet: approving is refused by a guard.
    refused = orders_approve_order.sync_detailed(order.id, client=orders)
    found["409"] = problem(refused.parsed)
    print(json.dumps(found))


if __name__ == "__main__":
    main()
