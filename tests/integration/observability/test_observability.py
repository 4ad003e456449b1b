"""Metrics scraped over HTTP after real traffic, and W3C trace context end to end."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp
import orjson
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.support import RecordingApi, Reply, WorkerHarness

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        assert response.status == 200
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_count_real_traffic(harness: WorkerHarness) -> None:
    harness.action({"name": "ok", "url": f"{harness.api.url}/ok"})
    harness.action({"name": "missing", "url": f"{harness.api.url}/missing"})
    harness.action({"name": "limited", "url": f"{harness.api.url}/limited"})
    (harness.settings.actions_dir / "endpoints.yaml").write_text(
        f"- url: {harness.api.url}/limited\n  capping: {{max_calls: 1, period_ms: 60000}}\n"
    )

    def reply(received: object) -> Reply:
        return Reply(404) if getattr(received, "path", "") == "/missing" else Reply(201)

    harness.api.reply_for = reply  # type: ignore[method-assign]
    port = free_port()
    await harness.spawn_worker(http_port=port, http_host="127.0.0.1")
    await harness.wait_consuming(1)
    for n in range(5):
        await harness.publish({"event_id": f"ok-{n}", "action": "ok"})
    for n in range(2):
        await harness.publish({"event_id": f"missing-{n}", "action": "missing"})
    await harness.publish({"event_id": "x", "action": "nope"})
    for n in range(3):
        await harness.publish({"event_id": f"limited-{n}", "action": "limited"})
    await harness.results(11)
    await harness.collect(harness.settings.dead_letter_queue, 3)
    samples = await scrape(port)
    host = "127.0.0.1"
    for _ in range(50):  # the last counters move just after the last confirm
        if sum(v for (n, _), v in samples.items() if n == "actionrelay_dead_lettered_total") == 3:
            break
        await asyncio.sleep(0.1)
        samples = await scrape(port)

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("actionrelay_calls_total", action="ok", endpoint=host, status_code="http_201") == 5
    assert (
        value("actionrelay_calls_total", action="missing", endpoint=host, status_code="http_404")
        == 2
    )
    assert (
        value("actionrelay_results_total", action="ok", status="success", status_code="http_201")
        == 5
    )
    assert value("actionrelay_dead_lettered_total", action="missing", error_type="http_error") == 2
    assert value("actionrelay_dead_lettered_total", action="nope", error_type="unknown_action") == 1
    assert value("actionrelay_call_duration_seconds_count", action="ok", endpoint=host) == 5
    assert value("actionrelay_consumer_up") == 1
    assert value("actionrelay_capped_total", action="limited", endpoint=host) == 2
    assert (
        value("actionrelay_results_total", action="limited", status="capped", status_code="capped")
        == 2
    )
    assert value("actionrelay_in_flight") == 0


async def test_traceparent_reaches_the_api_and_the_result(harness: WorkerHarness) -> None:
    harness.action({"name": "traced"})
    await harness.start_worker()
    reply_to = await harness.reply_queue()
    await harness.publish(
        {"event_id": "t-1", "action": "traced"},
        reply_to=reply_to,
        headers={"traceparent": TRACEPARENT, "tracestate": "vendor=1"},
    )
    [result] = await harness.collect(reply_to, 1)
    [call] = harness.api.received
    assert call.headers["traceparent"] == TRACEPARENT
    assert call.headers["tracestate"] == "vendor=1"
    assert result.headers["traceparent"] == TRACEPARENT
    assert orjson.loads(result.body)["status"] == "success"


class OtlpCollector(RecordingApi):
    """A real OTLP/HTTP receiver on loopback that keeps the spans it is sent."""

    def spans(self) -> list[Any]:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        found = []
        for received in self.received:
            request = ExportTraceServiceRequest()
            request.ParseFromString(received.body)
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    found.extend(scope.spans)
        return found


async def test_otlp_spans_are_children_of_the_event_trace(harness: WorkerHarness) -> None:
    collector = OtlpCollector()
    await collector.start()
    try:
        harness.action({"name": "traced"})
        process = await harness.spawn_worker(otlp_endpoint=f"{collector.url}/v1/traces")
        await harness.wait_consuming(1)
        await harness.publish(
            {"event_id": "t-otel", "action": "traced"}, headers={"traceparent": TRACEPARENT}
        )
        await harness.results(1)
        await harness.terminate(process)  # the exporter flushes on a graceful stop
        [span] = collector.spans()
    finally:
        await collector.stop()
    _, trace_id, parent_id, _ = TRACEPARENT.split("-")
    assert span.name == "actionrelay.call"
    assert span.trace_id.hex() == trace_id
    assert span.parent_span_id.hex() == parent_id
    attributes = {a.key: a.value for a in span.attributes}
    assert attributes["http.response.status_code"].int_value == 200
    assert attributes["actionrelay.event_id"].string_value == "t-otel"
    [call] = harness.api.received
    sent = call.headers["traceparent"].split("-")
    assert sent[1] == trace_id  # same trace …
    assert sent[2] == span.span_id.hex()  # … the call's own span as parent
