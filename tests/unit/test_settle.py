"""What the settler does when publishing fails because the broker went away."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

import aiormq
from aio_pika.abc import AbstractIncomingMessage

from actionrelay.attempt import Attempt, Fate
from actionrelay.broker import Broker
from actionrelay.event import ActionResult
from actionrelay.metrics import Metrics
from actionrelay.retry import RetryState
from actionrelay.settings import Settings
from actionrelay.settle import Settler
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
