from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from aiormq.abc import AbstractChannel, DeliveredMessage
from pamqp.commands import Basic
from pamqp.header import ContentHeader

from actionrelay.broker import copy_message
from actionrelay.delivered import Delivery


def delivered(properties: Basic.Properties, *, tag: int = 7) -> DeliveredMessage:
    body = b'{"event_id": "e-1"}'
    return DeliveredMessage(
        delivery=Basic.Deliver(
            consumer_tag="ctag", delivery_tag=tag, redelivered=True, routing_key="requests"
        ),
        header=ContentHeader(body_size=len(body), properties=properties),
        body=body,
        channel=cast(AbstractChannel, object()),
    )


def test_delivery_reads_tag_body_and_every_property_the_worker_uses() -> None:
    sent_at = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    properties = Basic.Properties(
        headers={"traceparent": "00-abc-def-01", "x-actionrelay-attempts": 2},
        content_type="application/json",
        content_encoding="utf-8",
        priority=3,
        correlation_id="corr-1",
        reply_to="journey.replies",
        message_id="e-1",
        timestamp=sent_at,
        message_type="step",
        app_id="journeys",
    )
    delivery = Delivery(delivered(properties))
    assert (delivery.delivery_tag, delivery.redelivered) == (7, True)
    assert delivery.body == b'{"event_id": "e-1"}'
    assert delivery.headers == {"traceparent": "00-abc-def-01", "x-actionrelay-attempts": 2}
    read: dict[str, Any] = {
        name: getattr(delivery, name)
        for name in (
            "content_type",
            "content_encoding",
            "priority",
            "correlation_id",
            "reply_to",
            "message_id",
            "timestamp",
            "type",
            "app_id",
        )
    }
    assert read == {
        "content_type": "application/json",
        "content_encoding": "utf-8",
        "priority": 3,
        "correlation_id": "corr-1",
        "reply_to": "journey.replies",
        "message_id": "e-1",
        "timestamp": sent_at,
        "type": "step",
        "app_id": "journeys",
    }


def test_delivery_without_properties_reads_none_and_no_headers() -> None:
    delivery = Delivery(delivered(Basic.Properties()))
    assert delivery.headers == {}
    assert delivery.reply_to is None
    assert delivery.message_id is None


def test_copy_of_a_delivery_keeps_body_and_properties_and_is_persistent() -> None:
    properties = Basic.Properties(
        headers={"a": 1}, correlation_id="corr-1", reply_to="replies", message_type="step"
    )
    copy = copy_message(Delivery(delivered(properties)), {"a": 1, "b": 2})
    assert copy.body == b'{"event_id": "e-1"}'
    assert copy.headers == {"a": 1, "b": 2}
    assert (copy.correlation_id, copy.reply_to, copy.type) == ("corr-1", "replies", "step")
    assert copy.delivery_mode == 2
