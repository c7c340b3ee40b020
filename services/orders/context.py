"""What the orders routes, use cases, workers and event handlers need besides the session."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from services.orders.clients import CreditClient, LedgerClient
from services.orders.config import OrdersSettings
from services.orders.lifecycle import Effects
from shared.clock import Clock
from shared.db import Database
from shared.http import ServiceHttp
from shared.outbox import Outbox


@dataclass(frozen=True)
class OrdersContext:
    """Made once at start-up (`app.build_context`) and kept on `app.state.context`.

    The clients are made over the app's current `ServiceHttp` when asked for (they hold
    nothing else), so a test that reroutes `app.state.http` reroutes them too.
    """

    db: Database
    outbox: Outbox
    clock: Clock
    settings: OrdersSettings
    keys: Table  # idempotency_keys: a step answers for the request that began it
    http: Callable[[], ServiceHttp]

    @property
    def credit(self) -> CreditClient:
        return CreditClient(self.http())

    @property
    def ledger(self) -> LedgerClient:
        return LedgerClient(self.http())

    def effects(self, session: AsyncSession, actor: str) -> Effects:
        """What the order machine's effects need, for one transaction and who acts."""
        return Effects(session=session, outbox=self.outbox, clock=self.clock, actor=actor,
                       review_sla_working_days=self.settings.review_sla_working_days,
                       holidays=tuple(self.settings.holidays))
