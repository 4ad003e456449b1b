"""Broker faults under load, the long runs: 10,000 events per fault, counted.

    .venv/bin/python benchmarks/faults.py                  # every fault (about 10 min)
    .venv/bin/python benchmarks/faults.py --only kill,cluster --events 20000

Starts its own RabbitMQ nodes from the installed rabbitmq-server (one node,
then a three-node cluster; never the shared broker), a recording API that
answers 503 to 30 % of calls, and workers as processes, then runs each fault
of tests/integration/faults.py and prints what was sent, answered, lost and
duplicated, and the longest pause in results. Needs root or the rabbitmq user.
The figures are reported in docs/reliability.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aio_pika
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration import faults
from tests.integration.faults import FlakyApi, Tally
from tests.integration.nodes import RabbitNode, private_nodes, why_nodes_cannot_start
from tests.integration.support import WorkerHarness

from actionrelay.settings import Settings

SINGLE = ("stop_app", "kill", "close_connection", "memory", "disk")
ALL = (*SINGLE, "cluster")
RESULTS = Path(__file__).parent / "results"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000, help="Events per fault.")
    parser.add_argument("--only", default=",".join(ALL), help=f"Comma-separated: {ALL}.")
    parser.add_argument("--save", action="store_true", help="Write JSON to benchmarks/results/.")
    return parser.parse_args()


def settings_for(run_id: str, amqp_url: str, actions_dir: Path) -> Settings:
    """Queues of the run's own; plain http to the loopback API allowed."""
    return Settings(
        amqp_url=amqp_url,
        actions_dir=actions_dir,
        request_queue=f"b.{run_id}.requests",
        results_exchange=f"b.{run_id}.results",
        results_queue=f"b.{run_id}.results",
        dead_letter_queue=f"b.{run_id}.dead",
        worker_id=f"bench-{run_id}",
        http_port=0,
        allow_http_hosts="*",
        allow_private_networks="127.0.0.0/8,::1/128",
    )


Fault = Callable[[WorkerHarness, RabbitNode, str, int], Awaitable[Tally]]


def single_node_fault(name: str) -> Fault:
    if name in faults.ALARMS:
        return lambda h, node, run_id, n: faults.alarm(h, node, run_id, n, name)
    chosen: Fault = getattr(faults, name)
    return chosen


async def on_node(node: RabbitNode, name: str, events: int) -> Tally:
    run_id = f"{name}.{uuid.uuid4().hex[:8]}"
    api = FlakyApi()
    await api.start()
    connection = await aio_pika.connect_robust(node.url, reconnect_interval=0.5)
    try:
        with tempfile.TemporaryDirectory() as actions:
            settings = settings_for(run_id, node.url, Path(actions))
            harness = WorkerHarness(settings, await connection.channel(), api)
            try:
                return await single_node_fault(name)(harness, node, run_id, events)
            finally:
                await harness.close()
    finally:
        await connection.close()
        await api.stop()


async def on_cluster(cluster: list[RabbitNode], events: int) -> Tally:
    run_id = f"cluster.{uuid.uuid4().hex[:8]}"
    api = FlakyApi()
    await api.start()
    try:
        with tempfile.TemporaryDirectory() as actions:
            settings = settings_for(run_id, cluster[0].url, Path(actions))
            return await faults.cluster_leaders(cluster, settings, api, run_id, events)
    finally:
        await api.stop()


def report(tally: Tally) -> None:
    where = "/".join(str(n) for n in tally.at_fault.values())
    print(
        f"{tally.fault:<62} {tally.sent:>7} {tally.answered:>8} {len(tally.lost):>5} "
        f"{tally.duplicates:>6} {tally.calls:>7} {tally.longest_pause_seconds:>8.1f} {where:>16}",
        flush=True,
    )


async def main() -> int:
    args = parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    if unknown := set(chosen) - set(ALL):
        sys.exit(f"unknown faults: {sorted(unknown)}; choose from {ALL}")
    if reason := why_nodes_cannot_start():
        sys.exit(f"cannot start private RabbitMQ nodes: {reason}")
    print(f"{'fault':<62} {'sent':>7} {'answered':>8} {'lost':>5} {'dups':>6} {'calls':>7} "
          f"{'pause s':>8} {'req/hold/ladder':>16}")  # fmt: skip
    tallies: list[Tally] = []
    if singles := [name for name in chosen if name in SINGLE]:
        with private_nodes("bf", 1, cluster=False) as [node]:
            for name in singles:
                tallies.append(await on_node(node, name, args.events))
                report(tallies[-1])
    if "cluster" in chosen:
        with private_nodes("bc", 3, cluster=True) as cluster:
            tallies.append(await on_cluster(cluster, args.events))
            report(tallies[-1])
    if args.save:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"faults-{uuid.uuid4().hex[:8]}.json"
        rows = [t.line() for t in tallies]
        path.write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
        print(f"saved {path}")
    return 1 if any(t.lost for t in tallies) else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
