"""Step event in, third-party call, result event out, against real RabbitMQ and HTTP."""

from __future__ import annotations

from tests.integration.support import WorkerHarness


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
