"""Batched acks under out-of-order completion: the broker never sees a bad ack."""

from __future__ import annotations

import asyncio
import random

from tests.integration.support import Received, RecordingApi, Reply, WorkerHarness


class JitteryApi(RecordingApi):
    """Answers after a random 0-80 ms, so calls finish in a scrambled order."""

    def reply_for(self, received: Received) -> Reply:
        return Reply(200, delay=self.rng.random() * 0.08)

    rng = random.Random(11)


async def test_scrambled_completions_are_each_called_and_answered_once(
    harness: WorkerHarness,
) -> None:
    harness.api.__class__ = JitteryApi
    harness.action({"name": "jitter"})
    await harness.start_worker(prefetch=256)
    total = 3000
    for n in range(total):
        await harness.publish({"event_id": f"j-{n}", "action": "jitter"})
    results = await harness.results(total, timeout=60)
    await asyncio.sleep(1.0)  # a redelivery after a channel error would call again
    assert len(harness.api.received) == total
    assert len({r["event_id"] for r in results}) == total
    assert await harness.depth(harness.settings.results_queue) == 0
