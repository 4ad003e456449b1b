"""``actionrelay dlq stats|list|show`` on dead letters made by real failures; nothing changes."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime, timedelta

import orjson
from aio_pika.abc import AbstractChannel

from tests.integration.ops_support import (
    dead_letter,
    dlq_args,
    json_lines,
    poll,
    publish_all,
    run_cli,
    spawn_cli,
    take_all,
)
from tests.integration.support import Received, Reply, WorkerHarness

ONE_ATTEMPT = {"max_attempts": 1}
STATUS_BY_PATH = {"/missing": 404, "/invalid": 422, "/down": 503}


async def make_real_dead_letters(harness: WorkerHarness) -> None:
    """Eight dead letters: two each of 404, 422 and 503 (one attempt), an unknown action and
    params that do not fit. The worker is stopped afterwards, so nothing moves any more."""
    for name, path in (("lookup", "/missing"), ("register", "/invalid"), ("notify", "/down")):
        harness.action(
            {
                "name": name,
                "url": f"{harness.api.url}{path}",
                "body": {"id": {"$var": "id", "type": "string"}},
                "retry": ONE_ATTEMPT,
            }
        )

    def by_path(received: Received) -> Reply:
        return Reply(STATUS_BY_PATH[received.path], {"error": received.path})

    harness.api.reply_for = by_path  # type: ignore[method-assign]
    await harness.start_worker()
    for name in ("lookup", "register", "notify"):
        for n in (1, 2):
            await harness.publish(
                {"event_id": f"{name}-{n}", "action": name, "params": {"id": "x"}}
            )
    await harness.publish({"event_id": "ghost-1", "action": "ghost", "params": {}})
    await harness.publish({"event_id": "bad-1", "action": "notify", "params": {}})
    await harness.results(8)
    await harness.stop_workers()


async def listed_ids(harness: WorkerHarness, *extra: str) -> list[str]:
    result = await run_cli(
        "dlq", "list", "--json", "--limit", "0", *dlq_args(harness.settings), *extra
    )
    assert result.exit_code == 0, result.output
    return [item["event_id"] for item in json_lines(result.stdout)]


async def test_stats_count_real_failures_by_action_error_type_and_status(
    harness: WorkerHarness,
) -> None:
    await make_real_dead_letters(harness)
    result = await run_cli("dlq", "stats", "--json", *dlq_args(harness.settings))
    assert result.exit_code == 0, result.output
    stats = orjson.loads(result.stdout)
    assert stats["total"] == 8
    assert stats["by_action"] == {"lookup": 2, "register": 2, "notify": 3, "ghost": 1}
    assert stats["by_error_type"] == {"http_error": 6, "unknown_action": 1, "validation": 1}
    assert stats["by_http_status"] == {"404": 2, "422": 2, "503": 2, "-": 2}
    table = await run_cli("dlq", "stats", *dlq_args(harness.settings))
    assert "8 dead letters" in table.stdout
    assert "unknown_action" in table.stdout


async def test_list_filters_and_show_tell_why_each_event_failed(harness: WorkerHarness) -> None:
    await make_real_dead_letters(harness)
    everything = await listed_ids(harness)
    assert sorted(everything) == sorted(
        [
            "lookup-1",
            "lookup-2",
            "register-1",
            "register-2",
            "notify-1",
            "notify-2",
            "ghost-1",
            "bad-1",
        ]
    )
    assert sorted(await listed_ids(harness, "--http-status", "404")) == ["lookup-1", "lookup-2"]
    assert sorted(await listed_ids(harness, "--error-type", "validation")) == ["bad-1"]
    both = await listed_ids(harness, "--action", "register", "--action", "ghost")
    assert sorted(both) == ["ghost-1", "register-1", "register-2"]
    assert await listed_ids(harness, "--action", "notify", "--error-type", "unknown_action") == []
    assert len(await listed_ids(harness, "--since", "10m")) == 8
    future = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    assert await listed_ids(harness, "--since", future) == []
    first_three = await run_cli(
        "dlq", "list", "--json", "--limit", "3", *dlq_args(harness.settings)
    )
    assert [item["position"] for item in json_lines(first_three.stdout)] == [0, 1, 2]

    table = await run_cli("dlq", "list", "--action", "register", *dlq_args(harness.settings))
    assert "register-1" in table.stdout
    assert "http_422" in table.stdout
    assert "lookup-1" not in table.stdout

    shown = await run_cli("dlq", "show", "register-2", "--json", *dlq_args(harness.settings))
    assert shown.exit_code == 0, shown.output
    [detail] = json_lines(shown.stdout)
    assert detail["error_type"] == "http_error"
    assert detail["http_status"] == 422
    assert detail["attempts"] == 1
    assert "HTTP 422" in detail["error_message"]
    assert detail["headers"]["x-actionrelay-worker-id"] == harness.settings.worker_id
    assert detail["event"] == {
        "event_id": "register-2",
        "action": "register",
        "params": {"id": "x"},
    }
    panel = await run_cli("dlq", "show", "ghost-1", *dlq_args(harness.settings))
    assert "unknown action 'ghost'" in panel.stdout
    missing = await run_cli("dlq", "show", "nobody", *dlq_args(harness.settings))
    assert missing.exit_code == 1
    assert "no dead letter with event id 'nobody'" in missing.stderr


async def test_inspection_leaves_count_and_order_unchanged(harness: WorkerHarness) -> None:
    await make_real_dead_letters(harness)
    dead = harness.settings.dead_letter_queue
    before = await listed_ids(harness)
    for args in (["stats"], ["list"], ["show", "notify-2"], ["replay", "--dry-run"], ["purge"]):
        await run_cli("dlq", *args, *dlq_args(harness.settings))
    assert await listed_ids(harness) == before
    assert await harness.depth(dead) == 8
    assert await take_all(harness.channel, dead) == before


async def test_inspection_killed_halfway_loses_and_reorders_nothing(
    harness: WorkerHarness, channel: AbstractChannel
) -> None:
    dead = harness.settings.dead_letter_queue
    await harness.declare()
    ids = [f"e-{n}" for n in range(3000)]
    await publish_all(channel, dead, (dead_letter(i) for i in ids))
    order = await listed_ids(harness)
    process = await spawn_cli("dlq", "list", "--json", "--limit", "0", *dlq_args(harness.settings))

    async def held() -> bool:
        return await harness.depth(dead) < 3000

    async def returned() -> bool:
        return (await harness.queue_state(dead)).consumer_count == 0

    await poll(held, "the scan to hold dead letters")
    process.send_signal(signal.SIGKILL)
    await process.wait()
    await poll(returned, "RabbitMQ to take the held dead letters back")
    assert await take_all(channel, dead) == order


async def test_rabbitmq_dead_letters_show_as_delivery_limit(harness: WorkerHarness) -> None:
    harness.settings = harness.settings.model_copy(update={"delivery_limit": 1})
    await harness.publish({"event_id": "poison", "action": "notify", "params": {"id": "x"}})
    queue = await harness.channel.declare_queue(harness.settings.request_queue, passive=True)
    for _ in range(500):
        if await harness.depth(harness.settings.dead_letter_queue):
            break
        if (message := await queue.get(fail=False)) is not None:
            await message.nack(requeue=True)  # every delivery "crashes"
        else:
            await asyncio.sleep(0.01)
    [letter] = json_lines(
        (await run_cli("dlq", "list", "--json", *dlq_args(harness.settings))).stdout
    )
    assert letter["event_id"] == "poison"
    assert letter["action"] == "notify"
    assert letter["error_type"] == "delivery_limit"
    assert harness.settings.request_queue in letter["error_message"]
    assert letter["failed_at"] is not None
    stats = await run_cli(
        "dlq", "stats", "--json", "--error-type", "delivery_limit", *dlq_args(harness.settings)
    )
    assert orjson.loads(stats.stdout)["total"] == 1
