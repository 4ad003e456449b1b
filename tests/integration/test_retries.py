"""Retries in the broker, dead letters and deadlines, against real RabbitMQ and HTTP."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from actionrelay.core.retry import ATTEMPTS_HEADER
from tests.integration.support import Reply, WorkerHarness

FAST_RETRY = {"max_attempts": 4, "schedule_seconds": [0.3, 0.6], "jitter": 0}


def flaky_action(harness: WorkerHarness, **extra: Any) -> None:
    harness.action({"name": "notify", "body": {"id": {"$var": "id", "type": "string"}}, **extra})


def event(event_id: str, **extra: Any) -> dict[str, Any]:
    return {"event_id": event_id, "action": "notify", "params": {"id": event_id}, **extra}


async def test_503_503_200_is_retried_on_schedule(harness: WorkerHarness) -> None:
    flaky_action(harness, retry=FAST_RETRY)
    harness.api.script(Reply(503), Reply(503), Reply(200, {"ok": 1}))
    await harness.start_worker()
    await harness.publish(event("e-1"))
    [result] = await harness.results(1)
    calls = harness.api.received
    assert len(calls) == 3
    assert {c.headers["Idempotency-Key"] for c in calls} == {"e-1"}
    assert result["status"] == "success"
    assert result["attempts"] == 3
    assert calls[1].at - calls[0].at >= 0.3
    assert calls[2].at - calls[1].at >= 0.6
    assert await harness.depth(harness.settings.dead_letter_queue) == 0


async def test_retry_after_is_honoured(harness: WorkerHarness) -> None:
    flaky_action(harness, retry={"schedule_seconds": [0.1], "jitter": 0})
    harness.api.script(Reply(429, headers={"Retry-After": "2"}), Reply(200))
    await harness.start_worker()
    await harness.publish(event("e-1"))
    [result] = await harness.results(1, timeout=15)
    first, second = harness.api.received
    assert second.at - first.at >= 2.0
    assert result["status"] == "success"
    assert result["attempts"] == 2


@pytest.mark.parametrize("status", [404, 401])
async def test_permanent_status_is_dead_lettered_after_one_call(
    harness: WorkerHarness, status: int
) -> None:
    flaky_action(harness, version=7, retry=FAST_RETRY)
    harness.api.default = Reply(status, {"error": "nope"})
    await harness.start_worker()
    await harness.publish(event("e-1"))
    [result] = await harness.results(1)
    [dead] = await harness.collect(harness.settings.dead_letter_queue, 1)
    await asyncio.sleep(0.5)
    assert len(harness.api.received) == 1
    assert result["status"] == "error"
    assert result["status_code"] == f"http_{status}"
    assert result["attempts"] == 1
    assert result["error"]["response_excerpt"] == '{"error":"nope"}'
    headers = dead.headers
    assert headers["x-actionrelay-error-type"] == "http_error"
    assert f"HTTP {status}" in str(headers["x-actionrelay-error-message"])
    assert headers["x-actionrelay-http-status"] == status
    assert headers["x-actionrelay-attempts"] == 1
    assert headers["x-actionrelay-action"] == "notify"
    assert headers["x-actionrelay-action-version"] == 7
    assert headers["x-actionrelay-worker-id"] == harness.settings.worker_id
    assert headers["x-actionrelay-first-attempt-at"] == headers["x-actionrelay-last-attempt-at"]
    assert orjson.loads(dead.body)["event_id"] == "e-1"


async def test_exhausted_attempts_give_one_final_error(harness: WorkerHarness) -> None:
    flaky_action(harness, retry={**FAST_RETRY, "max_attempts": 3, "schedule_seconds": [0.1]})
    harness.api.default = Reply(503, {"error": "down"})
    await harness.start_worker()
    await harness.publish(event("e-1"))
    [result] = await harness.results(1)
    [dead] = await harness.collect(harness.settings.dead_letter_queue, 1)
    assert len(harness.api.received) == 3
    assert result["status_code"] == "http_503"
    assert result["attempts"] == 3
    assert dead.headers["x-actionrelay-attempts"] == 3
    first = datetime.fromisoformat(str(dead.headers["x-actionrelay-first-attempt-at"]))
    last = datetime.fromisoformat(str(dead.headers["x-actionrelay-last-attempt-at"]))
    assert last - first >= timedelta(seconds=0.2)


async def test_abort_header_stops_retries(harness: WorkerHarness) -> None:
    flaky_action(harness, retry=FAST_RETRY)
    harness.api.default = Reply(503, headers={"X-Actionrelay-Retry": "abort"})
    await harness.start_worker()
    await harness.publish(event("e-1"))
    [result] = await harness.results(1)
    assert len(harness.api.received) == 1
    assert result["status_code"] == "http_503"


async def test_connection_refused_is_retried_then_reported(harness: WorkerHarness) -> None:
    harness.action(
        {
            "name": "notify",
            "url": "http://127.0.0.1:9/closed",
            "retry": {"max_attempts": 2, "schedule_seconds": [0.1], "jitter": 0},
        }
    )
    await harness.start_worker()
    await harness.publish(event("e-1"))
    [result] = await harness.results(1)
    assert result["status"] == "error"
    assert result["error"]["type"] == "connection"
    assert result["attempts"] == 2


async def test_deadline_that_would_pass_while_waiting_ends_with_timedout(
    harness: WorkerHarness,
) -> None:
    flaky_action(harness, retry={"schedule_seconds": [5], "jitter": 0})
    harness.api.default = Reply(503)
    await harness.start_worker()
    deadline = datetime.now(UTC) + timedelta(seconds=2)
    await harness.publish(event("e-1", deadline=deadline.isoformat()))
    [result] = await harness.results(1)
    await asyncio.sleep(2.5)
    assert len(harness.api.received) == 1
    assert result["status"] == "timedout"
    assert result["error"]["type"] == "deadline_expired"
    assert "deadline" in result["error"]["message"]


async def test_event_back_from_waiting_after_its_deadline_is_not_called(
    harness: WorkerHarness,
) -> None:
    flaky_action(harness)
    await harness.start_worker()
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    await harness.publish(event("e-1", deadline=past), headers={ATTEMPTS_HEADER: 2})
    [result] = await harness.results(1)
    assert harness.api.received == []
    assert result["status"] == "timedout"
    assert result["attempts"] == 2


async def test_max_age_is_counted_from_first_receipt(harness: WorkerHarness) -> None:
    flaky_action(
        harness,
        max_age_seconds=1,
        retry={"max_attempts": 10, "schedule_seconds": [0.3], "jitter": 0},
    )
    harness.api.default = Reply(503)
    await harness.start_worker()
    await harness.publish(event("e-1"))
    [result] = await harness.results(1, timeout=10)
    assert result["status"] == "timedout"
    assert 2 <= len(harness.api.received) <= 4
