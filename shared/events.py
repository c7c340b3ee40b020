"""The event envelope of DESIGN.md §8, shared by every producer and by notifier."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.clock import Clock

Source = Literal["orders", "credit", "ledger", "notifier"]


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID = Field(description="Unique per event; notifier stores each id once.")
    type: str = Field(min_length=3, max_length=100, pattern=r"^[a-z_]+\.[a-z_]+$",
                      examples=["order.submitted"])
    occurred_at: datetime
    source: Source
    subject: str = Field(min_length=1, max_length=100, description="Id of the resource.")
    data: dict[str, Any] = Field(default_factory=dict)


def new_event(clock: Clock, *, type: str, source: Source, subject: str,
              data: dict[str, Any] | None = None) -> Event:
    return Event(id=uuid.uuid4(), type=type, occurred_at=clock.now(), source=source,
                 subject=str(subject), data=data or {})
