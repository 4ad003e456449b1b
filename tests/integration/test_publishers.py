"""The journey-side publisher examples (examples/publishers/) and ``actionrelay publish``:
persistent, confirmed, every event in exactly once, a refused event sent again.

The Node.js example runs with the machine's node after ``npm ci`` in its folder;
under CI a missing node or npm is a failure, not a skip.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from actionrelay.broker.step_publisher import NotDelivered, publish_step
from tests.integration.support import WorkerHarness, step_event

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "publishers"
NODE_EXAMPLE = EXAMPLES / "node"
FULL: dict[str, Any] = {"x-max-length": 50, "x-overflow": "reject-publish"}


def python_example() -> ModuleType:
    path = EXAMPLES / "python" / "publish_step_events.py"
    spec = importlib.util.spec_from_file_location("publish_step_events", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def node_example() -> Path:
    """The Node.js example with its dependencies installed (``npm ci``)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        message = "node and npm are needed for the Node.js publisher example"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    if not (NODE_EXAMPLE / "node_modules" / "amqplib").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_EXAMPLE, check=True, timeout=300
        )
    return NODE_EXAMPLE / "publish-step-events.js"


async def node_publish(script: Path, url: str, queue: str, events: list[dict[str, Any]]) -> str:
    process = await asyncio.create_subprocess_exec(
        "node",
        str(script),
        url,
        queue,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    lines = b"".join(orjson.dumps(e) + b"\n" for e in events)
    out, err = await asyncio.wait_for(process.communicate(lines), 120)
    assert process.returncode == 0, err.decode()
    return out.decode()


def events(count: int, prefix: str = "e") -> list[dict[str, Any]]:
    return [step_event(f"{prefix}-{n}", "notify", params={"id": str(n)}) for n in range(count)]


async def scratch_queue(harness: WorkerHarness, arguments: dict[str, Any] | None = None) -> str:
    queue = await harness.channel.declare_queue(
        exclusive=True, arguments=arguments or {"x-queue-type": "classic"}
    )
    return queue.name


async def read_all(harness: WorkerHarness, queue: str, count: int) -> list[Any]:
    messages = await harness.collect(queue, count, timeout=30, check=False)
    await asyncio.sleep(0.3)
    assert await harness.depth(queue) == 0, "more messages than events"
    return messages


def assert_as_actionrelay_wants(messages: list[Any], sent: list[dict[str, Any]]) -> None:
    """Every event exactly once, persistent JSON, its event_id as message_id."""
    ids = Counter(orjson.loads(m.body)["event_id"] for m in messages)
    assert ids == Counter(e["event_id"] for e in sent)
    assert {int(m.delivery_mode) for m in messages} == {2}
    assert {m.content_type for m in messages} == {"application/json"}
    assert all(m.message_id == orjson.loads(m.body)["event_id"] for m in messages)


async def drain_slowly(harness: WorkerHarness, queue: str, until: int) -> list[Any]:
    """Take messages off a full queue a few at a time, so refused publishes fit later."""
    got: list[Any] = []
    while len(got) < until:
        got += await harness.drain(queue)
        await asyncio.sleep(0.05)
    return got


async def test_the_python_example_publishes_persistent_confirmed_events(
    harness: WorkerHarness,
) -> None:
    queue = await scratch_queue(harness)
    sent = events(1000)
    assert (
        await python_example().publish_step_events(harness.settings.amqp_url, queue, sent) == 1000
    )
    assert_as_actionrelay_wants(await read_all(harness, queue, 1000), sent)


async def test_the_python_example_sends_refused_events_again_once(harness: WorkerHarness) -> None:
    """A full queue with reject-publish nacks; every event still arrives exactly once."""
    queue = await scratch_queue(harness, FULL)
    sent = events(300)
    draining = asyncio.create_task(drain_slowly(harness, queue, 300))
    await python_example().publish_step_events(harness.settings.amqp_url, queue, sent)
    assert_as_actionrelay_wants(await asyncio.wait_for(draining, 30), sent)


async def test_the_python_example_says_which_events_no_queue_took(harness: WorkerHarness) -> None:
    example = python_example()
    with pytest.raises(
        example.NotSent, match=r"2 of 2 events not confirmed after 2 attempts: e-0, e-1"
    ):
        await example.publish_step_events(
            harness.settings.amqp_url, "no.such.queue.anywhere", events(2), attempts=2
        )


async def test_events_from_the_python_example_are_answered(harness: WorkerHarness) -> None:
    harness.action({"name": "notify", "body": {"id": {"$var": "id", "type": "string"}}})
    await harness.start_worker()
    await harness.declare()
    sent = events(200)
    await python_example().publish_step_events(
        harness.settings.amqp_url, harness.settings.request_queue, sent
    )
    results = await harness.results(200, timeout=30)
    assert Counter(r["event_id"] for r in results) == Counter(e["event_id"] for e in sent)
    assert {r["status"] for r in results} == {"success"}


async def test_the_node_example_publishes_persistent_confirmed_events(
    harness: WorkerHarness, node_example: Path
) -> None:
    queue = await scratch_queue(harness)
    sent = events(1000, "n")
    out = await node_publish(node_example, harness.settings.amqp_url, queue, sent)
    assert "1000 events published and confirmed" in out
    assert_as_actionrelay_wants(await read_all(harness, queue, 1000), sent)


async def test_the_node_example_sends_refused_events_again_once(
    harness: WorkerHarness, node_example: Path
) -> None:
    queue = await scratch_queue(harness, FULL)
    sent = events(300, "n")
    draining = asyncio.create_task(drain_slowly(harness, queue, 300))
    await node_publish(node_example, harness.settings.amqp_url, queue, sent)
    assert_as_actionrelay_wants(await asyncio.wait_for(draining, 30), sent)


async def test_events_from_the_node_example_are_answered(
    harness: WorkerHarness, node_example: Path
) -> None:
    harness.action({"name": "notify", "body": {"id": {"$var": "id", "type": "string"}}})
    await harness.start_worker()
    await harness.declare()
    sent = events(200, "n")
    await node_publish(
        node_example, harness.settings.amqp_url, harness.settings.request_queue, sent
    )
    results = await harness.results(200, timeout=30)
    assert Counter(r["event_id"] for r in results) == Counter(e["event_id"] for e in sent)


async def test_actionrelay_publish_waits_for_the_confirm_and_reports_a_refusal(
    harness: WorkerHarness,
) -> None:
    """``actionrelay publish`` (and the demo, which shares it) counts an event as sent only
    once confirmed: into a full queue that rejects publishes it fails, naming why."""
    full = await scratch_queue(harness, {"x-max-length": 0, "x-overflow": "reject-publish"})
    with pytest.raises(NotDelivered, match="did not take the event"):
        await publish_step(harness.settings.amqp_url, full, events(1)[0], wait_seconds=None)
    queue = await scratch_queue(harness)
    await publish_step(harness.settings.amqp_url, queue, events(1)[0], wait_seconds=None)
    assert_as_actionrelay_wants(await read_all(harness, queue, 1), events(1))
