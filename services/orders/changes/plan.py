"""The plan of a change request: its change set checked against an order, as strictly as a
new order (every problem at once, with paths like `changes.lines[0].quantity`), and the
differences it makes (`{field, from, to}`, per line with `line_id` and `position`).

Pure: nothing is read or written here. The change-request machine (`lifecycle.py`) plans again
at apply, against the order as it is then (`change_fits_deliveries`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from services.orders import lifecycle
from services.orders.machine import Refusal
from services.orders.models import Order
from services.orders.schemas import ChangeSet
from shared.money import MAX_MINOR, line_total

LINE_FIELDS = ("quantity", "unit_price_minor", "specification", "quality_standard")
TERM_FIELDS = ("delivery_date", "delivery_place", "payment_terms_days")
Q = Decimal("0.001")


# --- The plan: what a change set does to an order -----------------------------------------


@dataclass
class ChangePlan:
    """A change set checked against an order: the problems, or the new terms and differences."""

    errors: list[dict[str, str]] = field(default_factory=list)
    line_updates: dict[str, dict[str, Any]] = field(default_factory=dict)  # line id → new values
    additions: list[dict[str, Any]] = field(default_factory=list)
    removals: list[str] = field(default_factory=list)
    terms: dict[str, Any] = field(default_factory=dict)
    total_minor: int = 0
    differences: list[dict[str, Any]] = field(default_factory=list)


def _text(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value.quantize(Q))
    if isinstance(value, date):
        return value.isoformat()
    return value


def _line_terms(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _text(values.get(k)) for k in ("sku", "name", "specification", "quantity",
                                                "unit_price_minor", "quality_standard", "total_minor")}


def plan_change(order: Order, changes: ChangeSet, *, today: date | None) -> ChangePlan:
    """Check `changes` against `order` as strictly as a new order; lists every problem at once.

    `today` None skips the delivery date's check (at apply: the agreement was signed on it).
    """
    plan = ChangePlan()

    def fail(path: str, message: str) -> None:
        plan.errors.append({"field": path, "message": message})

    lines = {line.id: line for line in order.lines}
    if changes.payment_method is not None and changes.payment_method != order.payment_method:
        fail("changes.payment_method", "cannot change after approval: the order's credit (or its "
             "prepaid invoice) follows it; cancel the order and place a new one")
    removed: dict[str, int] = {}
    for k, line_id in enumerate(changes.remove_lines):
        line = lines.get(line_id)
        if line is None:
            fail(f"changes.remove_lines[{k}]", "not a line of this order")
        elif line_id in removed:
            fail(f"changes.remove_lines[{k}]", "listed twice")
        elif line.delivered_quantity > 0:
            fail(f"changes.remove_lines[{k}]", f"line {line.position} was delivered "
                 f"({line.delivered_quantity.quantize(Q)}); it cannot be removed")
        else:
            removed[line_id] = k
    sources: dict[str, str] = {}  # line id → the path that changed it
    for k, change in enumerate(changes.lines):
        path = f"changes.lines[{k}]"
        line = lines.get(change.line_id)
        if line is None:
            fail(f"{path}.line_id", "not a line of this order")
            continue
        if change.line_id in sources:
            fail(f"{path}.line_id", "listed twice")
            continue
        if change.line_id in removed:
            fail(f"{path}.line_id", "also listed in remove_lines")
            continue
        sources[change.line_id] = path
        given = change.model_dump(exclude_unset=True, exclude={"line_id"})
        if not given:
            fail(path, "changes nothing: give quantity, unit_price_minor, specification or "
                 "quality_standard")
            continue
        nulls = [f for f in ("quantity", "unit_price_minor") if f in given and given[f] is None]
        for f in nulls:
            fail(f"{path}.{f}", "may not be null")
        if nulls:
            continue
        if "quantity" in given and given["quantity"] < line.delivered_quantity:
            fail(f"{path}.quantity", f"must be at least the {line.delivered_quantity.quantize(Q)} "
                 "already delivered")
            continue
        plan.line_updates[line.id] = {f: v for f, v in given.items() if getattr(line, f) != v}
    for f in TERM_FIELDS:
        if f in changes.model_fields_set:
            value = getattr(changes, f)
            if value is None:
                fail(f"changes.{f}", "may not be null")
            elif value != getattr(order, f):
                plan.terms[f] = value
    if today is not None and changes.delivery_date is not None and changes.delivery_date < today:
        fail("changes.delivery_date", f"must be {today.isoformat()} or later")
    if plan.errors:
        return plan

    # The order as it would be: lines kept (with their changes) then the added ones.
    candidate_lines: list[tuple[str, SimpleNamespace]] = []
    total = 0
    for line in order.lines:
        if line.id in removed:
            plan.removals.append(line.id)
            continue
        values = {f: getattr(line, f) for f in ("sku", "name", *LINE_FIELDS)}
        values.update(plan.line_updates.get(line.id, {}))
        values["total_minor"] = line_total(values["quantity"], values["unit_price_minor"])
        candidate_lines.append((sources.get(line.id, f"lines[{line.position}]"), SimpleNamespace(**values)))
    next_position = max((line.position for line in order.lines), default=0) + 1
    for k, added in enumerate(changes.add_lines):
        values = added.model_dump()
        values["total_minor"] = line_total(added.quantity, added.unit_price_minor)
        values["position"] = next_position + k
        plan.additions.append(values)
        candidate_lines.append((f"changes.add_lines[{k}]", SimpleNamespace(**values)))
    for path, line in candidate_lines:
        if line.total_minor > MAX_MINOR:
            fail(path, f"quantity × unit_price_minor exceeds {MAX_MINOR} minor units")
        total += line.total_minor
    if not plan.errors and total > MAX_MINOR:
        fail("changes", f"order total exceeds {MAX_MINOR} minor units")
    plan.total_minor = total
    candidate = SimpleNamespace(
        lines=[line for _, line in candidate_lines], currency=order.currency,
        payment_method=order.payment_method,
        payment_terms_days=plan.terms.get("payment_terms_days", order.payment_terms_days),
        delivery_date=plan.terms.get("delivery_date", order.delivery_date),
        delivery_place=plan.terms.get("delivery_place", order.delivery_place))
    refusal = lifecycle.preliminary_check_passed.check(
        candidate, lifecycle.Facts(today=today))  # type: ignore[arg-type]
    for error in (refusal.errors or []) if isinstance(refusal, Refusal) else []:
        fail(_change_path(error["field"], candidate_lines), error["message"])
    if plan.errors:
        return plan
    plan.differences = _differences(order, plan)
    if not plan.differences:
        fail("changes", "changes nothing: every value given equals the order's current terms")
    return plan


def _change_path(field_path: str, candidate_lines: list[tuple[str, Any]]) -> str:
    """The preliminary check's path on the candidate order, as a path in the change request."""
    if field_path == "lines":
        return "changes.remove_lines"
    if field_path.startswith("lines["):
        index, _, rest = field_path[len("lines["):].partition("]")
        return candidate_lines[int(index)][0] + rest
    return f"changes.{field_path}"


def _differences(order: Order, plan: ChangePlan) -> list[dict[str, Any]]:
    """`{field, from, to}` for each term, and per line (with `line_id`, `position`)."""
    diffs: list[dict[str, Any]] = [
        {"field": f, "from": _text(getattr(order, f)), "to": _text(v)} for f, v in plan.terms.items()]
    for line in order.lines:
        where = {"line_id": line.id, "position": line.position}
        if line.id in plan.removals:
            old = {f: getattr(line, f) for f in ("sku", "name", *LINE_FIELDS, "total_minor")}
            diffs.append({**where, "field": "line", "from": _line_terms(old), "to": None})
            continue
        updates = plan.line_updates.get(line.id)
        if not updates:
            continue
        diffs += [{**where, "field": f, "from": _text(getattr(line, f)), "to": _text(v)}
                  for f, v in updates.items()]
        new_total = line_total(updates.get("quantity", line.quantity),
                               updates.get("unit_price_minor", line.unit_price_minor))
        if new_total != line.total_minor:
            diffs.append({**where, "field": "total_minor", "from": line.total_minor, "to": new_total})
    diffs += [{"line_id": added.get("id"), "position": added["position"], "field": "line",
               "from": None, "to": _line_terms(added)} for added in plan.additions]
    if plan.total_minor != order.total_minor:
        diffs.append({"field": "total_minor", "from": order.total_minor, "to": plan.total_minor})
    return diffs


def amount_changes(order: Order, plan: ChangePlan) -> bool:
    return plan.total_minor != order.total_minor
