"""The third-party API both pipelines call during the benchmark.

    .venv/bin/python benchmarks/target.py [--delay-ms D]

Listens on 127.0.0.1 on a free port, prints ``PORT <n>`` on stdout once it
accepts connections, and answers every POST with ``201`` and a small JSON body
after ``D`` milliseconds. ``GET /stats`` tells the runner how many calls are
open now, the most that were open at once and the calls answered
(``?reset=1`` starts a new peak). It runs in its own process so that it does
not share an event loop with the pipeline being measured. SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
from dataclasses import dataclass

import orjson
from aiohttp import web

RESPONSE = b'{"id":"m-1","status":"queued","provider":"bench"}'


@dataclass
class CallCounter:
    """Calls open right now, the peak since the last reset, calls answered."""

    open: int = 0
    peak: int = 0
    answered: int = 0


def make_app(delay_seconds: float) -> web.Application:
    counter = CallCounter()

    async def answer(request: web.Request) -> web.Response:
        counter.open += 1
        counter.peak = max(counter.peak, counter.open)
        try:
            await request.read()
            if delay_seconds:
                await asyncio.sleep(delay_seconds)
        finally:
            counter.open -= 1
        counter.answered += 1
        return web.Response(body=RESPONSE, status=201, content_type="application/json")

    async def stats(request: web.Request) -> web.Response:
        body = orjson.dumps(
            {"open": counter.open, "peak": counter.peak, "answered": counter.answered}
        )
        if request.query.get("reset"):
            counter.peak = counter.open
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/stats", stats)
    app.router.add_post("/{tail:.*}", answer)
    return app


async def serve(delay_seconds: float) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    runner = web.AppRunner(make_app(delay_seconds), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.SockSite(runner, sock, backlog=4096).start()
        print(f"PORT {sock.getsockname()[1]}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=0.0, help="Latency of every answer.")
    args = parser.parse_args()
    asyncio.run(serve(args.delay_ms / 1000))


if __name__ == "__main__":
    main()
