"""The loop of a queue worker (outbox relay, webhook deliveries, dunning, email): one pass, then
wait until woken, stopped or polled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from shared.migrations import schema_missing


class SchemaWait:
    """A worker whose database is not migrated yet says so once, in one line without a
    traceback, and once more when it can work again; `failed` tells whether it was that."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self.log, self.what, self.waiting = log, what, False

    def failed(self, exc: BaseException) -> bool:
        if not schema_missing(exc):
            return False
        if not self.waiting:
            self.waiting = True
            orig = getattr(exc, "orig", exc)
            self.log.warning("%s waits: the database is not migrated (%s); run `o2c migrate`",
                             self.what, str(orig).splitlines()[0][:200] if str(orig) else "")
        return True

    def succeeded(self) -> None:
        if self.waiting:
            self.waiting = False
            self.log.warning("%s resumes: the database is migrated", self.what)


async def poll_loop(once: Callable[[], Awaitable[int]], *, stop: asyncio.Event,
                    wake: asyncio.Event, batch_size: int, poll_seconds: float,
                    log: logging.Logger, what: str) -> None:
    """Run `once` until `stop`; a full batch (`once` returned `batch_size` or more) goes again
    at once, as more may be due; otherwise wait for `wake`, `stop` or `poll_seconds`."""
    waiting = SchemaWait(log, what)
    while not stop.is_set():
        wake.clear()
        try:
            done = await once()
        except Exception as exc:
            if not waiting.failed(exc):
                log.exception("%s cycle failed", what)
        else:
            waiting.succeeded()
            if done >= batch_size:
                continue
        waiter = asyncio.ensure_future(wake.wait())
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({waiter, stopper}, timeout=poll_seconds,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            stopper.cancel()
