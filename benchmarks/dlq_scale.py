"""The dlq commands on a dead-letter queue of 200,000 letters (issue 16), end to end.

Publishes N dead letters (two actions, alternating) to a throw-away quorum queue on
the local broker, then runs the real commands as a user would, each in its own
process, and checks their answers: ``stats``, a page of ``list`` at the tail,
``replay --dry-run``, ``replay`` of one action, ``purge --yes`` of the other. Prints
the time and peak RSS of each, deletes its queues and exits 1 if a check failed.

    .venv/bin/python benchmarks/dlq_scale.py --letters 200000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time
import uuid
from typing import Any

import aio_pika
import orjson

from actionrelay.broker.topology import Topology
from actionrelay.settings import Settings


def letter(n: int) -> aio_pika.Message:
    action = ("notify", "lookup")[n % 2]
    headers: dict[str, Any] = {
        "x-actionrelay-error-type": "http_error",
        "x-actionrelay-error-message": f"action {action}: HTTP 503",
        "x-actionrelay-http-status": 503,
        "x-actionrelay-action": action,
        "x-actionrelay-failed-at": "2026-11-27T12:00:00+00:00",
    }
    body = {"event_id": f"e-{n:06d}", "action": action, "params": {"id": n}}
    return aio_pika.Message(
        orjson.dumps(body), headers=headers, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
    )


async def fill(url: str, queue: str, count: int, batch: int = 5000) -> float:
    start = time.monotonic()
    connection = await aio_pika.connect(url)
    channel = await connection.channel()
    for first in range(0, count, batch):
        publishes = (
            channel.default_exchange.publish(letter(n), routing_key=queue)
            for n in range(first, min(first + batch, count))
        )
        await asyncio.gather(*publishes)
    await connection.close()
    return time.monotonic() - start


async def depth(url: str, queue: str) -> int:
    connection = await aio_pika.connect(url)
    channel = await connection.channel()
    declared = await channel.declare_queue(queue, passive=True)
    await connection.close()
    return declared.declaration_result.message_count or 0


def command(*args: str) -> tuple[int, str, float, float]:
    """(exit code, stdout, seconds, peak RSS in MiB so far of the children)."""
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "actionrelay", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )
    seconds = time.monotonic() - start
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if done.returncode:
        print(done.stderr[-2000:], file=sys.stderr)
    return done.returncode, done.stdout, seconds, rss


async def cleanup(url: str, settings: Settings) -> None:
    connection = await aio_pika.connect(url)
    channel = await connection.channel()
    for name in (settings.request_queue, settings.results_queue, settings.dead_letter_queue):
        await channel.queue_delete(name)
    await channel.exchange_delete(settings.results_exchange)
    await connection.close()


def check(ok: bool, what: str, failures: list[str]) -> None:
    print(f"  {'ok ' if ok else 'BAD'} {what}")
    if not ok:
        failures.append(what)


def run(url: str, count: int) -> list[str]:
    prefix = f"bench.dlq.{uuid.uuid4().hex[:8]}"
    settings = Settings(
        amqp_url=url,
        request_queue=f"{prefix}.requests",
        dead_letter_queue=f"{prefix}.dead",
        results_exchange=f"{prefix}.results",
        results_queue=f"{prefix}.results",
    )

    async def declare() -> None:
        connection = await aio_pika.connect(url)
        await Topology(settings).declare(await connection.channel())
        await connection.close()

    asyncio.run(declare())
    failures: list[str] = []
    queue = ["--amqp-url", url, "--queue", settings.dead_letter_queue]
    half = count // 2
    try:
        seconds = asyncio.run(fill(url, settings.dead_letter_queue, count))
        print(f"published {count} letters in {seconds:.1f} s")
        code, out, secs, rss = command("dlq", "stats", "--json", *queue)
        stats = orjson.loads(out)
        print(f"dlq stats: {secs:.1f} s, peak RSS {rss:.0f} MiB")
        check(code == 0 and stats["total"] == count and stats["complete"], "exact total", failures)
        code, out, secs, rss = command(
            "dlq", "list", "--json", "--skip", str(count - 5), "--limit", "5", *queue
        )
        tail = [orjson.loads(line)["event_id"] for line in out.splitlines()]
        print(f"dlq list --skip {count - 5} --limit 5: {secs:.1f} s, peak RSS {rss:.0f} MiB")
        check(tail == [f"e-{n:06d}" for n in range(count - 5, count)], "last page", failures)
        code, out, secs, rss = command(
            "dlq",
            "replay",
            "--dry-run",
            "--action",
            "notify",
            "--to",
            settings.request_queue,
            *queue,
        )
        print(f"dlq replay --dry-run --action notify: {secs:.1f} s, peak RSS {rss:.0f} MiB")
        check(code == 0 and f"dry run: {half} dead letters" in out, "dry run count", failures)
        code, out, secs, rss = command(
            "dlq", "replay", "--action", "notify", "--to", settings.request_queue, *queue
        )
        print(f"dlq replay --action notify: {secs:.1f} s, peak RSS {rss:.0f} MiB")
        replayed = asyncio.run(depth(url, settings.request_queue))
        check(
            code == 0 and replayed == half, f"{half} replayed (target holds {replayed})", failures
        )
        code, out, secs, rss = command("dlq", "purge", "--action", "lookup", "--yes", *queue)
        print(f"dlq purge --action lookup --yes: {secs:.1f} s, peak RSS {rss:.0f} MiB")
        left = asyncio.run(depth(url, settings.dead_letter_queue))
        check(code == 0 and left == 0, f"all purged (left {left})", failures)
    finally:
        asyncio.run(cleanup(url, settings))
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--letters", type=int, default=200_000)
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    options = parser.parse_args()
    sys.exit(1 if run(options.amqp_url, options.letters) else 0)


if __name__ == "__main__":
    main()
