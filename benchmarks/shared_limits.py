"""Measure a shared endpoint cap across worker processes, as the server sees it.

    .venv/bin/python benchmarks/shared_limits.py [--workers 2] [--cap 50] [--offered 120]

Starts N `actionrelay run` processes sharing one Redis-backed cap on a local
recording server, offers a steady stream of step events above the cap, and
prints what the server saw: calls per second (busiest 1 s sliding window,
mean), and the results by status. Needs RabbitMQ and Redis on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import aio_pika
import orjson
from aiohttp import web

from actionrelay.broker.topology import Topology
from actionrelay.settings import Settings

VENV_BIN = Path(sys.executable).parent


def busiest_second(times: list[float]) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


async def recording_server(calls: list[float]) -> tuple[web.AppRunner, int]:
    async def handle(_: web.Request) -> web.Response:
        calls.append(time.monotonic())
        return web.json_response({"ok": True}, status=201)

    app = web.Application()
    app.router.add_post("/sms/send", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port: int = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


async def main(args: argparse.Namespace) -> None:
    calls: list[float] = []
    runner, port = await recording_server(calls)
    suffix = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory() as tmp:
        actions = Path(tmp)
        (actions / "sms.json").write_bytes(
            orjson.dumps(
                {
                    "name": "sms",
                    "url": f"http://127.0.0.1:{port}/sms/send",
                    "retry": {"max_attempts": 1},
                }
            )
        )
        (actions / "endpoints.yaml").write_text(
            f"- url: http://127.0.0.1:{port}/sms/*\n"
            f"  capping: {{max_calls: {args.cap}, period_ms: 1000}}\n"
        )
        settings = Settings(
            amqp_url=args.amqp_url,
            actions_dir=actions,
            request_queue=f"limits.{suffix}.requests",
            results_exchange=f"limits.{suffix}.results",
            results_queue=f"limits.{suffix}.results",
            dead_letter_queue=f"limits.{suffix}.dead",
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIONRELAY_")}
        env |= {f"ACTIONRELAY_{k.upper()}": str(v) for k, v in settings.model_dump().items() if v}
        env |= {
            "ACTIONRELAY_REDIS_URL": args.redis_url,
            "ACTIONRELAY_ALLOW_HTTP_HOSTS": "127.0.0.1",
            "ACTIONRELAY_ALLOW_PRIVATE_NETWORKS": "127.0.0.1/32",
            "ACTIONRELAY_HTTP_PORT": "0",
            "ACTIONRELAY_LOG_LEVEL": "warning",
        }
        connection = await aio_pika.connect(args.amqp_url)
        channel = await connection.channel()
        await Topology(settings).declare(channel)
        workers = [
            await asyncio.create_subprocess_exec(
                str(VENV_BIN / "actionrelay"), "run", env=env, stderr=asyncio.subprocess.DEVNULL
            )
            for _ in range(args.workers)
        ]
        await asyncio.sleep(3)  # startup
        published = 0
        started = time.monotonic()
        while time.monotonic() - started < args.seconds:
            tick = time.monotonic()
            for _ in range(args.offered // 10):
                event = {"event_id": f"e-{published}", "action": "sms"}
                await channel.default_exchange.publish(
                    aio_pika.Message(orjson.dumps(event)), routing_key=settings.request_queue
                )
                published += 1
            await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))
        results = await channel.declare_queue(settings.results_queue, passive=True)
        statuses: Counter[str] = Counter()
        deadline = time.monotonic() + 30
        while sum(statuses.values()) < published and time.monotonic() < deadline:
            message = await results.get(no_ack=True, fail=False)
            if message is None:
                await asyncio.sleep(0.05)
                continue
            statuses[orjson.loads(message.body)["status"]] += 1
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
            await worker.wait()
        for name in (settings.request_queue, settings.results_queue, settings.dead_letter_queue):
            await channel.queue_delete(name)
        await channel.exchange_delete(settings.results_exchange)
        await connection.close()
    await runner.cleanup()
    span = (max(calls) - min(calls)) if len(calls) > 1 else 0.0
    print(
        f"workers {args.workers}, cap {args.cap}/s shared through Redis, offered "
        f"{args.offered}/s for {args.seconds:g} s ({published} events)"
    )
    mean = len(calls) / max(span, 1e-9)
    print(
        f"server saw {len(calls)} calls over {span:.1f} s: mean {mean:.1f}/s, "
        f"busiest 1 s window {busiest_second(calls)}"
    )
    print("results: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cap", type=int, default=50)
    parser.add_argument("--offered", type=int, default=120, help="Events per second offered.")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    asyncio.run(main(parser.parse_args()))
