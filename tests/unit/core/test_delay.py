"""The delay ladder: waits, routing keys and bindings, walked as RabbitMQ would route."""

from __future__ import annotations

import re

import pytest

from actionrelay.core.delay import LEVELS, MAX_UNITS, UNIT_MS, DelayLadder

LADDER = DelayLadder("actionrelay.delay")


@pytest.mark.parametrize(
    ("seconds", "units"),
    [(0, 0), (-1, 0), (0.0004, 0), (0.04, 1), (0.1, 1), (0.101, 2), (0.3, 3), (1.0, 10),
     (1.05, 11), (30, 300), (7200, 72_000), (10**6, MAX_UNITS)],
)  # fmt: skip
def test_waits_are_rounded_up_to_100_ms_and_capped(seconds: float, units: int) -> None:
    assert LADDER.units(seconds) == units


def test_names_say_how_long_each_level_waits() -> None:
    assert LADDER.level_name(0) == "actionrelay.delay.100ms"
    assert LADDER.level_name(5) == "actionrelay.delay.3200ms"
    assert LADDER.entry == f"actionrelay.delay.{(1 << (LEVELS - 1)) * UNIT_MS}ms"
    assert LADDER.deliver == "actionrelay.delay.deliver"


def test_the_routing_key_spells_the_wait_in_binary_highest_level_first() -> None:
    key = LADDER.routing_key(11, "actionrelay.requests")
    words = key.split(".")
    assert words[:LEVELS] == ["0"] * (LEVELS - 4) + ["1", "0", "1", "1"]
    assert ".".join(words[LEVELS:]) == "actionrelay.requests"


def test_each_level_is_an_at_least_once_quorum_queue_into_the_next_exchange() -> None:
    args = LADDER.queue_arguments(3)
    assert args == {
        "x-queue-type": "quorum",
        "x-message-ttl": 800,
        "x-dead-letter-exchange": "actionrelay.delay.400ms",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    assert LADDER.queue_arguments(0)["x-dead-letter-exchange"] == LADDER.deliver


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: ``*`` is one word, ``#`` zero or more."""
    parts = []
    for word in pattern.split("."):
        parts.append({"*": r"[^.]+", "#": r".*"}.get(word, re.escape(word)))
    regex = r"\.".join(parts).replace(r"\..*", r"(\..*)?")
    return re.fullmatch(regex, key) is not None


def walk(ladder: DelayLadder, key: str, destination: str) -> list[int]:
    """The levels a copy published to the entry exchange waits in, as RabbitMQ routes
    it: into a level's queue, then, once it expires, on from the next exchange."""
    bindings = ladder.bindings()
    levels = {ladder.level_name(k): k for k in range(LEVELS)}
    passed: list[int] = []
    exchange = ladder.entry
    while exchange != ladder.deliver:
        [target] = [b for b in bindings if b.source == exchange and topic_matches(b.pattern, key)]
        if target.kind == "queue":
            passed.append(levels[target.destination])
            exchange = ladder.next_exchange(levels[target.destination])
        else:
            exchange = target.destination
    assert topic_matches(ladder.destination_pattern(destination), key)
    return passed


@pytest.mark.parametrize("units", [0, 1, 2, 3, 11, 32, 300, 72_000, MAX_UNITS])
def test_a_copy_waits_exactly_its_wait_then_reaches_its_request_queue(units: int) -> None:
    destination = "t.x.requests"
    passed = walk(LADDER, LADDER.routing_key(units, destination), destination)
    waited = sum(LADDER.queue_arguments(level)["x-message-ttl"] for level in passed)
    assert waited == units * UNIT_MS
    assert len(passed) == bin(units).count("1")


def test_the_deliver_exchange_tells_request_queues_apart() -> None:
    key = LADDER.routing_key(5, "a.requests")
    assert topic_matches(LADDER.destination_pattern("a.requests"), key)
    assert not topic_matches(LADDER.destination_pattern("requests"), key)
    assert not topic_matches(LADDER.destination_pattern("b.requests"), key)


@pytest.mark.parametrize(
    ("name", "problem"),
    [("actionrelay.requests", None), ("a.*.b", "'*' or '#'"), ("#", "'*' or '#'"),
     ("q" * 215, None), ("q" * 216, "over 215 bytes")],
)  # fmt: skip
def test_request_queue_names_the_ladder_cannot_route_are_refused(
    name: str, problem: str | None
) -> None:
    found = LADDER.check_destination(name)
    assert (found is None) if problem is None else (problem in (found or ""))
