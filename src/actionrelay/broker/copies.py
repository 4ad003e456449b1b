"""Copies of a step event: for a retry, a holding queue, the dead-letter queue or a replay."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aio_pika
from aio_pika.abc import DeliveryMode

from actionrelay.broker.delivery import Incoming
from actionrelay.core.deadletter import BROKER_HEADERS


def copy_with(incoming: Incoming, headers: Mapping[str, Any]) -> aio_pika.Message:
    """The same event with ``headers`` added (None values removed), persistent.

    RabbitMQ's own dead-lettering headers are left out: a copy is a new
    message, and RabbitMQ drops a message dead-lettered into a queue its
    ``x-death`` already names (its cycle detection), which a second pass down
    the delay ladder would otherwise be.
    """
    merged = {k: v for k, v in incoming.headers.items() if k not in BROKER_HEADERS}
    for key, value in headers.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return copy_message(incoming, merged)


def copy_message(incoming: Incoming, headers: dict[str, Any]) -> aio_pika.Message:
    """The original body and properties with ``headers``, persistent.

    ``expiration`` and ``user_id`` are not copied: the first could drop the copy
    unseen, the second is checked by RabbitMQ against the publishing user.
    """
    return aio_pika.Message(
        body=incoming.body,
        headers=headers,
        content_type=incoming.content_type,
        content_encoding=incoming.content_encoding,
        delivery_mode=DeliveryMode.PERSISTENT,
        priority=incoming.priority,
        correlation_id=incoming.correlation_id,
        reply_to=incoming.reply_to,
        message_id=incoming.message_id,
        timestamp=incoming.timestamp,
        type=incoming.type,
        app_id=incoming.app_id,
    )
