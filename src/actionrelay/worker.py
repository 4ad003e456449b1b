"""The worker: step event in, third-party call, result event out.

Ack policy, one rule per outcome (``Fate``, carried out by broker/settle.py):
- DONE: the result event is confirmed by the broker, then the event is acked;
- RETRY / PARK: a copy waits in the delay ladder (confirmed), then it is acked;
- HOLD: a copy joins the endpoint's holding queue (confirmed), then it is acked;
- DEAD: the final result and the dead letter are confirmed, then it is acked.
A worker that dies before the ack leaves the event to RabbitMQ, which
redelivers it (at-least-once); the quorum queue's delivery limit dead-letters
an event that keeps killing workers.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from typing import Any

import structlog

from actionrelay.broker.attempt import (
    Attempt,
    Fate,
    InternalError,
    Verdict,
    call_timeout,
    held_since,
    trace_headers,
)
from actionrelay.broker.broker import Broker
from actionrelay.broker.delivery import Incoming
from actionrelay.broker.settle import Settler
from actionrelay.catalog.loader import Catalog
from actionrelay.core import retry
from actionrelay.core.action import ActionDefinition
from actionrelay.core.errors import DeadlineExpired, HttpStatusError, StepFailure, UnknownAction
from actionrelay.core.event import (
    ActionResult,
    StepRecord,
    check_headers,
    parse_step_event,
    salvage_ids,
)
from actionrelay.core.payload import OutboundRequest, build_request
from actionrelay.core.result import check_status, failure_result, success_result
from actionrelay.core.secret import Redactor
from actionrelay.http.client import Endpoint, HttpClient
from actionrelay.limits.endpoint import Breaker, EndpointTable
from actionrelay.limits.gate import Capped, EndpointGate, Hold, Park
from actionrelay.limits.limiter import RateLimits
from actionrelay.observability.metrics import Metrics
from actionrelay.observability.tracing import PassThrough, Tracing
from actionrelay.settings import Settings

log = structlog.get_logger("actionrelay.worker")


class Worker:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        broker: Broker,
        http: HttpClient,
        *,
        gate: EndpointGate | None = None,
        redactor: Redactor | None = None,
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.broker = broker
        self.http = http
        # By default the client's: the tokens it fetches are masked here too.
        self.redactor = redactor or http.redactor
        self.redactor.add(*catalog.secrets)
        self.metrics = metrics or Metrics()
        self.tracing = tracing or PassThrough()
        self._endpoints = {name: Endpoint.for_action(a) for name, a in catalog.items()}
        self.gate = gate or EndpointGate(
            EndpointTable([]), RateLimits(None), Breaker(failures=50, cool_down_seconds=30)
        )
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._in_flight: set[asyncio.Task[Any]] = set()
        # Tasks still before their bookkeeping: the only ones shutdown may cancel.
        self._calling: set[asyncio.Task[Any]] = set()
        self.settler = Settler(broker, self.metrics, settings)
        self._stop = asyncio.Event()

    def request_stop(self) -> None:
        self._stop.set()

    def replace_catalog(self, catalog: Catalog, endpoints: EndpointTable) -> None:
        """Swap in a reloaded catalog; events already in flight finish with the old one.

        A newly throttled endpoint needs a restart to get its holding-queue consumer.
        """
        new_endpoints = {name: Endpoint.for_action(a) for name, a in catalog.items()}
        self.redactor.add(*catalog.secrets)
        self.catalog, self._endpoints = catalog, new_endpoints
        self.gate.table = endpoints

    async def run(self) -> None:
        """Consume until ``request_stop``; then shut down gracefully."""
        # Holding queues first: the first throttled event must find its queue declared,
        # or concurrent declarations could reorder the first few.
        await self.broker.start_consuming(
            self.gate.throttled(), self._on_held_message, self._receive
        )
        log.info(
            "worker.consuming",
            queue=self.settings.request_queue,
            prefetch=self.settings.prefetch,
            actions=len(self.catalog),
            worker_id=self.settings.worker_id,
            event_loop=type(asyncio.get_running_loop()).__module__.split(".")[0],
        )
        await self._stop.wait()
        await self.shutdown()

    async def shutdown(self) -> None:
        """Stop taking work, let in-flight calls finish within the grace, cancel the rest."""
        await self.broker.stop_consuming()
        grace = self.settings.shutdown_grace_seconds
        log.info("worker.stopping", in_flight=len(self._in_flight), grace_seconds=grace)
        if self._in_flight:
            _, pending = await asyncio.wait(self._in_flight, timeout=grace)
            # Publishing and acking are bookkeeping: a task past its call is never cut
            # in half; one still calling is cancelled and its event redelivered.
            abandoned = [task for task in pending if task in self._calling]
            for task in abandoned:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
            if abandoned:
                log.warning("worker.abandoned", events=len(abandoned), note="will be redelivered")
        await self.settler.drain()
        self.gate.limits.close()
        log.info("worker.stopped")

    async def _on_held_message(self, message: Incoming) -> None:
        await self._receive(message, held_since(message.headers))

    async def _receive(self, message: Incoming, held_since: float | None = None) -> None:
        self.settler.delivered(message)
        task = asyncio.current_task()
        assert task is not None
        self._in_flight.add(task)
        self._calling.add(task)
        self.metrics.in_flight.inc()
        try:  # one coroutine frame per open call, not two: _fate_of_failure is plain code
            now = datetime.now(UTC)
            attempt = Attempt(message, retry.RetryState.from_headers(message.headers, now))
            attempt.held_since = held_since
            try:
                result = await self._call(attempt)
            except Exception as exc:  # noqa: BLE001 - every failure has a fate, a bug too
                # Decided here, so that the exception and its frames go with the clause.
                verdict = self._fate_of_failure(attempt, exc)
            else:
                verdict = Verdict(Fate.DONE, 0.0, None, None, result)
            self._calling.discard(task)
            await self.settler.settle(
                attempt, verdict.fate, verdict.result, verdict.failure, verdict.delay, verdict.hold
            )
        finally:
            self._in_flight.discard(task)
            self._calling.discard(task)
            self.metrics.in_flight.dec()

    def _fate_of_failure(self, attempt: Attempt, exc: Exception) -> Verdict:
        """What becomes of an event whose call raised ``exc``: throttled, capped or failed.

        Masks credentials in the failure, and logs an exception actionrelay did not
        expect (a bug) with its traceback before turning it into an internal error.
        """
        if isinstance(exc, Park):
            result = self._failure_result(attempt, StepFailure(exc.reason))
            return Verdict(Fate.PARK, exc.seconds, None, None, result)
        if isinstance(exc, Hold):
            result = self._failure_result(attempt, StepFailure("held"))
            return Verdict(Fate.HOLD, 0.0, None, exc.endpoint, result)
        if isinstance(exc, Capped):
            self._mask(exc)
            return Verdict(Fate.DONE, 0.0, None, None, self._failure_result(attempt, exc))
        if isinstance(exc, StepFailure):
            failure = exc
        else:  # a bug must not lose or stall the event
            event_id = attempt.event and attempt.event.event_id
            log.error("worker.internal_error", event_id=event_id, exc_info=exc)
            kind = type(exc).__name__
            failure = InternalError(f"actionrelay internal error: {kind}: {exc}")
        self._mask(failure)
        fate, delay, failure = self._retry_or_dead(attempt, failure)
        return Verdict(fate, delay, failure, None, self._failure_result(attempt, failure))

    async def _call(self, attempt: Attempt) -> ActionResult:
        event, action, request = self._prepare(attempt)
        passage = await self.gate.admit(
            request.method, request.url, held_since=attempt.held_since, action=action.name
        )
        timeout = call_timeout(action, attempt.deadline())  # the gate may have waited
        attempt.called_at = datetime.now(UTC)
        host = request.url.host or ""
        with self.tracing.call(
            trace_headers(attempt.message),
            {"actionrelay.action": action.name, "actionrelay.event_id": event.event_id},
        ) as span:
            request.headers.update(span.headers)
            try:
                async with self.gate.connection(passage, timeout):
                    response = await self.http.call(request, timeout, self._endpoints[action.name])
            except StepFailure as exc:
                span.finish(exc.status_code, exc.http_status)
                self.gate.record(passage, None, exc)
                self.metrics.calls.labels(action.name, host, exc.status_code).inc()
                raise
            span.finish(f"http_{response.status}", response.status)
        self.gate.record(passage, response.status, None)
        self.metrics.calls.labels(action.name, host, f"http_{response.status}").inc()
        self.metrics.latency.labels(action.name, host).observe(response.latency_ms / 1000)
        attempt.latency_ms = response.latency_ms
        check_status(action, response, request.url.host, self.redactor.mask)
        result = success_result(event, action, response, attempts=attempt.attempts)
        result.response = self.redactor.mask_value(result.response)  # an API may echo them
        return result

    def _prepare(self, attempt: Attempt) -> tuple[StepRecord, ActionDefinition, OutboundRequest]:
        """Validate the event and build its request. Of the validated event only a
        ``StepRecord`` outlives this frame: the call holds the request, not the params twice.
        """
        check_headers(attempt.message.headers)
        event = parse_step_event(attempt.message.body)
        attempt.event = record = StepRecord.of(event)
        attempt.action = action = self._lookup(event.action)
        call_timeout(action, attempt.deadline())
        return record, action, build_request(action, event.params, event.event_id)

    def _mask(self, failure: StepFailure) -> None:
        """Credentials never leave in a result, a dead letter or a log line."""
        failure.message = self.redactor.mask(failure.message)
        if isinstance(failure, HttpStatusError):
            failure.body_excerpt = self.redactor.mask(failure.body_excerpt)

    def _lookup(self, name: str) -> ActionDefinition:
        try:
            return self.catalog[name]
        except KeyError:
            known = ", ".join(sorted(self.catalog)) or "none"
            raise UnknownAction(f"unknown action {name!r} (known actions: {known})") from None

    def _retry_or_dead(
        self, attempt: Attempt, failure: StepFailure
    ) -> tuple[Fate, float, StepFailure]:
        if attempt.action is None or attempt.called_at is None:
            return Fate.DEAD, 0.0, failure
        decision = retry.decide(
            failure,
            attempt.action.retry,
            attempt=attempt.attempts,
            now=datetime.now(UTC),
            deadline=attempt.deadline(),
            rng=self._rng,
        )
        if decision.retry:
            return Fate.RETRY, decision.delay_seconds, failure
        if decision.reason == "deadline":
            failure = DeadlineExpired(
                f"deadline would pass before the next attempt in {decision.delay_seconds:.1f} s; "
                f"last failure: {failure.message}",
                http_status=failure.http_status,
            )
        return Fate.DEAD, 0.0, failure

    def _failure_result(self, attempt: Attempt, failure: StepFailure) -> ActionResult:
        event = attempt.event
        event_id, action_name = (
            (event.event_id, event.action) if event else salvage_ids(attempt.message.body)
        )
        return failure_result(
            failure,
            event_id=event_id,
            action_name=action_name,
            event=event,
            action=attempt.action,
            attempts=attempt.attempts,
            latency_ms=attempt.latency_ms,
        )
