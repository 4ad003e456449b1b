from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import pytest
from aio_pika import IncomingMessage
from aiormq.abc import AbstractChannel, DeliveredMessage
from pamqp.commands import Basic
from pamqp.header import ContentHeader

from actionrelay.broker.copies import copy_message
from actionrelay.broker.delivery import Delivery

FIELDS = [
    "body",
    "headers",
    "delivery_tag",
    "consumer_tag",
    "redelivered",
    "correlation_id",
    "reply_to",
    "message_id",
    "content_type",
    "content_encoding",
    "priority",
    "timestamp",
    "type",
    "app_id",
]


def delivered(properties: Basic.Properties, *, redelivered: bool = False) -> DeliveredMessage:
    body = b'{"event_id": "e-1"}'
    return DeliveredMessage(
        delivery=Basic.Deliver(
            consumer_tag="ctag", delivery_tag=7, redelivered=redelivered, routing_key="requests"
        ),
        header=ContentHeader(body_size=len(body), properties=properties),
        body=body,
        channel=cast(AbstractChannel, object()),
    )


FULL = Basic.Properties(
    headers={"x-actionrelay-attempt": 2, "traceparent": "00-ab-cd-01"},
    content_type="application/json",
    content_encoding="utf-8",
    priority=3,
    correlation_id="corr-1",
    reply_to="replies",
    message_id="e-1",
    timestamp=datetime(2026, 12, 5, 12, 0, tzinfo=UTC),
    message_type="step",
    app_id="journeys",
    delivery_mode=2,
)


EMPTY_STRINGS = Basic.Properties(
    correlation_id="", reply_to="", message_id="", message_type="", app_id="", content_type=""
)


@pytest.mark.parametrize(
    "properties", [FULL, Basic.Properties(), EMPTY_STRINGS], ids=["all set", "none set", "empty"]
)
@pytest.mark.parametrize("redelivered", [False, True])
def test_a_delivery_reads_every_field_as_aio_pikas_incoming_message_does(
    properties: Basic.Properties, redelivered: bool
) -> None:
    message = delivered(properties, redelivered=redelivered)
    ours, theirs = Delivery(message), IncomingMessage(message)
    assert {f: getattr(ours, f) for f in FIELDS} == {f: getattr(theirs, f) for f in FIELDS}


def test_a_copy_of_a_delivery_is_the_copy_of_the_incoming_message() -> None:
    message = delivered(FULL)
    ours = copy_message(Delivery(message), {"h": 1})
    theirs = copy_message(IncomingMessage(message), {"h": 1})
    assert ours.properties == theirs.properties
    assert ours.body == theirs.body
