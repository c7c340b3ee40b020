"""The loop of a queue worker (outbox relay, webhook deliveries, dunning, email): one pass, then
wait until woken, stopped or polled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable


async def poll_loop(once: Callable[[], Awaitable[int]], *, stop: asyncio.Event,
                    wake: asyncio.Event, batch_size: int, poll_seconds: float,
                    log: logging.Logger, what: str) -> None:
    """Run `once` until `stop`; a full batch (`once` returned `batch_size` or more) goes again
    at once, as more may be due; otherwise wait for `wake`, `stop` or `poll_seconds`."""
    while not stop.is_set():
        wake.clear()
        try:
            if await once() >= batch_size:
                continue
        except Exception:
            log.exception("%s cycle failed", what)
        waiter = asyncio.ensure_future(wake.wait())
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({waiter, stopper}, timeout=poll_seconds,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            stopper.cancel()
