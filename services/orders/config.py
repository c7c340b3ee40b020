"""Settings of the orders service (env prefix `O2C_`)."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any, ClassVar

from pydantic import field_validator
from pydantic_settings import NoDecode

from shared.settings import BaseServiceSettings

# The departments that may give an opinion on an order; each is also the role a reviewer holds.
DEPARTMENTS = ("sales", "production", "technical", "quality", "finance")


def _list_from_env(value: Any) -> Any:
    """A JSON list (`["a","b"]`) or a comma-separated string (`a,b`) from the environment."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class OrdersSettings(BaseServiceSettings):
    service_name: ClassVar[str] = "orders"
    orders_database_url: str | None = None

    # Review deadline: submission + N working days, skipping weekends and these holidays.
    review_sla_working_days: int = 3
    holidays: Annotated[list[date], NoDecode] = []
    # The departments whose approval an order needs (`O2C_REVIEW_DEPARTMENTS`).
    review_departments: Annotated[list[str], NoDecode] = list(DEPARTMENTS)

    # Background workers: ask credit again for pending reservations; report late reviews.
    credit_retry_seconds: float = 30.0
    review_sla_scan_seconds: float = 900.0
    # Steps that wait for credit or ledger (steps.py): how often the recovery worker looks, how
    # long a live request has before the worker may take its step over, the longest wait
    # between attempts, and how long one worker's claim on a step lasts.
    step_recovery_seconds: float = 5.0
    step_grace_seconds: float = 10.0
    step_backoff_max_seconds: float = 30.0
    step_lease_seconds: float = 60.0

    @field_validator("holidays", "review_departments", mode="before")
    @classmethod
    def _parse_list(cls, value: Any) -> Any:
        return _list_from_env(value)

    @field_validator("review_departments")
    @classmethod
    def _known_departments(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(DEPARTMENTS))
        if unknown:
            raise ValueError(f"unknown review departments {unknown}; choose from {list(DEPARTMENTS)}")
        if not value:
            raise ValueError("at least one review department is required")
        return list(dict.fromkeys(value))
