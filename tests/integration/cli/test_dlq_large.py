"""The dlq tools on a queue too big for one consumer's prefetch (AMQP caps it at 65,535).

With more ready letters than that, the reader used to set prefetch 0 and a quorum
queue then handed one consumer 2,000 messages: ``dlq stats`` counted 2,000 of
66,000 and exited 0. The letters are published with confirms in big batches so
the test stays fast.
"""

from __future__ import annotations

import orjson
import pytest
from aio_pika.abc import AbstractChannel

from actionrelay.broker.dlq import DeadLetterQueue
from actionrelay.core.deadletter import DeadLetter
from actionrelay.core.triage import DeadLetterFilter
from tests.integration.ops_support import (
    dead_letter,
    dlq_args,
    publish_all,
    run_cli,
    take_all,
)
from tests.integration.support import WorkerHarness

OVER_PREFETCH = 66_000  # the smallest round size over 65,535 that the issue reported


@pytest.mark.timeout(120)
async def test_stats_counts_a_queue_larger_than_one_prefetch(
    harness: WorkerHarness, channel: AbstractChannel
) -> None:
    dead = harness.settings.dead_letter_queue
    await harness.declare()
    ids = [f"e-{n:05d}" for n in range(OVER_PREFETCH)]
    await publish_all(channel, dead, (dead_letter(i) for i in ids), batch=5000)

    stats = await run_cli("dlq", "stats", "--json", *dlq_args(harness.settings))
    assert stats.exit_code == 0, stats.output
    counted = orjson.loads(stats.stdout)
    assert counted["total"] == OVER_PREFETCH
    assert counted["complete"] is True
    assert (counted["read"], counted["depth"]) == (OVER_PREFETCH, OVER_PREFETCH)
    assert await harness.depth(dead) == OVER_PREFETCH


async def test_list_pages_through_every_prefetch_window(
    harness: WorkerHarness, channel: AbstractChannel
) -> None:
    """Consumers of 64 messages stand for those of 65,535: a page past the first window."""
    dead = harness.settings.dead_letter_queue
    await harness.declare()
    ids = [f"e-{n:04d}" for n in range(300)]
    await publish_all(channel, dead, (dead_letter(i) for i in ids))
    source = DeadLetterQueue(harness.settings.amqp_url, dead, purpose="test", max_prefetch=64)
    page: list[DeadLetter] = []
    async with source:
        report = await source.inspect(DeadLetterFilter(), page.append, skip=120, limit=20)
    assert [letter.event_id for letter in page] == ids[120:140]
    assert [letter.position for letter in page] == list(range(120, 140))
    assert (report.scanned, report.complete) == (140, True)
    async with source:
        everything = await source.inspect(DeadLetterFilter(), page.append)
    assert (everything.scanned, everything.complete) == (300, True)
    assert await take_all(channel, dead) == ids  # nothing lost, nothing reordered


async def test_replay_and_purge_go_through_every_prefetch_window(
    harness: WorkerHarness, channel: AbstractChannel
) -> None:
    """The same switch between consumers, with a small window so that acks happen in
    every one of them: a filtered purge, then a filtered replay."""
    settings = harness.settings
    dead, target = settings.dead_letter_queue, settings.request_queue
    await harness.declare()
    letters = [
        dead_letter(f"e-{n:04d}", action=("notify", "lookup", "ping")[n % 3]) for n in range(1000)
    ]
    ids = [f"e-{n:04d}" for n in range(1000)]
    await publish_all(channel, dead, letters)
    source = DeadLetterQueue(settings.amqp_url, dead, purpose="test", max_prefetch=64)
    async with source:
        purged = await source.purge(DeadLetterFilter(actions=frozenset({"ping"})))
    assert (purged.scanned, purged.purged, purged.stalled) == (1000, 333, False)
    async with source:
        replayed = await source.replay(
            DeadLetterFilter(actions=frozenset({"notify"})), target, batch=10
        )
    assert (replayed.scanned, replayed.replayed, replayed.stalled) == (667, 334, False)
    assert replayed.failures == []
    assert await take_all(channel, target) == ids[0::3]
    assert await take_all(channel, dead) == ids[1::3]
