"""The dunning policy as data: its levels, the default of DESIGN.md §7, which level an
`invoice.overdue` threshold falls under, template placeholders and rendering, and the
late-payment interest of a level. Pure functions; no I/O.

Templates use `string.Template` syntax (`$name` or `${name}`) and are rendered with
`safe_substitute`, so a figure missing at send time stays visible as `$name` instead of
failing; an unknown placeholder is refused when the policy is saved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from string import Template
from typing import Any

from shared.money import major_units


class RecipientRole(StrEnum):
    salesperson = "salesperson"
    finance = "finance"
    decision_maker = "decision_maker"
    key_person = "key_person"
    general_manager = "general_manager"
    legal = "legal"


class Channel(StrEnum):
    webhook = "webhook"
    email = "email"


PLACEHOLDERS: dict[str, str] = {
    "invoice_id": "the invoice's id",
    "invoice_number": "the invoice's number, e.g. INV-000045",
    "amount": "the invoiced amount with its currency, e.g. CNY 1,250.00",
    "outstanding": "what is still owed, with its currency",
    "currency": "ISO 4217 code",
    "due_date": "YYYY-MM-DD",
    "days_overdue": "days past the due date, as of the scan",
    "level": "the policy level",
    "customer_id": "the customer's id",
    "customer_name": "the customer's name",
    "customer_number": "the customer's number",
    "salesperson_id": "the salesperson's id",
    "salesperson_name": "the salesperson's name (from the directory)",
    "recipient_name": "the addressee's name",
    "recipient_role": "salesperson, finance, key_person, decision_maker, general_manager or legal",
}

DEFAULT_SUBJECT = "Payment reminder: invoice ${invoice_number} is ${days_overdue} days overdue"
_CLOSING = "\n\nIf payment has been made in the meantime, please disregard this reminder.\n\n" \
           "${salesperson_name}, on behalf of the collections desk"


def _letter(middle: str) -> str:
    return ("Dear ${recipient_name},\n\nInvoice ${invoice_number} to ${customer_name} for ${amount} "
            "was due on ${due_date} and is now ${days_overdue} days overdue; ${outstanding} "
            "remains outstanding. " + middle + _CLOSING)


_EVERYONE = ["salesperson", "finance"]
DEFAULT_LEVELS: list[dict[str, Any]] = [
    {"level": 1, "days_overdue": 1, "recipients": _EVERYONE, "channels": ["webhook", "email"],
     "subject": DEFAULT_SUBJECT,
     "template": _letter("Please arrange payment at your earliest convenience.")},
    {"level": 2, "days_overdue": 15, "recipients": [*_EVERYONE, "key_person"],
     "channels": ["webhook", "email"], "subject": DEFAULT_SUBJECT,
     "template": _letter("This is our second reminder; please tell us when payment will be made.")},
    {"level": 3, "days_overdue": 30, "recipients": [*_EVERYONE, "key_person", "general_manager"],
     "channels": ["webhook", "email"],
     "subject": "Escalation: invoice ${invoice_number} is ${days_overdue} days overdue",
     "template": _letter("We are copying this reminder to your management and ask for a written "
                         "undertaking of payment with a date.")},
    {"level": 4, "days_overdue": 60,
     "recipients": [*_EVERYONE, "key_person", "general_manager", "legal"],
     "channels": ["webhook", "email"],
     "subject": "Final notice: invoice ${invoice_number} is ${days_overdue} days overdue",
     "template": _letter("Unless the amount is paid within 7 days we will hand the matter to our "
                         "legal department.")},
]


def template_problems(text: str) -> list[str]:
    """Why `text` is not a usable template (bad `$` syntax, unknown placeholders), if at all."""
    template = Template(text)
    if not template.is_valid():
        return ["invalid placeholder syntax: use $name or ${name}, and $$ for a dollar sign"]
    unknown = sorted(set(template.get_identifiers()) - set(PLACEHOLDERS))
    if unknown:
        return [f"unknown placeholder(s): {', '.join(unknown)}; known: {', '.join(PLACEHOLDERS)}"]
    return []


def render(text: str, figures: dict[str, Any]) -> str:
    return Template(text).safe_substitute({k: "" if v is None else str(v) for k, v in figures.items()})


def level_for(levels: Sequence[dict[str, Any]], threshold_days: int) -> dict[str, Any] | None:
    """The level with the greatest `days_overdue` at or below the event's threshold, if any.

    A threshold beyond the last level (say 90 with levels up to 60) falls under the last one,
    whose recipients are notified again for that step.
    """
    eligible = [lvl for lvl in levels if lvl["days_overdue"] <= threshold_days]
    return max(eligible, key=lambda lvl: lvl["days_overdue"]) if eligible else None


# money

def format_money(amount_minor: int, currency: str) -> str:
    """`CNY 1,250.00` from 125000 minor units (a letter puts the currency first)."""
    return f"{currency} {major_units(amount_minor, currency)}"


def interest_minor(outstanding_minor: int, annual_rate: Decimal, days: int) -> int:
    """outstanding × rate × days / 365, rounded half-even to a whole minor unit."""
    raw = Decimal(outstanding_minor) * annual_rate * Decimal(days) / Decimal(365)
    return int(raw.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


@dataclass(frozen=True)
class Figures:
    """What a template can mention, gathered once per invoice and recipient."""

    invoice_id: str
    invoice_number: str
    amount_minor: int
    outstanding_minor: int
    currency: str
    due_date: date
    days_overdue: int
    level: int
    customer_id: str
    customer_name: str | None
    customer_number: str | None
    salesperson_id: str | None
    salesperson_name: str | None

    def for_recipient(self, role: str, name: str | None) -> dict[str, Any]:
        return {
            "invoice_id": self.invoice_id, "invoice_number": self.invoice_number,
            "amount": format_money(self.amount_minor, self.currency),
            "outstanding": format_money(self.outstanding_minor, self.currency),
            "currency": self.currency, "due_date": self.due_date.isoformat(),
            "days_overdue": self.days_overdue, "level": self.level,
            "customer_id": self.customer_id, "customer_name": self.customer_name or "",
            "customer_number": self.customer_number or "",
            "salesperson_id": self.salesperson_id or "",
            "salesperson_name": self.salesperson_name or self.salesperson_id or "",
            "recipient_name": name or role.replace("_", " "), "recipient_role": role,
        }
