"""``lift_size_limit`` relies on asyncio.Queue's private size attribute: a canary."""

from __future__ import annotations

import asyncio

from actionrelay.connection import lift_size_limit


async def test_a_queue_without_its_limit_takes_any_number_of_items() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=10)
    lift_size_limit(queue)
    for n in range(1000):
        await asyncio.wait_for(queue.put(n), 1)
    assert (queue.maxsize, queue.qsize(), queue.full()) == (0, 1000, False)
