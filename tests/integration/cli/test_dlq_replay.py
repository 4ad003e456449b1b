"""``actionrelay dlq replay|purge``: dead letters go back or away, each only once confirmed."""

from __future__ import annotations

import signal

import aio_pika
import orjson
import pytest
from aio_pika.abc import AbstractChannel

from tests.integration.ops_support import (
    dead_letter,
    dlq_args,
    json_lines,
    poll,
    publish_all,
    run_cli,
    run_process,
    spawn_cli,
    take_all,
)
from tests.integration.support import Received, Reply, WorkerHarness

BATCH = 100  # --batch: the documented bound on events replayed twice after a kill


async def listed_ids(harness: WorkerHarness, *extra: str, in_process: bool = True) -> list[str]:
    """Event ids in the dead-letter queue, head first; ``in_process=False`` while a worker
    runs in this process (its log lines would mix with the output)."""
    run = run_cli if in_process else run_process
    result = await run("dlq", "list", "--json", "--limit", "0", *dlq_args(harness.settings), *extra)
    assert result.exit_code == 0, result.output
    return [item["event_id"] for item in json_lines(result.stdout)]


async def until(harness: WorkerHarness, queue: str, count: int) -> None:
    async def reached() -> bool:
        return await harness.depth(queue) == count

    await poll(reached, f"{count} messages on {queue}")


async def test_replay_sends_dead_letters_back_and_the_worker_processes_them(
    harness: WorkerHarness,
) -> None:
    settings = harness.settings
    statuses = {"/down": 503, "/missing": 404}
    for name, path in (("notify", "/down"), ("lookup", "/missing")):
        harness.action(
            {
                "name": name,
                "url": f"{harness.api.url}{path}",
                "body": {"id": {"$var": "id", "type": "string"}},
                "retry": {"max_attempts": 1},
            }
        )

    def by_path(received: Received) -> Reply:
        return Reply(statuses[received.path])

    harness.api.reply_for = by_path  # type: ignore[method-assign]
    await harness.start_worker()
    events = [("notify", n) for n in (1, 2, 3)] + [("lookup", n) for n in (1, 2)]
    for name, n in events:
        await harness.publish({"event_id": f"{name}-{n}", "action": name, "params": {"id": "x"}})
    await harness.results(5)
    await until(harness, settings.dead_letter_queue, 5)

    statuses["/down"] = 200  # the endpoint is fixed
    replay = await run_process(
        "dlq",
        "replay",
        "--action",
        "notify",
        *dlq_args(settings),
        env={"ACTIONRELAY_REQUEST_QUEUE": settings.request_queue},
    )
    assert replay.exit_code == 0, replay.output
    assert f"replayed 3 of 3 matching dead letters to {settings.request_queue}" in replay.stdout
    results = await harness.results(3)
    assert sorted(r["event_id"] for r in results) == ["notify-1", "notify-2", "notify-3"]
    assert {(r["status"], r["attempts"]) for r in results} == {("success", 1)}
    keys = [r.headers["Idempotency-Key"] for r in harness.api.received if r.path == "/down"]
    assert sorted(keys) == sorted(["notify-1", "notify-2", "notify-3"] * 2)
    assert sorted(await listed_ids(harness, in_process=False)) == ["lookup-1", "lookup-2"]

    again = await run_process(
        "dlq",
        "replay",
        "--event-id",
        "lookup-1",
        "--to",
        settings.request_queue,
        *dlq_args(settings),
    )
    assert "replayed 1 of 1" in again.stdout
    [result] = await harness.results(1)
    assert result["status_code"] == "http_404"
    await until(harness, settings.dead_letter_queue, 2)
    shown = await run_process("dlq", "show", "lookup-1", "--json", *dlq_args(settings))
    [detail] = json_lines(shown.stdout)
    assert detail["replay_count"] == 1
    assert detail["attempts"] == 1  # counted again from zero, not 2
    assert detail["headers"]["x-actionrelay-replayed-from-http-status"] == 404
    assert detail["headers"]["x-actionrelay-replayed-from-error-type"] == "http_error"


@pytest.mark.parametrize(
    ("filtered", "bound"),
    [
        pytest.param(False, BATCH, id="everything"),  # one multiple-ack per batch
        pytest.param(True, 2 * BATCH, id="one-action"),  # acks one by one, lookups stay
    ],
)
async def test_replay_of_10000_dead_letters_loses_none_when_killed_and_rerun(
    harness: WorkerHarness, channel: AbstractChannel, filtered: bool, bound: int
) -> None:
    settings = harness.settings
    dead, target = settings.dead_letter_queue, settings.request_queue
    await harness.declare()
    ids = [f"e-{n:05d}" for n in range(10_000)]
    others = [f"o-{n:04d}" for n in range(1000)] if filtered else []
    letters = [dead_letter(i) for i in ids]
    for n, other in enumerate(others):  # every 11th message is of another action
        letters.insert(n * 11, dead_letter(other, action="lookup"))
    await publish_all(channel, dead, letters)
    args = ["dlq", "replay", "--to", target, "--batch", str(BATCH), *dlq_args(settings)]
    args += ["--action", "notify"] if filtered else []

    process = await spawn_cli(*args)

    async def partly_replayed() -> bool:
        return await harness.depth(target) >= 3000

    async def all_back() -> bool:
        # The killed process's consumer is gone once RabbitMQ took back what it held.
        return (await harness.queue_state(dead)).consumer_count == 0

    await poll(partly_replayed, "3000 replayed copies", timeout=20)
    process.send_signal(signal.SIGKILL)
    await process.wait()
    await poll(all_back, "the held dead letters to come back")
    in_dead, in_target = await harness.depth(dead), await harness.depth(target)
    assert len(letters) <= in_dead + in_target <= len(letters) + bound
    assert len(others) < in_dead < len(letters), "the kill did not land midway"

    rerun = await run_cli(*args)
    assert rerun.exit_code == 0, rerun.output
    replayed = await take_all(channel, target)
    assert set(replayed) == set(ids)
    assert len(replayed) - len(set(replayed)) <= bound
    assert await take_all(channel, dead) == others  # untouched, in their order


async def test_dry_run_changes_nothing(harness: WorkerHarness, channel: AbstractChannel) -> None:
    settings = harness.settings
    await harness.declare()
    letters = [dead_letter(f"n-{n}") for n in range(5)]
    letters += [dead_letter(f"l-{n}", action="lookup", http_status=404) for n in range(3)]
    await publish_all(channel, settings.dead_letter_queue, letters)
    before = await listed_ids(harness)
    result = await run_cli(
        "dlq",
        "replay",
        "--dry-run",
        "--action",
        "notify",
        "--to",
        settings.request_queue,
        *dlq_args(settings),
    )
    assert result.exit_code == 0, result.output
    assert "5 dead letters would be replayed" in result.stdout
    assert "nothing was changed" in result.stdout
    assert await harness.depth(settings.request_queue) == 0
    assert await listed_ids(harness) == before


async def test_purge_needs_yes_and_deletes_only_what_matches(
    harness: WorkerHarness, channel: AbstractChannel
) -> None:
    settings = harness.settings
    await harness.declare()
    letters = [dead_letter(f"n-{n}") for n in range(5)]
    letters += [dead_letter(f"l-{n}", action="lookup", http_status=404) for n in range(3)]
    await publish_all(channel, settings.dead_letter_queue, letters)
    before = await listed_ids(harness)

    refused = await run_cli("dlq", "purge", "--action", "lookup", *dlq_args(settings))
    assert refused.exit_code == 1
    assert "add --yes" in refused.stderr
    assert await listed_ids(harness) == before

    purged = await run_cli("dlq", "purge", "--action", "lookup", "--yes", *dlq_args(settings))
    assert purged.exit_code == 0, purged.output
    assert "deleted 3 dead letters" in purged.stdout
    assert await listed_ids(harness) == [i for i in before if i.startswith("n-")]

    limited = await run_cli("dlq", "purge", "--limit", "2", "--yes", *dlq_args(settings))
    assert "deleted 2 dead letters" in limited.stdout
    assert await listed_ids(harness) == [i for i in before if i.startswith("n-")][2:]


async def test_replay_refuses_a_missing_or_looping_target(
    harness: WorkerHarness, channel: AbstractChannel
) -> None:
    settings = harness.settings
    await harness.declare()
    await publish_all(channel, settings.dead_letter_queue, [dead_letter("e-1")])
    missing = await run_cli(
        "dlq", "replay", "--to", f"{settings.request_queue}.nowhere", *dlq_args(settings)
    )
    assert missing.exit_code == 1
    assert "does not exist" in missing.stderr
    looping = await run_cli(
        "dlq", "replay", "--to", settings.dead_letter_queue, *dlq_args(settings)
    )
    assert looping.exit_code == 2
    assert await listed_ids(harness) == ["e-1"]


async def test_replay_copy_has_fresh_attempts_and_keeps_the_failure(
    harness: WorkerHarness, channel: AbstractChannel
) -> None:
    await harness.declare()
    message = dead_letter("e-1", http_status=503)
    assert message.headers is not None
    message.headers |= {"x-actionrelay-replay-count": 2, "traceparent": "00-abc-def-01"}
    await publish_all(channel, harness.settings.dead_letter_queue, [message])
    result = await run_cli(
        "dlq", "replay", "--to", harness.settings.request_queue, *dlq_args(harness.settings)
    )
    assert result.exit_code == 0, result.output
    assert "replayed 1 of 1" in result.stdout
    [copy] = await harness.collect(harness.settings.request_queue, 1)
    headers = copy.headers
    assert not {k for k in headers if k.startswith("x-actionrelay-") and "replay" not in k}
    assert headers["x-actionrelay-replay-count"] == 3
    assert headers["x-actionrelay-replayed-from-error-type"] == "http_error"
    assert headers["x-actionrelay-replayed-from-http-status"] == 503
    assert headers["traceparent"] == "00-abc-def-01"
    assert copy.message_id == "e-1"
    assert copy.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert orjson.loads(copy.body)["event_id"] == "e-1"
    assert await harness.depth(harness.settings.dead_letter_queue) == 0
