"""Editing, adding or removing action files takes effect without a restart."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.integration.support import WorkerHarness


async def ask(harness: WorkerHarness, event_id: str, action: str) -> dict[str, Any]:
    await harness.publish({"event_id": event_id, "action": action})
    [result] = await harness.results(1)
    return result


async def until_version(harness: WorkerHarness, action: str, version: int) -> dict[str, Any]:
    """Publish probes until the result shows ``version`` (a reload takes a moment)."""
    deadline = time.monotonic() + 10
    n = 0
    while True:
        n += 1
        result = await ask(harness, f"{action}-probe-{n}", action)
        if result.get("action_version") == version or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.2)


async def test_edits_additions_and_removals_apply_while_running(harness: WorkerHarness) -> None:
    harness.action({"name": "greet", "version": 1})
    await harness.spawn_worker(reload_interval_seconds=0.2)
    await harness.wait_consuming(1)
    assert (await ask(harness, "e-1", "greet"))["action_version"] == 1

    harness.action({"name": "greet", "version": 2})
    assert (await until_version(harness, "greet", 2))["action_version"] == 2

    harness.action({"name": "added", "version": 5})
    assert (await until_version(harness, "added", 5))["status"] == "success"

    (harness.settings.actions_dir / "added.json").unlink()
    deadline = time.monotonic() + 10
    while (result := await ask(harness, "gone", "added"))["status"] != "invalid":
        assert time.monotonic() < deadline, "a removed action must stop being served"
        await asyncio.sleep(0.2)
    assert result["error"]["type"] == "unknown_action"


async def test_an_invalid_edit_keeps_the_previous_version(harness: WorkerHarness) -> None:
    harness.action({"name": "greet", "version": 1})
    process = await harness.spawn_worker(reload_interval_seconds=0.2)
    await harness.wait_consuming(1)
    (harness.settings.actions_dir / "greet.json").write_text('{"name": "greet", "method": "FETCH"')
    await asyncio.sleep(1.0)
    result = await ask(harness, "e-2", "greet")
    assert result["status"] == "success"
    assert result["action_version"] == 1
    failed = harness.live_log(process).events("catalog.reload_failed")
    assert failed
    assert "greet.json" in str(failed[0]["problems"])
