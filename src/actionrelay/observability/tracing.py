"""W3C trace context, and OpenTelemetry spans when an OTLP endpoint is configured.

Without ``ACTIONRELAY_OTLP_ENDPOINT`` the step event's ``traceparent`` and
``tracestate`` pass through unchanged to the call and the result. With it (and
the ``otel`` extra installed) each call runs in a client span, child of the
event's trace, exported over OTLP/HTTP; the call carries the span's context.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from actionrelay.core.errors import ConfigError


@dataclass(slots=True)
class CallSpan:
    """Headers to send with the call; ``finish`` records its outcome."""

    headers: dict[str, str]
    span: Any = None

    # Only for PassThrough, which hands out the span itself: no wrapper object per call.
    def __enter__(self) -> CallSpan:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def finish(self, status_code: str, http_status: int | None) -> None:
        if self.span is None:
            return
        self.span.set_attribute("actionrelay.status_code", status_code)
        if http_status is not None:
            self.span.set_attribute("http.response.status_code", http_status)
        if not status_code.startswith("http_2"):
            from opentelemetry.trace import Status, StatusCode

            self.span.set_status(Status(StatusCode.ERROR, status_code))


class Tracing(Protocol):
    def call(
        self, carrier: Mapping[str, str], attributes: dict[str, Any]
    ) -> AbstractContextManager[CallSpan]: ...

    def shutdown(self) -> None: ...


class PassThrough:
    def call(
        self, carrier: Mapping[str, str], attributes: dict[str, Any]
    ) -> AbstractContextManager[CallSpan]:
        return CallSpan(dict(carrier))

    def shutdown(self) -> None:
        return None


class OpenTelemetry:
    def __init__(self, endpoint: str, service_name: str = "actionrelay") -> None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
            from opentelemetry.trace.propagation.tracecontext import (
                TraceContextTextMapPropagator,
            )
        except ImportError as exc:
            raise ConfigError(
                "ACTIONRELAY_OTLP_ENDPOINT is set but OpenTelemetry is not installed: "
                "pip install 'actionrelay[otel]'"
            ) from exc
        resource = Resource.create({"service.name": service_name})
        self._provider = TracerProvider(resource=resource)
        self._provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        self._tracer = self._provider.get_tracer("actionrelay")
        self._propagator = TraceContextTextMapPropagator()

    @contextmanager
    def call(self, carrier: Mapping[str, str], attributes: dict[str, Any]) -> Iterator[CallSpan]:
        from opentelemetry.trace import SpanKind

        parent = self._propagator.extract(carrier=dict(carrier))
        with self._tracer.start_as_current_span(
            "actionrelay.call", context=parent, kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            outgoing: dict[str, str] = {}
            self._propagator.inject(outgoing)
            yield CallSpan(outgoing, span)

    def shutdown(self) -> None:
        self._provider.shutdown()


def tracing_for(otlp_endpoint: str | None) -> Tracing:
    return OpenTelemetry(otlp_endpoint) if otlp_endpoint else PassThrough()
