from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from aio_pika import IncomingMessage
from aiormq.abc import AbstractChannel, DeliveredMessage
from pamqp.commands import Basic
from pamqp.header import ContentHeader

from actionrelay.broker.copies import copy_message


def incoming(properties: Basic.Properties) -> IncomingMessage:
    body = b'{"event_id": "e-1"}'
    return IncomingMessage(
        DeliveredMessage(
            delivery=Basic.Deliver(consumer_tag="ctag", delivery_tag=7, routing_key="requests"),
            header=ContentHeader(body_size=len(body), properties=properties),
            body=body,
            channel=cast(AbstractChannel, object()),
        )
    )


def test_copy_keeps_body_and_properties_with_the_new_headers_and_is_persistent() -> None:
    sent_at = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    properties = Basic.Properties(
        headers={"a": 1},
        content_type="application/json",
        correlation_id="corr-1",
        reply_to="replies",
        message_id="e-1",
        timestamp=sent_at,
        message_type="step",
        app_id="journeys",
        expiration="60000",
        user_id="guest",
        delivery_mode=1,
    )
    copy = copy_message(incoming(properties), {"a": 1, "b": 2})
    assert copy.body == b'{"event_id": "e-1"}'
    assert copy.headers == {"a": 1, "b": 2}
    assert (copy.correlation_id, copy.reply_to, copy.message_id) == ("corr-1", "replies", "e-1")
    assert (copy.type, copy.app_id, copy.timestamp) == ("step", "journeys", sent_at)
    assert copy.delivery_mode == 2
    # An expiration could drop the copy unseen; RabbitMQ checks user_id against the publisher.
    assert copy.expiration is None
    assert copy.user_id is None
