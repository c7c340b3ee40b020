"""The order's `credit` block: what credit said about the order's reservation, as the order keeps it.

`status` is credit's decision (`reserved`, `requires_guarantee`, `rejected`, …) or the order's
own (`pending` while credit has not answered, `not_required` for prepaid and free orders,
`released`, `converted`); `reservation_id` and `reasons` come with it. The machine's guards and
effects and the steps read and build it through these functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.orders.clients import CreditAnswer
from services.orders.models import CreditStatus, Order, PaymentMethod

if TYPE_CHECKING:
    from services.orders.lifecycle import Facts


def holds_reservation(credit: dict[str, Any]) -> bool:
    """Credit holds an amount for the order (only a `reserved` decision holds credit)."""
    return bool(credit.get("reservation_id")) and credit.get("status") == CreditStatus.reserved


def credit_block(answer: CreditAnswer) -> dict[str, Any]:
    """The order's `credit` block for one answer of credit."""
    return {"status": answer.decision, "reservation_id": answer.id, "reasons": list(answer.reasons)}


def pending_block(request_key: str) -> dict[str, Any]:
    """Credit has not answered yet; `request_key` is the idempotency key to ask again with."""
    return {"status": CreditStatus.pending.value, "reservation_id": None, "reasons": [],
            "request_key": request_key}


def reservation_key(order: Order) -> str:
    """The idempotency key of the reservation asked for at submit (one per revision)."""
    return f"reserve:{order.id}:r{order.revision}"


def needs_reservation(order: Order) -> bool:
    """Credit orders with something to pay reserve credit; prepaid and free orders do not."""
    return order.payment_method == PaymentMethod.credit and order.total_minor != 0


def not_required_block() -> dict[str, Any]:
    return {"status": CreditStatus.not_required.value, "reservation_id": None, "reasons": []}



def current_credit(order: Order, facts: Facts) -> dict[str, Any]:
    """The credit block a trigger looks at: the answer gathered for it, else the order's own."""
    return facts.credit if facts.credit is not None else (order.credit or {})
