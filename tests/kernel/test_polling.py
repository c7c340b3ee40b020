"""The loop queue workers share: a full batch goes again, a wake ends the wait, a stop ends it."""

from __future__ import annotations

import asyncio
import logging

from shared.polling import poll_loop

log = logging.getLogger("test.polling")


async def test_full_batches_go_again_and_a_wake_ends_the_wait():
    stop, wake = asyncio.Event(), asyncio.Event()
    results = [2, 2, 0, 1]  # two full batches of 2, then an idle pass, then one after a wake
    calls = []

    async def once() -> int:
        calls.append(len(calls))
        if len(calls) == len(results):
            stop.set()
        return results[len(calls) - 1]

    task = asyncio.create_task(poll_loop(once, stop=stop, wake=wake, batch_size=2,
                                         poll_seconds=60, log=log, what="test"))
    for _ in range(50):
        await asyncio.sleep(0)
    assert len(calls) == 3  # waiting after the idle pass, not polling again
    wake.set()
    await asyncio.wait_for(task, timeout=5)
    assert len(calls) == 4


async def test_a_failing_pass_is_logged_and_the_stop_ends_the_wait(caplog):
    stop, wake = asyncio.Event(), asyncio.Event()

    async def once() -> int:
        raise RuntimeError("boom")

    task = asyncio.create_task(poll_loop(once, stop=stop, wake=wake, batch_size=1,
                                         poll_seconds=60, log=log, what="test"))
    for _ in range(20):
        await asyncio.sleep(0)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert "test cycle failed" in caplog.text
