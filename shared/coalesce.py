"""Coalesced reads: callers asking for one key at once share a fetch that began after they asked.

A burst of events about one customer used to cost one call to the other service each. With
`Coalesced.ask`, a caller joins the fetch of its key that is waiting to start, or queues one to
start when the running fetch ends: every caller gets an answer read after it asked (so it is
at least as new as whatever made it ask), and any number of concurrent callers of a key cost at
most two fetches. An error is every joined caller's error. In-process only: replicas each
coalesce their own callers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class Coalesced(Generic[T]):
    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future[T]] = {}
        self._waiting: dict[Hashable, asyncio.Future[T]] = {}

    async def ask(self, key: Hashable, fetch: Callable[[], Awaitable[T]]) -> T:
        waiting = self._waiting.get(key)
        if waiting is None:
            waiting = asyncio.ensure_future(self._run(key, fetch, self._running.get(key)))
            waiting.add_done_callback(_retrieve)  # if every caller left, nobody else reads it
            self._waiting[key] = waiting
        return await asyncio.shield(waiting)  # one caller giving up does not cancel the others'

    async def _run(self, key: Hashable, fetch: Callable[[], Awaitable[T]],
                   before: asyncio.Future[T] | None) -> T:
        if before is not None:
            await asyncio.wait([before])  # its outcome is its own callers'
        me = self._waiting.pop(key)  # from now on a caller queues a newer fetch
        self._running[key] = me
        try:
            return await fetch()
        finally:
            if self._running.get(key) is me:
                del self._running[key]

    def __len__(self) -> int:
        """Keys with a fetch running or waiting to start."""
        return len(self._running) + len(self._waiting)


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()
