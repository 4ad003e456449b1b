"""The ack batcher's rules: never ack what is not settled; few frames; no long waits."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from aiormq.abc import AbstractChannel

from actionrelay.broker.acks import AckBatcher
from tests.unit.support import RecordedAcks


def batcher(**options: float) -> tuple[AckBatcher, RecordedAcks]:
    channel = RecordedAcks()
    return AckBatcher(cast(AbstractChannel, channel), **options), channel


async def test_settled_in_order_are_acked_with_one_multiple_frame() -> None:
    acks, channel = batcher()
    for tag in range(1, 6):
        acks.delivered(tag)
    for tag in range(1, 6):
        acks.settle(tag)
    await asyncio.sleep(0.01)
    assert channel.frames == [(5, True)]


async def test_nothing_unsettled_is_ever_acked() -> None:
    acks, channel = batcher(straggler_seconds=10)
    for tag in range(1, 6):
        acks.delivered(tag)
    for tag in (1, 2, 4, 5):
        acks.settle(tag)
    await asyncio.sleep(0.01)
    assert channel.frames == [(2, True)]  # 3 is still out, so 4 and 5 wait
    acks.settle(3)
    await asyncio.sleep(0.01)
    assert channel.frames == [(2, True), (5, True)]


async def test_a_slow_predecessor_does_not_hold_settled_ones_for_long() -> None:
    acks, channel = batcher(straggler_seconds=0.02)
    for tag in range(1, 4):
        acks.delivered(tag)
    acks.settle(2)
    acks.settle(3)
    await asyncio.sleep(0.06)
    assert sorted(channel.frames) == [(2, False), (3, False)]
    acks.settle(1)
    await asyncio.sleep(0.01)
    # Only 1 is still outstanding: naming 3 again would make RabbitMQ close the channel.
    assert channel.frames[-1] == (1, True)


async def test_a_nacked_delivery_no_longer_blocks_the_others() -> None:
    acks, channel = batcher(straggler_seconds=10)
    for tag in (1, 2):
        acks.delivered(tag)
    acks.forget(1)
    acks.settle(2)
    await asyncio.sleep(0.01)
    assert channel.frames == [(2, True)]


async def test_a_nack_after_later_deliveries_settled_still_acks_them() -> None:
    acks, channel = batcher(straggler_seconds=10)
    for tag in (1, 2, 3):
        acks.delivered(tag)
    acks.settle(2)
    acks.settle(3)
    acks.forget(1)
    await asyncio.sleep(0.01)
    assert channel.frames == [(3, True)]


async def test_drain_sends_everything_settled_now() -> None:
    acks, channel = batcher(flush_seconds=10, straggler_seconds=10)
    for tag in (1, 2, 3):
        acks.delivered(tag)
    acks.settle(1)
    acks.settle(3)
    await acks.drain()
    assert sorted(channel.frames) == [(1, True), (3, False)]


async def test_a_closed_channel_gets_no_frames() -> None:
    acks, channel = batcher()
    channel.is_closed = True
    acks.delivered(1)
    acks.settle(1)
    await asyncio.sleep(0.01)
    assert channel.frames == []


class SlowSingleAcks(RecordedAcks):
    """A channel where a single ack takes a while to go out (a busy connection)."""

    async def basic_ack(self, delivery_tag: int, multiple: bool = False, **_: Any) -> None:
        if not multiple:
            await asyncio.sleep(0.03)
        self.frames.append((delivery_tag, multiple))


async def test_a_multiple_ack_never_overtakes_an_earlier_single_ack() -> None:
    channel = SlowSingleAcks()
    acks = AckBatcher(cast(AbstractChannel, channel), straggler_seconds=0.01)
    for tag in (1, 2, 3):
        acks.delivered(tag)
    acks.settle(2)
    await asyncio.sleep(0.02)  # 2 goes out alone, slowly
    acks.settle(1)
    acks.settle(3)
    await asyncio.sleep(0.1)
    # The broker must see 2 acked before a multiple ack that names 3 and covers 2.
    assert channel.frames == [(2, False), (3, True)]
