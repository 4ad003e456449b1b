"""``unbound`` lifts a queue's limit, also for a task already waiting to put."""

from __future__ import annotations

import asyncio

from actionrelay.connection import unbound


async def test_unbound_queue_takes_any_number_of_items() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=10)
    unbound(queue)
    for n in range(1000):
        queue.put_nowait(n)
    assert (queue.maxsize, queue.qsize(), queue.full()) == (0, 1000, False)


async def test_a_putter_waiting_on_the_old_limit_gets_through() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
    queue.put_nowait(0)
    waiting = asyncio.create_task(queue.put(1))
    await asyncio.sleep(0)
    assert not waiting.done()
    unbound(queue)
    queue.put_nowait(2)  # no longer full, though a putter still waits
    assert queue.get_nowait() == 0
    await asyncio.wait_for(waiting, 1)
    assert sorted(queue.get_nowait() for _ in range(2)) == [1, 2]
