"""The benchmarks' stage probe (benchmarks/stage_probe/) follows every event of a real worker.

Its table is what docs/performance.md reads the slow scenario's cycle from, so
it must count each settled event once, time the call where the call is, and
leave nothing open once the worker has stopped.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.integration.support import Reply, WorkerHarness, step_event

PROBE = Path(__file__).resolve().parents[2] / "benchmarks" / "stage_probe"
NOTIFY: dict[str, Any] = {"name": "notify", "method": "POST", "body": {"n": 1}}
CALL_SECONDS = 0.05


def stage_means(table: str) -> dict[str, float]:
    means = {}
    for line in table.splitlines()[3:]:
        name, mean = re.split(r"\s{2,}", line.strip())[:2]
        means[name] = float(mean)
    return means


async def test_the_probe_times_every_event_a_worker_settles(
    harness: WorkerHarness, tmp_path: Path
) -> None:
    harness.action(NOTIFY)
    harness.api.default = Reply(delay=CALL_SECONDS)
    out = tmp_path / "stages.txt"
    env = {"PYTHONPATH": str(PROBE), "STAGE_PROBE_OUT": str(out)}
    process = await harness.spawn_worker(extra_env=env)
    await harness.wait_consuming(1)
    for n in range(20):
        await harness.publish(step_event(f"e-{n}", "notify"))
    await harness.publish(step_event("e-unknown", "no-such-action"))  # dead-lettered, no call

    results = await harness.results(21)
    await harness.dead_letters(1)
    assert await harness.terminate(process) == 0

    assert sorted(r["status"] for r in results) == ["invalid"] + ["success"] * 20
    table = out.read_text()
    assert table.startswith("events settled with an ack: 21; still open: 0\n"), table
    assert re.search(r"^ack frames: \d+ multiple, \d+ single; garbage collector: ", table, re.M)
    means = stage_means(table)
    # Only the 20 called events have a call; it lasts at least the API's delay.
    assert CALL_SECONDS * 1000 <= means["call"] < 10 * CALL_SECONDS * 1000, table
    assert means["whole cycle"] >= means["call"], table
    for stage in ("delivered -> call", "call end -> confirmed", "confirmed -> ack on socket"):
        assert 0 <= means[stage] < means["whole cycle"], table
    assert "event-loop lag" in means, table
