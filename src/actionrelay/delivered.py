"""A step event as RabbitMQ delivered it, read straight off aiormq.

aio-pika's ``IncomingMessage`` copies every property into a locked object on
arrival and runs the consumer in a second task. At thousands of events a
second both show in a profile (docs/performance.md), so the worker consumes
on the aiormq channel and reads a property only when it needs it.
``Received`` is what the rest of actionrelay reads of a message; aio-pika's
``IncomingMessage`` (the ops tools' consumers) fits it too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from aiormq.abc import AbstractChannel, DeliveredMessage


class Received(Protocol):
    @property
    def body(self) -> bytes: ...
    @property
    def headers(self) -> dict[str, Any]: ...
    @property
    def content_type(self) -> str | None: ...
    @property
    def content_encoding(self) -> str | None: ...
    @property
    def priority(self) -> int | None: ...
    @property
    def correlation_id(self) -> str | None: ...
    @property
    def reply_to(self) -> str | None: ...
    @property
    def message_id(self) -> str | None: ...
    @property
    def timestamp(self) -> datetime | None: ...
    @property
    def type(self) -> str | None: ...
    @property
    def app_id(self) -> str | None: ...


class Delivery:
    """One delivery on the worker's channel: its body, tag and properties."""

    __slots__ = ("_properties", "body", "channel", "delivery_tag", "redelivered")

    def __init__(self, message: DeliveredMessage) -> None:
        self.body: bytes = message.body
        self.channel: AbstractChannel = message.channel
        self.delivery_tag: int = message.delivery_tag or 0
        self.redelivered: bool = bool(message.redelivered)
        self._properties = message.header.properties

    @property
    def headers(self) -> dict[str, Any]:
        return self._properties.headers or {}

    @property
    def content_type(self) -> str | None:
        return self._properties.content_type

    @property
    def content_encoding(self) -> str | None:
        return self._properties.content_encoding

    @property
    def priority(self) -> int | None:
        return self._properties.priority

    @property
    def correlation_id(self) -> str | None:
        return self._properties.correlation_id

    @property
    def reply_to(self) -> str | None:
        return self._properties.reply_to

    @property
    def message_id(self) -> str | None:
        return self._properties.message_id

    @property
    def timestamp(self) -> datetime | None:
        return self._properties.timestamp

    @property
    def type(self) -> str | None:
        return self._properties.message_type

    @property
    def app_id(self) -> str | None:
        return self._properties.app_id

    def __repr__(self) -> str:
        return f"<Delivery tag={self.delivery_tag} message_id={self.message_id!r}>"
