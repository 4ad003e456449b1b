"""The third-party API both pipelines call during the benchmark.

    .venv/bin/python benchmarks/target.py [--delay-ms D]

Listens on 127.0.0.1 on a free port, prints ``PORT <n>`` on stdout once it
accepts connections, and answers every POST with ``201`` and a small JSON body
after ``D`` milliseconds. It runs in its own process so that it does not share
an event loop with the pipeline being measured. SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket

from aiohttp import web

RESPONSE = b'{"id":"m-1","status":"queued","provider":"bench"}'


def make_app(delay_seconds: float) -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        await request.read()
        if delay_seconds:
            await asyncio.sleep(delay_seconds)
        return web.Response(body=RESPONSE, status=201, content_type="application/json")

    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    return app


async def serve(delay_seconds: float) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    runner = web.AppRunner(make_app(delay_seconds), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.SockSite(runner, sock, backlog=1024).start()
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
