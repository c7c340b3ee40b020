"""shared.coalesce: concurrent asks for one key share a fetch begun after each of them asked."""

from __future__ import annotations

import asyncio

import pytest

from shared.coalesce import Coalesced


class Source:
    """A fetch that counts its calls and answers when released, with the version it read."""

    def __init__(self) -> None:
        self.version = 0
        self.calls = 0
        self.gate = asyncio.Event()

    async def fetch(self) -> int:
        self.calls += 1
        seen = self.version
        await self.gate.wait()
        return seen


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_burst_costs_two_fetches_and_each_answer_is_newer_than_its_ask():
    asks: Coalesced[int] = Coalesced()
    source = Source()
    first = asyncio.create_task(asks.ask("c1", source.fetch))
    await _settle()  # the first fetch runs, having read version 0
    source.version = 1  # then the data changes, and ten events about it arrive
    burst = [asyncio.create_task(asks.ask("c1", source.fetch)) for _ in range(10)]
    await _settle()
    assert source.calls == 1  # the burst waits for the running fetch to end
    source.gate.set()
    assert await first == 0
    assert await asyncio.gather(*burst) == [1] * 10  # one more fetch, begun after they asked
    assert source.calls == 2
    assert len(asks) == 0


async def test_keys_do_not_wait_for_each_other():
    asks: Coalesced[str] = Coalesced()
    gate = asyncio.Event()

    async def slow() -> str:
        await gate.wait()
        return "slow"

    async def quick() -> str:
        return "quick"

    held = asyncio.create_task(asks.ask("a", slow))
    assert await asyncio.wait_for(asks.ask("b", quick), timeout=1) == "quick"
    gate.set()
    assert await held == "slow"


async def test_an_error_reaches_every_joined_caller_and_the_next_ask_tries_again():
    asks: Coalesced[int] = Coalesced()
    gate = asyncio.Event()
    calls = 0

    async def failing() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        raise ConnectionError("ledger down")

    callers = [asyncio.create_task(asks.ask("c1", failing)) for _ in range(3)]
    await _settle()
    gate.set()
    for caller in callers:
        with pytest.raises(ConnectionError):
            await caller
    assert calls == 1

    async def ok() -> int:
        return 7

    assert await asks.ask("c1", ok) == 7


async def test_a_caller_that_gives_up_does_not_cancel_the_others():
    asks: Coalesced[int] = Coalesced()
    source = Source()
    leaving = asyncio.create_task(asks.ask("c1", source.fetch))
    staying = asyncio.create_task(asks.ask("c1", source.fetch))
    await _settle()
    leaving.cancel()
    source.gate.set()
    assert await staying == 0
    assert source.calls == 1
