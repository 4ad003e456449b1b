"""Step events lost by a publisher that does not await confirms (issue 18), counted.

    .venv/bin/python benchmarks/publish_loss.py                       # 100 runs, no confirms
    .venv/bin/python benchmarks/publish_loss.py --confirm             # the same, confirms awaited
    .venv/bin/python benchmarks/publish_loss.py --queue-type classic  # a classic queue

Each run declares its own durable queue (never one of actionrelay's), opens one
connection, publishes ``--events`` persistent events on it as fast as it can,
closes it right after the last publish, then counts what the queue holds and
deletes it. Without confirms a RabbitMQ 3.10 quorum queue sometimes drops the
tail of a connection's publishes (docs/reliability.md, "Publishing so that
nothing is lost before the worker sees it"); with confirms awaited, none.
"""

from __future__ import annotations

import argparse
import time
import uuid
from typing import Any

import orjson
import pika  # type: ignore[import-untyped]


def one_run(params: Any, queue_type: str, events: int, confirm: bool) -> list[int]:
    """The numbers of the events missing from the queue after one publishing connection."""
    admin = pika.BlockingConnection(params)
    channel = admin.channel()
    name = f"bench.publish-loss.{uuid.uuid4().hex[:12]}"
    channel.queue_declare(name, durable=True, arguments={"x-queue-type": queue_type})
    try:
        publisher = pika.BlockingConnection(params)
        publishing = publisher.channel()
        if confirm:
            publishing.confirm_delivery()  # each basic_publish then waits for its confirm
        properties = pika.BasicProperties(delivery_mode=2, content_type="application/json")
        for n in range(events):
            body = orjson.dumps({"event_id": f"e-{n}", "action": "notify"})
            publishing.basic_publish("", name, body, properties)
        publisher.close()  # right after the last publish, as a batch job would
        time.sleep(0.5)
        seen = set()
        while (got := channel.basic_get(name, auto_ack=True))[0] is not None:
            seen.add(int(orjson.loads(got[2])["event_id"].removeprefix("e-")))
        return sorted(set(range(events)) - seen)
    finally:
        channel.queue_delete(name)
        admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--queue-type", choices=["quorum", "classic"], default="quorum")
    parser.add_argument("--confirm", action="store_true", help="await each publish's confirm")
    args = parser.parse_args()
    params = pika.URLParameters(args.amqp_url)
    lossy = lost = 0
    for run in range(1, args.runs + 1):
        missing = one_run(params, args.queue_type, args.events, args.confirm)
        if missing:
            lossy += 1
            lost += len(missing)
            print(f"run {run}: {len(missing)} lost, events {missing[0]}..{missing[-1]}", flush=True)
    mode = "confirms awaited" if args.confirm else "no confirms"
    print(
        f"{args.queue_type} queue, {mode}: {lossy} of {args.runs} runs of {args.events} "
        f"events lost some, {lost} events lost in all"
    )


if __name__ == "__main__":
    main()
