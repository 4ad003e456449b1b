"""Broker-side waits for retries and parked events: a fixed ladder of quorum queues.

Pure: names, arguments, bindings and routing keys; ``broker.Topology``
declares them. A wait is counted in units of 100 ms, rounded up, and written
in binary. Level ``k`` is a quorum queue whose messages expire after
``2**k`` units; the copy goes through the level of every set bit, highest
first, and after the last one reaches the request queue. A 3.2 s wait (32
units, 100000 in binary) passes one queue; 1.1 s (11 units, 1011) passes three.

Why this shape (issue 12): RabbitMQ dead-letters from classic queues at most
once, so a copy expiring while the broker stops or starts was dropped. Quorum
queues with ``x-dead-letter-strategy: at-least-once`` keep an expired message
until its next queue has confirmed it. The ladder is a fixed set of queues
shared by every request queue of the virtual host: nothing expires, nothing is
created per delay, and a wait of any length up to 29 h is exact to 100 ms.

Routing (all topic exchanges): the routing key is one word per level, highest
first, then the request queue's name: ``0.0.….1.0.1.1.actionrelay.requests``.
Exchange ``L(k)`` sends a key whose bit ``k`` is 1 to queue ``L(k)`` and one
whose bit is 0 on to exchange ``L(k-1)``; queue ``L(k)`` dead-letters to
exchange ``L(k-1)`` with the key unchanged; after level 0 the ``deliver``
exchange routes on the name to the request queue, which binds to it. This is
the layout NServiceBus uses for delayed delivery on RabbitMQ, at 100 ms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

UNIT_MS = 100
LEVELS = 20
MAX_UNITS = (1 << LEVELS) - 1  # 29 h 7 min
MAX_DELAY_SECONDS = MAX_UNITS * UNIT_MS / 1000
MAX_ROUTING_KEY_BYTES = 255
WILDCARD_WORDS = frozenset({"*", "#"})


@dataclass(frozen=True, slots=True)
class Binding:
    """``source`` exchange sends keys matching ``pattern`` to ``destination``."""

    source: str
    destination: str
    kind: Literal["queue", "exchange"]
    pattern: str


@dataclass(frozen=True, slots=True)
class DelayLadder:
    """The ladder named ``prefix``: ``<prefix>.<wait>ms`` queues and exchanges."""

    prefix: str

    def units(self, delay_seconds: float) -> int:
        """The wait in 100 ms units, rounded up so no wait is shorter than decided."""
        units = math.ceil(round(max(delay_seconds, 0.0) * 1000) / UNIT_MS)
        return min(units, MAX_UNITS)

    def level_name(self, level: int) -> str:
        """Both the level's queue and its exchange, e.g. ``actionrelay.delay.3200ms``."""
        return f"{self.prefix}.{(1 << level) * UNIT_MS}ms"

    @property
    def entry(self) -> str:
        """The exchange every delayed copy is published to."""
        return self.level_name(LEVELS - 1)

    @property
    def deliver(self) -> str:
        """Where a copy leaves the ladder, routed by its request queue's name."""
        return f"{self.prefix}.deliver"

    def next_exchange(self, level: int) -> str:
        return self.level_name(level - 1) if level > 0 else self.deliver

    def routing_key(self, units: int, destination: str) -> str:
        bits = ".".join("1" if units >> k & 1 else "0" for k in reversed(range(LEVELS)))
        return f"{bits}.{destination}"

    def queue_arguments(self, level: int) -> dict[str, Any]:
        return {
            "x-queue-type": "quorum",
            "x-message-ttl": (1 << level) * UNIT_MS,
            "x-dead-letter-exchange": self.next_exchange(level),
            "x-dead-letter-strategy": "at-least-once",
            # at-least-once dead-lettering needs it; a full ladder nacks the copy,
            # and the worker then requeues the event instead of losing it.
            "x-overflow": "reject-publish",
        }

    def bindings(self) -> list[Binding]:
        """Each level: bit set, into its queue; bit clear, on to the next exchange."""
        result = []
        for level in range(LEVELS):
            before = "*." * (LEVELS - 1 - level)
            name = self.level_name(level)
            result.append(Binding(name, name, "queue", f"{before}1.#"))
            result.append(Binding(name, self.next_exchange(level), "exchange", f"{before}0.#"))
        return result

    def destination_pattern(self, destination: str) -> str:
        """The deliver exchange's binding for ``destination``: any bits, then its name."""
        return "*." * LEVELS + destination

    def check_destination(self, destination: str) -> str | None:
        """None when ``destination`` can be routed through the ladder; otherwise why not."""
        if WILDCARD_WORDS & set(destination.split(".")):
            return f"queue name {destination!r} has a '*' or '#' between dots"
        longest = len(self.routing_key(0, destination).encode())
        if longest > MAX_ROUTING_KEY_BYTES:
            room = MAX_ROUTING_KEY_BYTES - 2 * LEVELS
            return f"queue name {destination!r} is over {room} bytes"
        return None
