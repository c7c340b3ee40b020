"""What a fired order transition writes besides the order: the `order.*` event and history's reason.

`order_event` is the envelope every order event shares (change requests' events too);
`event_extra` adds what the row's destination tells (the credit block on approval, the reasons
on rejection, the invoice on settle, …); `transition_reason` is the `order_history` row's
reason. The machine's runner (`lifecycle`) calls them after each fired transition.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.orders.credit_blocks import current_credit
from services.orders.machine import api_name
from services.orders.models import CreditStatus, Order, OrderState
from services.orders.terms import settlement_amount
from shared.clock import Clock
from shared.events import Event, new_event

if TYPE_CHECKING:
    from services.orders.lifecycle import Facts, Opinion, Row


def order_event(clock: Clock, type_: str, order: Order, **extra: Any) -> Event:
    """An `order.*` event with the fields every order event carries."""
    return new_event(clock, type=type_, source="orders", subject=order.id, data={
        "order_id": order.id, "number": order.number, "customer_id": order.customer_id,
        "salesperson_id": order.salesperson_id, "total_minor": order.total_minor,
        "currency": order.currency, **extra})


def rejection_reasons(order: Order, facts: Facts) -> list[dict[str, str]]:
    """Why the order is rejected: every rejecting department's comment, and credit's reasons."""
    reasons = [{"source": o.department, "reason": o.comment or "rejected without a comment"}
               for d in facts.required_departments or sorted(facts.opinions)
               if (o := facts.opinions.get(d)) is not None and o.decision == "reject"]
    credit = current_credit(order, facts)
    if credit.get("status") == CreditStatus.rejected:
        reasons += [{"source": "credit", "reason": r} for r in credit.get("reasons") or []] or [
            {"source": "credit", "reason": "credit refused the reservation"}]
    return reasons


def transition_reason(r: Row, order: Order, facts: Facts, kwargs: dict[str, Any]) -> str | None:
    """The `order_history` row's reason: who decided what, credit's answer, or the caller's."""
    if r.dest == OrderState.rejected:
        return "; ".join(f"{x['source']}: {x['reason']}" for x in rejection_reasons(order, facts))
    opinion: Opinion | None = kwargs.get("opinion")
    if opinion is not None:
        said = f": {opinion.comment}" if opinion.comment else ""
        return f"{opinion.department} {opinion.decision}{said}"
    if r.trigger == "credit_recheck":
        credit = current_credit(order, facts)
        return f"credit {credit.get('status')}" + (
            f": {'; '.join(credit['reasons'])}" if credit.get("reasons") else "")
    return kwargs.get("reason")


def event_extra(r: Row, order: Order, facts: Facts, kwargs: dict[str, Any],
                from_state: str) -> dict[str, Any]:
    """The row's event data besides `order_event`'s: the step it made and what it produced."""
    extra: dict[str, Any] = {"revision": order.revision, "state": order.state,
                             "previous_state": from_state, "trigger": api_name(r.trigger)}
    credit = order.credit or {}
    if r.dest in (OrderState.in_review, OrderState.approved):
        extra["credit"] = {"status": credit.get("status"), "reservation_id": credit.get("reservation_id")}
    if r.dest == OrderState.in_review and order.review_due_at is not None:
        extra["review_due_at"] = order.review_due_at.isoformat()
        extra["departments"] = list(facts.required_departments)
    if r.dest == OrderState.rejected:
        extra["reasons"] = rejection_reasons(order, facts)
    if r.dest == OrderState.contracted:
        extra["contract_number"] = order.contract_number
        extra["signed_at"] = order.contract_signed_at.isoformat() if order.contract_signed_at else None
        extra["invoice_id"] = order.invoice_id
    if r.dest == OrderState.invoiced:
        extra["invoice_id"] = order.invoice_id
        extra["amount_minor"] = settlement_amount(order)
        extra["due_date"] = kwargs["due_date"].isoformat()
    if r.dest == OrderState.closed:
        extra["invoice_id"] = order.invoice_id
    if r.dest == OrderState.cancelled:
        extra["reason"] = kwargs.get("reason")
        extra["reservation_released"] = credit.get("status") == "released"
    return extra

