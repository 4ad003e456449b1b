"""The result contract: statuses, errors, dead letters, routing and correlation ids."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import structlog.testing
from aio_pika.abc import AbstractIncomingMessage

import actionrelay.worker as worker_module
from actionrelay.core.payload import build_request
from tests.integration.support import Reply, WorkerHarness, step_event

SEND_SMS: dict[str, Any] = {
    "name": "sendSms",
    "version": 3,
    "method": "POST",
    "body": {
        "to": {"$var": "phone", "type": "string"},
        "count": {"$var": "count", "type": "integer", "optional": True},
        "tags": {"$var": "tags", "type": "listString", "optional": True},
    },
}
# Retries are not what these tests are about: one attempt, then the final result.
NO_RETRY = {"retry": {"max_attempts": 1}}
SMS_PARAMS = {"phone": "+33612345678"}


def dead_letter_headers(message: AbstractIncomingMessage) -> dict[str, Any]:
    """The ``x-actionrelay-*`` headers, without the prefix."""
    prefix = "x-actionrelay-"
    return {k.removeprefix(prefix): v for k, v in message.headers.items() if k.startswith(prefix)}


def by_event_id(messages: list[AbstractIncomingMessage]) -> dict[str, AbstractIncomingMessage]:
    return {orjson.loads(m.body)["event_id"]: m for m in messages}


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_client_error_is_reported_and_dead_lettered(
    harness: WorkerHarness, status: int
) -> None:
    harness.action(SEND_SMS)
    harness.api.default = Reply(status=status, json={"error": "phone +336 is not reachable"})
    await harness.start_worker()
    event = step_event("e-4xx", "sendSms", params=SMS_PARAMS, profile_id="p-1")
    await harness.publish(event)

    [result] = await harness.results(1)
    assert result["status"] == "error"
    assert result["status_code"] == f"http_{status}"
    assert result["http_status"] == status
    assert result["attempts"] == 1
    assert result["profile_id"] == "p-1"
    error = result["error"]
    assert error["type"] == "http_error"
    assert "127.0.0.1" in error["message"]
    assert f"HTTP {status}" in error["message"]
    assert "phone +336 is not reachable" in error["message"]
    assert "phone +336 is not reachable" in error["response_excerpt"]
    assert len(harness.api.received) == 1, "a 4xx answer is final"

    [dead] = await harness.dead_letters(1)
    assert orjson.loads(dead.body) == event
    headers = dead_letter_headers(dead)
    assert headers["error-type"] == "http_error"
    assert headers["status-code"] == f"http_{status}"
    assert headers["http-status"] == status
    assert headers["attempts"] == 1
    assert headers["action"] == "sendSms"
    assert headers["action-version"] == 3
    assert headers["worker-id"] == harness.settings.worker_id
    assert f"HTTP {status}" in headers["error-message"]


async def test_server_error_is_reported_when_no_retry_is_left(harness: WorkerHarness) -> None:
    harness.action(SEND_SMS | NO_RETRY)
    harness.api.default = Reply(status=503, body=b"upstream down")
    await harness.start_worker()
    await harness.publish(step_event("e-503", "sendSms", params=SMS_PARAMS))

    [result] = await harness.results(1)
    assert result["status"] == "error"
    assert result["status_code"] == "http_503"
    assert result["http_status"] == 503
    assert "HTTP 503" in result["error"]["message"]
    assert "upstream down" in result["error"]["message"]
    assert len(harness.api.received) == 1
    [dead] = await harness.dead_letters(1)
    assert dead_letter_headers(dead)["http-status"] == 503


async def test_slow_answer_is_a_timeout(harness: WorkerHarness) -> None:
    harness.action(SEND_SMS | NO_RETRY | {"timeout_seconds": 1})
    harness.api.default = Reply(delay=2.0)
    await harness.start_worker()
    started = time.monotonic()
    await harness.publish(step_event("e-slow", "sendSms", params=SMS_PARAMS))

    [result] = await harness.results(1)
    assert time.monotonic() - started < 1.8, "the call was not cut at timeout_seconds"
    assert result["status"] == "timedout"
    assert result["status_code"] == "timedout"
    assert result["http_status"] is None
    assert result["error"]["type"] == "timeout"
    assert "127.0.0.1" in result["error"]["message"]
    [dead] = await harness.dead_letters(1)
    assert dead_letter_headers(dead)["error-type"] == "timeout"


async def test_event_deadline_cuts_a_slow_call(harness: WorkerHarness) -> None:
    harness.action(SEND_SMS | NO_RETRY | {"timeout_seconds": 10})
    harness.api.default = Reply(delay=2.0)
    await harness.start_worker()
    started = time.monotonic()
    deadline = datetime.now(UTC) + timedelta(seconds=1)
    await harness.publish(
        step_event("e-due", "sendSms", params=SMS_PARAMS, deadline=deadline.isoformat())
    )

    [result] = await harness.results(1)
    assert time.monotonic() - started < 1.8, "the call outlived the event's deadline"
    assert result["status"] == "timedout"
    assert result["status_code"] == "timedout"


async def test_expired_deadline_is_timedout_without_a_call(harness: WorkerHarness) -> None:
    harness.action(SEND_SMS)
    await harness.start_worker()
    await harness.publish(
        step_event("e-late", "sendSms", params=SMS_PARAMS, deadline="2020-01-01T00:00:00Z")
    )

    [result] = await harness.results(1)
    assert result["status"] == "timedout"
    assert result["status_code"] == "timedout"
    assert result["error"]["type"] == "deadline_expired"
    assert "2020-01-01" in result["error"]["message"]
    assert "not called" in result["error"]["message"]
    assert result["attempts"] == 0
    [dead] = await harness.dead_letters(1)
    assert dead_letter_headers(dead)["error-type"] == "deadline_expired"
    assert harness.api.received == []


async def test_unknown_action_is_invalid_and_names_the_known_ones(
    harness: WorkerHarness,
) -> None:
    harness.action(SEND_SMS)
    await harness.start_worker()
    await harness.publish(step_event("e-x", "sendSMS", params=SMS_PARAMS))

    [result] = await harness.results(1)
    assert result["status"] == "invalid"
    assert result["status_code"] == "invalid"
    assert result["event_id"] == "e-x"
    assert result["action"] == "sendSMS"
    assert result["error"]["type"] == "unknown_action"
    assert "unknown action 'sendSMS'" in result["error"]["message"]
    assert "sendSms" in result["error"]["message"]
    [dead] = await harness.dead_letters(1)
    headers = dead_letter_headers(dead)
    assert headers["error-type"] == "unknown_action"
    assert headers["status-code"] == "invalid"
    assert harness.api.received == []


async def test_a_bug_in_the_worker_is_an_internal_error_and_the_next_event_goes_on(
    harness: WorkerHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception actionrelay did not expect loses no event and stops no worker: the
    event gets an internalError result and a dead letter, the log has the traceback."""
    harness.action(SEND_SMS)

    def buggy(action: Any, params: Any, event_id: str) -> Any:
        if event_id == "e-bug":
            raise RuntimeError("boom")
        return build_request(action, params, event_id)

    monkeypatch.setattr(worker_module, "build_request", buggy)
    await harness.start_worker()
    with structlog.testing.capture_logs() as logs:
        await harness.publish(step_event("e-bug", "sendSms", params=SMS_PARAMS))
        [result] = await harness.results(1)
        await harness.publish(step_event("e-next", "sendSms", params=SMS_PARAMS))
        [after] = await harness.results(1)

    assert result["status"] == "error"
    assert result["status_code"] == "internalError"
    assert result["error"] == {
        "type": "internal",
        "message": "actionrelay internal error: RuntimeError: boom",
        "response_excerpt": None,
    }
    [dead] = await harness.dead_letters(1)
    assert dead_letter_headers(dead)["error-type"] == "internal"
    [logged] = [entry for entry in logs if entry["event"] == "worker.internal_error"]
    assert logged["event_id"] == "e-bug"
    rendered = structlog.processors.format_exc_info(None, "error", dict(logged))
    assert "Traceback" in rendered["exception"]
    assert "RuntimeError: boom" in rendered["exception"]
    assert (after["event_id"], after["status"]) == ("e-next", "success")
    assert len(harness.api.received) == 1


@pytest.mark.parametrize(
    ("params", "problems"),
    [
        pytest.param({}, ["missing variable 'phone' for action sendSms"], id="missing"),
        pytest.param(
            {"phone": 33612345678},
            ["variable 'phone' for action sendSms must be a string, got integer"],
            id="mistyped",
        ),
        pytest.param(
            {"phone": "+33612345678", "count": "3", "tags": ["a", 1]},
            [
                "variable 'count' for action sendSms must be an integer, got string",
                "variable 'tags' for action sendSms must be a list of string values",
            ],
            id="mistyped-optional-and-list-item",
        ),
        pytest.param(
            {"count": 1.5},
            [
                "missing variable 'phone' for action sendSms",
                "variable 'count' for action sendSms must be an integer, got number",
            ],
            id="every-problem-at-once",
        ),
    ],
)
async def test_params_that_do_not_fit_the_action_are_invalid(
    harness: WorkerHarness, params: dict[str, Any], problems: list[str]
) -> None:
    harness.action(SEND_SMS)
    await harness.start_worker()
    await harness.publish(step_event("e-bad", "sendSms", params=params))

    [result] = await harness.results(1)
    assert result["status"] == "invalid"
    assert result["status_code"] == "invalid"
    assert result["error"]["type"] == "validation"
    for problem in problems:
        assert problem in result["error"]["message"]
    [dead] = await harness.dead_letters(1)
    assert dead_letter_headers(dead)["error-type"] == "validation"
    assert harness.api.received == []


@pytest.mark.parametrize(
    ("body", "action", "problem"),
    [
        pytest.param(b'{"event_id": "e-1", "action"', None, "not valid JSON", id="truncated"),
        pytest.param(b"\xff\xfe", None, "not valid JSON", id="not-utf8"),
        pytest.param(b'["e-1"]', None, "must be a JSON object", id="array"),
        pytest.param(b'{"action": "sendSms"}', "sendSms", "event_id", id="no-event-id"),
        pytest.param(
            b'{"event_id": "", "action": "sendSms"}', "sendSms", "event_id", id="empty-id"
        ),
        pytest.param(b'{"event_id": "e-1"}', None, "action", id="no-action"),
        pytest.param(
            b'{"event_id": "e-1", "action": "sendSms", "params": []}', None, "params", id="params"
        ),
    ],
)
async def test_unusable_body_gets_an_invalid_result_when_it_can_be_addressed(
    harness: WorkerHarness, body: bytes, action: str | None, problem: str
) -> None:
    harness.action(SEND_SMS)
    await harness.start_worker()
    await harness.publish(body, correlation_id="corr-bad")

    [message] = await harness.collect(harness.settings.results_queue, 1)
    result = orjson.loads(message.body)
    assert message.correlation_id == "corr-bad"
    assert result["status"] == "invalid"
    assert result["status_code"] == "invalid"
    assert result["error"]["type"] == "invalid_event"
    assert problem in result["error"]["message"]
    if action is not None:
        assert result["action"] == action
    [dead] = await harness.dead_letters(1)
    assert dead.body == body
    assert dead.correlation_id == "corr-bad"
    assert dead_letter_headers(dead)["error-type"] == "invalid_event"
    assert harness.api.received == []


async def test_unaddressable_garbage_is_only_dead_lettered(harness: WorkerHarness) -> None:
    await harness.start_worker()
    await harness.publish_bare(b"not json at all")

    [dead] = await harness.dead_letters(1)
    assert dead.body == b"not json at all"
    headers = dead_letter_headers(dead)
    assert headers["error-type"] == "invalid_event"
    assert "not valid JSON" in headers["error-message"]
    # A result is published before the dead letter, so it would be there by now.
    assert await harness.depth(harness.settings.results_queue) == 0


async def test_result_goes_to_reply_to_and_not_to_the_results_exchange(
    harness: WorkerHarness,
) -> None:
    harness.action(SEND_SMS)
    await harness.start_worker()
    reply_to = await harness.reply_queue()
    await harness.publish(
        step_event("e-rpc", "sendSms", params=SMS_PARAMS),
        reply_to=reply_to,
        correlation_id="corr-rpc",
    )

    [message] = await harness.collect(reply_to, 1)
    assert message.correlation_id == "corr-rpc"
    assert message.message_id == "e-rpc.result"
    assert message.content_type == "application/json"
    assert orjson.loads(message.body)["status"] == "success"
    assert await harness.depth(harness.settings.results_queue) == 0


async def test_invalid_event_with_reply_to_answers_there(harness: WorkerHarness) -> None:
    await harness.start_worker()
    reply_to = await harness.reply_queue()
    await harness.publish_bare(b"{broken", reply_to=reply_to)

    [message] = await harness.collect(reply_to, 1)
    result = orjson.loads(message.body)
    assert result["status"] == "invalid"
    assert result["event_id"] is None
    assert message.correlation_id is None
    assert await harness.depth(harness.settings.results_queue) == 0


async def test_reply_to_a_missing_queue_falls_back_to_the_results_queue(
    harness: WorkerHarness,
) -> None:
    harness.action(SEND_SMS)
    await harness.start_worker()
    await harness.publish(
        step_event("e-lost", "sendSms", params=SMS_PARAMS),
        reply_to=f"{harness.settings.request_queue}.nobody-listens",
        correlation_id="corr-lost",
    )

    [message] = await harness.collect(harness.settings.results_queue, 1)
    assert message.routing_key == "sendSms.success"
    assert message.correlation_id == "corr-lost"
    assert orjson.loads(message.body)["event_id"] == "e-lost"


async def test_results_exchange_routes_by_action_and_status(harness: WorkerHarness) -> None:
    harness.action(SEND_SMS)
    await harness.start_worker()
    bound = {
        key: await harness.bind_results(key)
        for key in ("sendSms.success", "sendSms.invalid", "unknown.invalid", "*.error")
    }
    await harness.publish(step_event("e-ok", "sendSms", params=SMS_PARAMS))
    await harness.publish(step_event("e-missing", "sendSms"))
    await harness.publish(step_event("e-odd", "no such action!"))

    everything = by_event_id(await harness.collect(harness.settings.results_queue, 3))
    assert {event_id: m.routing_key for event_id, m in everything.items()} == {
        "e-ok": "sendSms.success",
        "e-missing": "sendSms.invalid",
        "e-odd": "unknown.invalid",
    }
    # Routed at publish time, so the bound queues already hold what they will ever get.
    got = {
        key: [orjson.loads(m.body)["event_id"] for m in await harness.drain(name)]
        for key, name in bound.items()
    }
    assert got == {
        "sendSms.success": ["e-ok"],
        "sendSms.invalid": ["e-missing"],
        "unknown.invalid": ["e-odd"],
        "*.error": [],
    }


async def test_correlation_id_is_the_request_correlation_id_else_message_id_else_event_id(
    harness: WorkerHarness,
) -> None:
    harness.action(SEND_SMS)
    await harness.start_worker()
    await harness.publish(
        step_event("e-1", "sendSms", params=SMS_PARAMS), correlation_id="corr-1", message_id="m-1"
    )
    await harness.publish(step_event("e-2", "sendSms", params=SMS_PARAMS), message_id="m-2")
    await harness.publish_bare(orjson.dumps(step_event("e-3", "sendSms", params=SMS_PARAMS)))

    results = by_event_id(await harness.collect(harness.settings.results_queue, 3))
    assert {event_id: m.correlation_id for event_id, m in results.items()} == {
        "e-1": "corr-1",
        "e-2": "m-2",
        "e-3": "e-3",
    }


async def test_each_event_is_acked_only_once_its_result_is_out(harness: WorkerHarness) -> None:
    """With a prefetch of 1 the broker delivers the next event only after the ack of the
    previous one: results in publish order prove that each ack followed its result."""
    harness.action(SEND_SMS)
    harness.api.script(Reply(delay=0.3), Reply(status=404), Reply())
    await harness.start_worker(prefetch=1)
    for event in (
        step_event("e-slow", "sendSms", params=SMS_PARAMS),
        step_event("e-404", "sendSms", params=SMS_PARAMS),
        step_event("e-unknown", "nope"),
    ):
        await harness.publish(event)
    await harness.publish_bare(b"garbage nobody can answer")
    await harness.publish(step_event("e-last", "sendSms", params=SMS_PARAMS))

    results = await harness.results(4)
    assert [r["event_id"] for r in results] == ["e-slow", "e-404", "e-unknown", "e-last"]
    assert [r["status"] for r in results] == ["success", "error", "invalid", "success"]
    await harness.stop_workers()
    await harness.wait_idle()
    assert await harness.depth(harness.settings.request_queue) == 0
    assert len(await harness.dead_letters(3)) == 3
    assert await harness.depth(harness.settings.results_queue) == 0
