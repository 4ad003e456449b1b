"""Step event in, third-party call, result event out: what the API receives."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.support import Reply, WorkerHarness, step_event

BODYLESS = {"GET", "DELETE"}


async def test_post_action_calls_api_and_publishes_success(harness: WorkerHarness) -> None:
    harness.action(
        {
            "name": "sendSms",
            "version": 3,
            "method": "POST",
            "path": "/{country}/send",
            "query": {"source": "journeys"},
            "headers": {"X-Tenant": {"$var": "tenant", "type": "string"}},
            "body": {"to": {"$var": "phone", "type": "string"}},
            "response": {"fields": ["messageId"]},
        }
    )
    harness.api.default.json = {"messageId": "m-1", "secret": "dropped"}
    await harness.start_worker()
    await harness.publish(
        {
            "event_id": "e-1",
            "action": "sendSms",
            "journey": {"id": "welcome", "step_id": "sms-1"},
            "profile_id": "p-42",
            "params": {"phone": "+33612345678", "tenant": "acme", "country": "fr"},
        }
    )
    [result] = await harness.results(1)
    [call] = harness.api.received
    assert call.method == "POST"
    assert call.path == "/hook/fr/send"
    assert call.query == [("source", "journeys")]
    assert call.headers["X-Tenant"] == "acme"
    assert call.headers["Idempotency-Key"] == "e-1"
    assert call.json() == {"to": "+33612345678"}
    assert result["status"] == "success"
    assert result["status_code"] == "http_200"
    assert result["response"] == {"messageId": "m-1"}
    assert result["action_version"] == 3
    assert result["journey"] == {"id": "welcome", "step_id": "sms-1"}


@pytest.mark.parametrize(
    ("method", "status"),
    [("GET", 200), ("POST", 201), ("PUT", 200), ("PATCH", 200), ("DELETE", 204)],
)
async def test_each_method_sends_default_headers_and_a_body_only_when_it_has_one(
    harness: WorkerHarness, method: str, status: int
) -> None:
    definition: dict[str, Any] = {
        "name": "callIt",
        "method": method,
        "query": {"id": {"$var": "id", "type": "integer"}},
    }
    if method not in BODYLESS:
        definition["body"] = {"id": {"$var": "id", "type": "integer"}, "kind": "contact"}
    harness.action(definition)
    harness.api.default = Reply(
        status=status, json={"done": method}, body=b"" if status == 204 else None
    )
    await harness.start_worker()
    await harness.publish(step_event(f"e-{method}", "callIt", params={"id": 7}))

    [result] = await harness.results(1)
    [call] = harness.api.received
    assert call.method == method
    assert call.query == [("id", "7")]
    if method in BODYLESS:
        assert call.body == b""
    else:
        assert call.json() == {"id": 7, "kind": "contact"}
    assert call.headers["Content-Type"] == "application/json"
    assert call.headers["Idempotency-Key"] == f"e-{method}"
    assert "actionrelay" in call.headers["User-Agent"].lower()
    assert result["status"] == "success"
    assert result["status_code"] == f"http_{status}"
    assert result["http_status"] == status
    assert result["response"] == (None if status == 204 else {"done": method})
    assert result["error"] is None
    assert result["attempts"] == 1


UPSERT_CONTACT: dict[str, Any] = {
    "name": "upsertContact",
    "version": 2,
    "method": "PUT",
    "path": "/contacts/{contactId}/revisions/{revision}",
    "query": {
        "source": "journeys",
        "locale": {"$var": "locale", "type": "string", "optional": True},
        "tag": {"$var": "tags", "type": "listString", "optional": True},
        "vip": {"$var": "vip", "type": "boolean"},
    },
    "headers": {
        "X-Api-Version": "2",
        "X-Tenant": {"$var": "tenant", "type": "string"},
        "X-Trace": {"$var": "trace", "type": "string", "optional": True},
    },
    "body": {
        "name": {"$var": "name", "type": "string"},
        "nickname": {"$var": "nickname", "type": "string", "optional": True},
        "age": {"$var": "age", "type": "integer"},
        "score": {"$var": "score", "type": "decimal"},
        "vip": {"$var": "vip", "type": "boolean"},
        "born": {"$var": "born", "type": "dateOnly"},
        "seen": {"$var": "seen", "type": "dateTime"},
        "address": {"$var": "address", "type": "object"},
        "tags": {"$var": "tags", "type": "listString", "optional": True},
        "lucky": {"$var": "lucky", "type": "listInteger"},
        "meta": {
            "channel": "journey",
            "priority": {"$var": "priority", "type": "integer", "optional": True, "nullable": True},
        },
        "constants": [1, "two", True],
    },
}


async def test_templates_fill_path_query_headers_and_body_as_the_api_sees_them(
    harness: WorkerHarness,
) -> None:
    harness.action(UPSERT_CONTACT)
    await harness.start_worker()
    params = {
        "contactId": "acme/c 42?",
        "revision": 3,
        "tenant": "acme",
        "vip": True,
        "tags": ["gold", None, "eu & uk"],
        "name": "Zoë",
        "nickname": None,
        "age": 42,
        "score": 7,
        "born": "1990-05-17",
        "seen": "2026-11-27T12:00:00+00:00",
        "address": {"city": "Lyon", "zip": None},
        "lucky": [3, None, 7],
        "unused": "ignored",
    }
    await harness.publish(step_event("e-tpl", "upsertContact", params=params))

    [result] = await harness.results(1)
    assert result["status"] == "success", result["error"]
    [call] = harness.api.received
    # The path variable is one percent-encoded segment, '/' included.
    assert call.raw_path == "/hook/contacts/acme%2Fc%2042%3F/revisions/3"
    assert call.query == [
        ("source", "journeys"),
        ("tag", "gold"),
        ("tag", "eu & uk"),
        ("vip", "true"),
    ]
    assert call.headers["X-Api-Version"] == "2"
    assert call.headers["X-Tenant"] == "acme"
    assert "X-Trace" not in call.headers
    assert call.json() == {
        "name": "Zoë",
        "age": 42,
        "score": 7,
        "vip": True,
        "born": "1990-05-17",
        "seen": "2026-11-27T12:00:00+00:00",
        "address": {"city": "Lyon", "zip": None},
        "tags": ["gold", "eu & uk"],
        "lucky": [3, 7],
        "meta": {"channel": "journey", "priority": None},
        "constants": [1, "two", True],
    }


async def test_optional_list_omitted_and_nullable_given_arrive_as_declared(
    harness: WorkerHarness,
) -> None:
    harness.action(UPSERT_CONTACT)
    await harness.start_worker()
    params = {
        "contactId": "c-1",
        "revision": "r1",
        "tenant": "acme",
        "vip": False,
        "locale": "fr-FR",
        "trace": "t-9",
        "name": "Ann",
        "age": 0,
        "score": 0.5,
        "born": "2000-01-01",
        "seen": "2026-11-27T12:00:00Z",
        "address": {},
        "lucky": [],
        "priority": 5,
    }
    await harness.publish(step_event("e-opt", "upsertContact", params=params))

    [result] = await harness.results(1)
    assert result["status"] == "success", result["error"]
    [call] = harness.api.received
    assert call.raw_path == "/hook/contacts/c-1/revisions/r1"
    assert call.query == [("source", "journeys"), ("locale", "fr-FR"), ("vip", "false")]
    assert call.headers["X-Trace"] == "t-9"
    body = call.json()
    assert "tags" not in body
    assert "nickname" not in body
    assert body["lucky"] == []
    assert body["score"] == 0.5
    assert body["meta"] == {"channel": "journey", "priority": 5}


@pytest.mark.parametrize(("method", "status"), [("GET", 302), ("POST", 307)])
async def test_redirect_is_followed(harness: WorkerHarness, method: str, status: int) -> None:
    definition: dict[str, Any] = {"name": "moved", "method": method}
    if method == "POST":
        definition["body"] = {"n": {"$var": "n", "type": "integer"}}
    harness.action(definition)
    harness.api.script(Reply(status=status, headers={"Location": "/elsewhere"}, json=None))
    harness.api.default = Reply(json={"where": "elsewhere"})
    await harness.start_worker()
    await harness.publish(step_event("e-moved", "moved", params={"n": 1}))

    [result] = await harness.results(1)
    assert result["status"] == "success"
    assert result["status_code"] == "http_200"
    assert result["response"] == {"where": "elsewhere"}
    first, second = harness.api.received
    assert (first.path, second.path) == ("/hook", "/elsewhere")
    assert second.method == method
    assert second.headers["Idempotency-Key"] == "e-moved"
    if method == "POST":
        assert second.json() == {"n": 1}


async def test_five_redirects_in_a_row_are_followed(harness: WorkerHarness) -> None:
    harness.action({"name": "hops", "method": "GET"})
    harness.api.script(
        *(Reply(status=302, headers={"Location": f"/hop{n}"}, json=None) for n in range(1, 6))
    )
    await harness.start_worker()
    await harness.publish(step_event("e-hops", "hops"))

    [result] = await harness.results(1)
    assert result["status"] == "success", result["error"]
    assert [call.path for call in harness.api.received] == [
        "/hook",
        "/hop1",
        "/hop2",
        "/hop3",
        "/hop4",
        "/hop5",
    ]


async def test_a_sixth_redirect_is_an_error(harness: WorkerHarness) -> None:
    harness.action({"name": "loop", "method": "GET"})
    harness.api.default = Reply(status=302, headers={"Location": "/hook"}, json=None)
    await harness.start_worker()
    await harness.publish(step_event("e-loop", "loop"))

    [result] = await harness.results(1)
    assert result["status"] == "error"
    assert result["error"]["type"] == "too_many_redirects"
    assert "127.0.0.1" in result["error"]["message"]
    assert len(harness.api.received) == 6


async def test_a_cookie_set_for_one_event_is_not_sent_with_the_next(
    harness: WorkerHarness,
) -> None:
    # By name: aiohttp's default jar ignores cookies of IP addresses anyway.
    harness.action(
        {
            "name": "notify",
            "url": f"http://localhost:{harness.api.port}/hook",
            "body": {"id": {"$var": "id", "type": "string"}},
        }
    )
    harness.api.script(Reply(200, headers={"Set-Cookie": "session=profile-a; Path=/"}))
    await harness.start_worker(prefetch=1)
    await harness.publish({"event_id": "e-a", "action": "notify", "params": {"id": "a"}})
    await harness.results(1)
    await harness.publish({"event_id": "e-b", "action": "notify", "params": {"id": "b"}})
    await harness.results(1)
    first, second = harness.api.received
    assert first.json() == {"id": "a"}
    assert "Cookie" not in second.headers
