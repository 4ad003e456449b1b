"""The worker's connection: failover between URLs, and canaries for the private
hooks it relies on (asyncio.Queue's size attribute, aio-pika's attempt method)."""

from __future__ import annotations

import asyncio
import random
import re

import aio_pika
import pytest
from pydantic import ValidationError

from actionrelay.broker.connection import (
    RECONNECT_INTERVAL_SECONDS,
    WorkerConnection,
    failover_order,
    lift_size_limit,
)
from actionrelay.settings import Settings


async def test_a_queue_without_its_limit_takes_any_number_of_items() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=10)
    lift_size_limit(queue)
    for n in range(1000):
        await asyncio.wait_for(queue.put(n), 1)
    assert (queue.maxsize, queue.qsize(), queue.full()) == (0, 1000, False)


def test_a_reconnect_goes_through_the_attempt_method_the_worker_overrides() -> None:
    """WorkerConnection moves to the next URL in aio-pika's private attempt method."""
    private = "_RobustConnection__connect_transport"
    assert callable(getattr(aio_pika.RobustConnection, private))
    assert private in vars(WorkerConnection)


def test_replicas_start_at_a_random_node_and_go_round() -> None:
    urls = ["amqp://a/", "amqp://b/", "amqp://c/"]
    starts = {failover_order(urls, random.Random(seed))[0] for seed in range(50)}
    assert starts == set(urls)
    assert failover_order(urls, random.Random(3)) in (
        urls,
        urls[1:] + urls[:1],
        urls[2:] + urls[:2],
    )


async def test_the_connection_tries_each_url_in_turn() -> None:
    connection = WorkerConnection(["amqp://a:1/", "amqp://b:2/"])
    assert str(connection.url) == "amqp://a:1/"
    assert connection.reconnect_interval == RECONNECT_INTERVAL_SECONDS
    explicit = WorkerConnection(["amqp://a:1/?reconnect_interval=7"])
    assert explicit.reconnect_interval == 7


@pytest.mark.parametrize(
    ("value", "urls"),
    [
        ("amqp://u:p@h:5672/", ["amqp://u:p@h:5672/"]),
        ("amqp://a/, amqps://b:5671/v", ["amqp://a/", "amqps://b:5671/v"]),
        ("amqp://u:a%2Cb@h/,amqp://h2/", ["amqp://u:a%2Cb@h/", "amqp://h2/"]),
    ],
)
def test_the_amqp_url_setting_may_list_a_clusters_nodes(value: str, urls: list[str]) -> None:
    assert Settings(amqp_url=value).amqp_urls == urls


@pytest.mark.parametrize(
    ("value", "message"),
    [(" , ", "no RabbitMQ URL"), ("http://u:secret@h/", "http://u:***@h/ is not an amqp")],
)
def test_a_url_that_is_not_amqp_is_refused_without_its_password(value: str, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)) as caught:
        Settings(amqp_url=value)
    # What `actionrelay` prints of a settings error: the messages, not the input.
    assert "secret" not in " ".join(error["msg"] for error in caught.value.errors())
