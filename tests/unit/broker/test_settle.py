"""What the settler does when publishing fails: the broker went away, or would not take it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

import aiormq
from aio_pika.abc import AbstractIncomingMessage

from actionrelay.broker.attempt import Attempt, Fate
from actionrelay.broker.broker import Broker, Refused
from actionrelay.broker.settle import Settler
from actionrelay.core.event import ActionResult
from actionrelay.core.retry import RetryState
from actionrelay.observability.metrics import Metrics
from actionrelay.settings import Settings
from tests.unit.support import RecordedAcks


class Delivery:
    """Stands in for an aio-pika delivery: its channel, tag and the nacks sent for it."""

    reply_to = None
    correlation_id = None
    message_id = "e-1"
    headers: dict[str, Any] = {}  # noqa: RUF012 - read only

    def __init__(self, *, channel_open: bool) -> None:
        self._channel = RecordedAcks()
        self._channel_open = channel_open
        self.delivery_tag = 3
        self.nacks: list[bool] = []

    @property
    def channel(self) -> RecordedAcks:
        if not self._channel_open:  # as aio-pika's IncomingMessage does
            raise aiormq.exceptions.ChannelInvalidStateError
        return self._channel

    async def nack(self, requeue: bool = True) -> None:
        self.nacks.append(requeue)


class LostBroker:
    async def publish_result(self, *_: Any, **__: Any) -> None:
        raise aiormq.exceptions.ChannelInvalidStateError("the publishing channel is closed")


async def settle_with_lost_broker(delivery: Delivery, *, delivered: bool = True) -> None:
    settler = Settler(cast(Broker, LostBroker()), Metrics(), Settings())
    message = cast(AbstractIncomingMessage, delivery)
    if delivered:
        settler.delivered(message)
    result = ActionResult(
        event_id="e-1",
        action="notify",
        status="success",
        status_code="http_200",
        completed_at="2026-11-27T12:00:00.000Z",
    )
    attempt = Attempt(message, RetryState.from_headers({}, datetime.now(UTC)))
    await settler.settle(attempt, Fate.DONE, result, None, 0.0)
    await asyncio.sleep(0.01)  # past the ack batcher's flush


async def test_held_event_whose_channel_is_open_is_given_back_when_publishing_fails() -> None:
    delivery = Delivery(channel_open=True)
    await settle_with_lost_broker(delivery)
    assert delivery.nacks == [True]
    assert delivery._channel.frames == []  # never acked: its result was not confirmed


async def test_event_whose_channel_died_is_left_to_redelivery() -> None:
    delivery = Delivery(channel_open=False)  # closed before its call ended
    await settle_with_lost_broker(delivery, delivered=False)
    assert delivery.nacks == []  # RabbitMQ redelivers it; nothing to send on a dead channel


class RefusingBroker:
    """Publishes nothing: each kind of publish fails with what the test sets."""

    def __init__(
        self,
        result: Exception | None = None,
        retry: Exception | None = None,
        dead_letter: list[Exception | None] | None = None,
    ) -> None:
        self.result_error, self.retry_error = result, retry
        self.dead_letter_errors = list(dead_letter or [None])
        self.dead_letters: list[tuple[dict[str, Any], bool]] = []

    async def publish_result(self, *_: Any, **__: Any) -> None:
        if self.result_error is not None:
            raise self.result_error

    async def publish_retry(self, *_: Any, **__: Any) -> int:
        if self.retry_error is not None:
            raise self.retry_error
        return 300

    async def dead_letter(
        self, _message: Any, metadata: dict[str, Any], *, keep_headers: bool = True
    ) -> None:
        error = self.dead_letter_errors.pop(0) if self.dead_letter_errors else None
        if error is not None:
            raise error
        self.dead_letters.append((metadata, keep_headers))


async def settle_with(broker: RefusingBroker, fate: Fate = Fate.DONE) -> tuple[Delivery, Metrics]:
    metrics = Metrics()
    settler = Settler(cast(Broker, broker), metrics, Settings())
    delivery = Delivery(channel_open=True)
    message = cast(AbstractIncomingMessage, delivery)
    settler.delivered(message)
    result = ActionResult(
        event_id="e-1",
        action="notify",
        status="success",
        status_code="http_200",
        http_status=200,
        attempts=1,
        completed_at="2026-11-27T12:00:00.000Z",
    )
    attempt = Attempt(message, RetryState.from_headers({}, datetime.now(UTC)))
    await settler.settle(attempt, fate, result, None, 0.3)
    await asyncio.sleep(0.01)  # past the ack batcher's flush
    return delivery, metrics


def unpublishable(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value(
        "actionrelay_results_unpublishable_total", {"action": "notify"}
    )
    return value or 0.0


async def test_a_result_that_cannot_be_encoded_is_dead_lettered_once_and_acked() -> None:
    broker = RefusingBroker(result=TypeError("message_id is longer than 255 bytes"))
    delivery, metrics = await settle_with(broker)
    [(metadata, keep_headers)] = broker.dead_letters
    assert metadata["error-type"] == "result_unpublishable"
    assert "message_id is longer than 255 bytes" in metadata["error-message"]
    assert "called 1 time(s), and it is not called again" in metadata["error-message"]
    assert (metadata["status-code"], metadata["http-status"]) == ("http_200", 200)
    assert keep_headers
    assert delivery.nacks == []  # never requeued: a redelivery would call the API again
    assert delivery._channel.frames == [(3, True)]
    assert unpublishable(metrics) == 1


async def test_a_result_refused_by_rabbitmq_is_dead_lettered_not_requeued() -> None:
    broker = RefusingBroker(result=Refused("RabbitMQ nacked it (routing key 'notify.success')"))
    delivery, metrics = await settle_with(broker)
    [(metadata, _)] = broker.dead_letters
    assert "RabbitMQ nacked it" in metadata["error-message"]
    assert delivery.nacks == []
    assert unpublishable(metrics) == 1


async def test_a_refused_retry_copy_gives_the_event_back_for_later() -> None:
    broker = RefusingBroker(retry=Refused("RabbitMQ nacked it"))
    delivery, metrics = await settle_with(broker, Fate.RETRY)
    assert delivery.nacks == [True]
    assert broker.dead_letters == []
    assert unpublishable(metrics) == 0


async def test_a_dead_letter_that_fails_with_the_events_headers_goes_without_them() -> None:
    broker = RefusingBroker(result=TypeError("x"), dead_letter=[ValueError("headers"), None])
    delivery, _ = await settle_with(broker)
    [(_, keep_headers)] = broker.dead_letters
    assert not keep_headers
    assert delivery._channel.frames == [(3, True)]


async def test_when_not_even_a_dead_letter_goes_rabbitmq_dead_letters_the_event() -> None:
    broker = RefusingBroker(result=TypeError("x"), dead_letter=[ValueError("a"), ValueError("b")])
    delivery, _ = await settle_with(broker)
    assert broker.dead_letters == []
    assert delivery.nacks == [False]  # to the dead-letter queue, x-death reason rejected
    assert delivery._channel.frames == []
