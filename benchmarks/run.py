"""actionrelay next to a minimal reference pipeline: throughput, latency, CPU and memory.

    .venv/bin/python benchmarks/run.py [--events N] [--rounds R] [--prefetch P] [--delay-ms D]

Each round runs both pipelines, one after the other (the order alternates), on
fresh uniquely named queues. A run preloads N step events, starts the pipeline
as a subprocess, times the backlog from the first result to the N-th, then
publishes a paced stream to measure latency at a fixed offered load, reads the
pipeline's peak RSS, stops it with SIGTERM and deletes its queues. See
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import aio_pika
import orjson
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    DeliveryMode,
)

from actionrelay.broker import Topology
from actionrelay.settings import Settings

HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
PIPELINES = ("reference", "actionrelay")
ACTION_NAME = "benchPost"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PUBLISH_BATCH = 500
DELIVERY_LIMIT = 20
RESULTS_DIR = HERE / "results"


class BenchmarkError(Exception):
    """A pipeline died, stalled or answered with failures: its numbers would mean nothing."""


@dataclass(frozen=True)
class Config:
    events: int
    rounds: int
    prefetch: int
    delay_ms: float
    latency_events: int
    latency_rate: float
    timeout: float
    amqp_url: str
    save: bool
    profile: bool
    worker_env: tuple[str, ...] = ()

    @property
    def scenario(self) -> str:
        return f"delay {self.delay_ms:g} ms, prefetch {self.prefetch}"


@dataclass(frozen=True)
class Names:
    """The broker objects of one pipeline run; the uuid suffix keeps runs and tests apart."""

    pipeline: str
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def _name(self, role: str) -> str:
        return f"bench.{self.pipeline}.{role}.{self.suffix}"

    @property
    def request_queue(self) -> str:
        return self._name("requests")

    @property
    def reply_queue(self) -> str:
        return self._name("replies")

    @property
    def dead_letter_queue(self) -> str:
        return self._name("dead")

    @property
    def results_queue(self) -> str:
        return self._name("results")

    @property
    def results_exchange(self) -> str:
        return self._name("results")

    def profile_path(self) -> Path:
        return RESULTS_DIR / f"profile-{self.pipeline}-{self.suffix}.prof"

    def queues(self) -> list[str]:
        return [self.request_queue, self.reply_queue, self.dead_letter_queue, self.results_queue]

    def settings(self, config: Config) -> Settings:
        return Settings(
            amqp_url=config.amqp_url,
            request_queue=self.request_queue,
            dead_letter_queue=self.dead_letter_queue,
            results_queue=self.results_queue,
            results_exchange=self.results_exchange,
            queue_type="quorum",
            delivery_limit=DELIVERY_LIMIT,
            prefetch=config.prefetch,
        )


@dataclass
class RunStats:
    pipeline: str
    events_per_s: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_event: float
    peak_rss_mb: float


# --- the pipeline process -------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all threads, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise BenchmarkError(f"no VmHWM in /proc/{pid}/status")


def write_action(directory: Path, target_url: str) -> None:
    action = {
        "name": ACTION_NAME,
        "version": 1,
        "description": "The benchmark's call: POST the step's params to the local target",
        "method": "POST",
        "url": target_url,
        "headers": {"X-Tenant": {"$var": "tenant", "type": "string"}},
        "body": {
            "to": {"$var": "phone", "type": "string"},
            "text": {"$var": "text", "type": "string"},
            "tenant": {"$var": "tenant", "type": "string"},
            "sent_at": {"$var": "sent_at", "type": "decimal"},
        },
        "response": {"fields": ["id", "status"]},
        "timeout_seconds": 30,
    }
    (directory / f"{ACTION_NAME}.json").write_bytes(orjson.dumps(action))


def pipeline_command(
    names: Names, config: Config, actions_dir: Path, target_url: str
) -> tuple[list[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIONRELAY_")}
    if names.pipeline == "reference":
        command = [str(HERE / "reference.py"), "--amqp-url", config.amqp_url]
        command += ["--queue", names.request_queue, "--prefetch", str(config.prefetch)]
        command += ["--target-url", target_url]
    else:
        command = [str(VENV_BIN / "actionrelay"), "run"]
        env |= {
            "ACTIONRELAY_AMQP_URL": config.amqp_url,
            "ACTIONRELAY_ACTIONS_DIR": str(actions_dir),
            "ACTIONRELAY_REQUEST_QUEUE": names.request_queue,
            "ACTIONRELAY_DEAD_LETTER_QUEUE": names.dead_letter_queue,
            "ACTIONRELAY_RESULTS_EXCHANGE": names.results_exchange,
            "ACTIONRELAY_RESULTS_QUEUE": names.results_queue,
            "ACTIONRELAY_QUEUE_TYPE": "quorum",
            "ACTIONRELAY_DELIVERY_LIMIT": str(DELIVERY_LIMIT),
            "ACTIONRELAY_PREFETCH": str(config.prefetch),
            "ACTIONRELAY_LOG_LEVEL": "info",
            "ACTIONRELAY_LOG_FORMAT": "json",
            "ACTIONRELAY_WORKER_ID": f"bench-{names.suffix}",
            # The target is plain http on loopback, which the egress policy refuses by default.
            "ACTIONRELAY_ALLOW_HTTP_HOSTS": "127.0.0.1",
            "ACTIONRELAY_ALLOW_PRIVATE_NETWORKS": "127.0.0.1/32",
            # No health endpoint: it is not measured, and its port could clash with a test's.
            "ACTIONRELAY_HTTP_PORT": "0",
        }
        env |= dict(item.split("=", 1) for item in config.worker_env)
    if config.profile:
        # cProfile writes its stats when the pipeline exits after SIGTERM.
        command = ["-m", "cProfile", "-o", str(names.profile_path()), *command]
    return [sys.executable, *command], env


async def stop_process(process: asyncio.subprocess.Process, grace: float = 30.0) -> None:
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), grace)
    except TimeoutError:
        process.kill()
        await process.wait()


# --- results -----------------------------------------------------------------------------


class ResultCollector:
    """Result events by correlation id: arrival times, failures, the pipeline's CPU."""

    def __init__(self, backlog: int) -> None:
        self.backlog = backlog
        self.expected = backlog
        self.pid: int | None = None
        self.arrived: dict[str, float] = {}
        self.sent: dict[str, float] = {}
        self.failures: list[str] = []
        self.cpu: list[float] = []
        self.window: list[float] = []
        self.backlog_done = asyncio.Event()
        self.all_done = asyncio.Event()
        self.failed = asyncio.Event()

    async def on_result(self, message: AbstractIncomingMessage) -> None:
        now = time.perf_counter()
        key = message.correlation_id or ""
        if key in self.arrived:
            self.failures.append(f"duplicate result for {key}")
            self.failed.set()
            return
        self.arrived[key] = now
        result = orjson.loads(message.body)
        if result.get("status") != "success":
            self.failures.append(message.body.decode(errors="replace")[:500])
            self.failed.set()
        count = len(self.arrived)
        if count in (1, self.backlog):
            assert self.pid is not None
            self.cpu.append(cpu_seconds(self.pid))
            self.window.append(now)
        if count == self.backlog:
            self.backlog_done.set()
        if count == self.expected:
            self.all_done.set()

    def latencies_ms(self) -> list[float]:
        return sorted((self.arrived[key] - sent) * 1000 for key, sent in self.sent.items())


def percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, int(fraction * len(values)))]


# --- events ------------------------------------------------------------------------------


def step_event(event_id: str, reply_queue: str) -> aio_pika.Message:
    body = {
        "event_id": event_id,
        "action": ACTION_NAME,
        "journey": {"id": "benchmark", "version": "1", "step_id": "post-1"},
        "profile_id": f"p-{event_id}",
        "params": {
            "phone": "+33612345678",
            "text": "Your order has shipped and will arrive tomorrow.",
            "tenant": "acme",
            "sent_at": time.time(),
        },
    }
    return aio_pika.Message(
        orjson.dumps(body),
        content_type="application/json",
        delivery_mode=DeliveryMode.PERSISTENT,
        correlation_id=event_id,
        message_id=event_id,
        reply_to=reply_queue,
    )


async def preload(exchange: AbstractExchange, names: Names, count: int) -> None:
    for start in range(0, count, PUBLISH_BATCH):
        await asyncio.gather(
            *(
                exchange.publish(
                    step_event(f"{names.suffix}-{i}", names.reply_queue), names.request_queue
                )
                for i in range(start, min(start + PUBLISH_BATCH, count))
            )
        )


async def paced_stream(
    exchange: AbstractExchange, names: Names, collector: ResultCollector, config: Config
) -> None:
    """Publish at a fixed rate; each event's latency is its result's arrival minus its send."""
    publishes: list[Awaitable[Any]] = []
    started = time.perf_counter()
    for i in range(config.latency_events):
        await asyncio.sleep(max(0.0, started + i / config.latency_rate - time.perf_counter()))
        event_id = f"{names.suffix}-paced-{i}"
        collector.sent[event_id] = time.perf_counter()
        message = step_event(event_id, names.reply_queue)
        publishes.append(asyncio.ensure_future(exchange.publish(message, names.request_queue)))
    await asyncio.gather(*publishes)


# --- one run -----------------------------------------------------------------------------


async def until_done(
    done: asyncio.Event, collector: ResultCollector, process: asyncio.subprocess.Process
) -> None:
    """Wait for ``done``; a failed result or a pipeline that exits stops the wait."""
    waiters = {
        asyncio.ensure_future(done.wait()),
        asyncio.ensure_future(collector.failed.wait()),
        asyncio.ensure_future(process.wait()),
    }
    try:
        await asyncio.wait(waiters, return_when="FIRST_COMPLETED")
    finally:
        for waiter in waiters:
            waiter.cancel()
    if collector.failures:
        raise BenchmarkError(
            f"{len(collector.failures)} failed results, e.g. {collector.failures[0]}"
        )
    if not done.is_set():
        raise BenchmarkError(f"the pipeline exited with {process.returncode}")


async def declare(channel: AbstractChannel, names: Names, config: Config) -> AbstractQueue:
    """The request queue exactly as the worker declares it (quorum, same arguments)."""
    arguments = Topology(names.settings(config)).request_queue_arguments()
    await channel.declare_queue(names.request_queue, durable=True, arguments=arguments)
    return await channel.declare_queue(names.reply_queue, durable=True)


async def measure(
    channel: AbstractChannel,
    names: Names,
    config: Config,
    command: tuple[list[str], dict[str, str]],
    log: IO[bytes],
) -> RunStats:
    replies = await declare(channel, names, config)
    await preload(channel.default_exchange, names, config.events)
    collector = ResultCollector(config.events)
    await replies.consume(collector.on_result, no_ack=True)
    process = await asyncio.create_subprocess_exec(
        *command[0], env=command[1], stdout=log, stderr=log
    )
    try:
        collector.pid = process.pid
        async with asyncio.timeout(config.timeout):
            await until_done(collector.backlog_done, collector, process)
        collector.expected += config.latency_events
        async with asyncio.timeout(config.timeout):
            await paced_stream(channel.default_exchange, names, collector, config)
            await until_done(collector.all_done, collector, process)
        rss = peak_rss_mb(process.pid)
    finally:
        await stop_process(process)
    latencies = collector.latencies_ms()
    return RunStats(
        pipeline=names.pipeline,
        events_per_s=(config.events - 1) / (collector.window[1] - collector.window[0]),
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        cpu_us_per_event=(collector.cpu[1] - collector.cpu[0]) / (config.events - 1) * 1e6,
        peak_rss_mb=rss,
    )


async def delete_broker_objects(connection: AbstractConnection, names: Names) -> None:
    async with connection.channel() as channel:
        for queue in names.queues():
            await channel.queue_delete(queue)
        await channel.exchange_delete(names.results_exchange)


async def run_pipeline(
    connection: AbstractConnection, pipeline: str, config: Config, workdir: Path, target_url: str
) -> RunStats:
    names = Names(pipeline)
    command = pipeline_command(names, config, workdir, target_url)
    log_path = workdir / f"{names.pipeline}-{names.suffix}.log"
    try:
        async with connection.channel(publisher_confirms=True) as channel:
            with log_path.open("wb") as log:
                stats = await measure(channel, names, config, command, log)
    except (BenchmarkError, TimeoutError):
        tail = log_path.read_text(errors="replace").splitlines()[-15:] if log_path.exists() else []
        print(f"--- last lines of the {pipeline} log:", *tail, sep="\n", file=sys.stderr)
        raise
    finally:
        await delete_broker_objects(connection, names)
    if config.profile:
        print_profile(names.profile_path())
    return stats


def print_profile(path: Path, top: int = 25) -> None:
    print(f"--- {path.name}: top {top} functions by own time (cProfile inflates small calls)")
    pstats.Stats(str(path), stream=sys.stdout).sort_stats("tottime").print_stats(top)


# --- the target, rounds and the report -------------------------------------------------------


@contextlib.asynccontextmanager
async def target_server(delay_ms: float) -> Any:
    script = str(HERE / "target.py")
    process = await asyncio.create_subprocess_exec(
        sys.executable, script, "--delay-ms", str(delay_ms), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        if not line.startswith(b"PORT "):
            raise BenchmarkError(f"target server did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}/v1/messages"
    finally:
        await stop_process(process, grace=5)


def round_order(round_index: int) -> Iterator[str]:
    return iter(PIPELINES if round_index % 2 == 0 else reversed(PIPELINES))


async def benchmark(config: Config) -> dict[str, list[RunStats]]:
    runs: dict[str, list[RunStats]] = {p: [] for p in PIPELINES}
    connection = await aio_pika.connect(
        config.amqp_url, client_properties={"connection_name": "benchmark runner"}
    )
    if config.profile:
        RESULTS_DIR.mkdir(exist_ok=True)
    async with connection, target_server(config.delay_ms) as target_url:
        with tempfile.TemporaryDirectory(prefix="actionrelay-bench-") as tmp:
            workdir = Path(tmp)
            write_action(workdir, target_url)
            for round_index in range(config.rounds):
                for pipeline in round_order(round_index):
                    stats = await run_pipeline(connection, pipeline, config, workdir, target_url)
                    runs[pipeline].append(stats)
                    print(f"round {round_index + 1}: {_row(config.scenario, stats)}", flush=True)
    return runs


def median_stats(pipeline: str, runs: list[RunStats]) -> RunStats:
    def med(name: str) -> float:
        return float(statistics.median(getattr(run, name) for run in runs))

    return RunStats(
        pipeline=pipeline,
        events_per_s=med("events_per_s"),
        p50_ms=med("p50_ms"),
        p99_ms=med("p99_ms"),
        cpu_us_per_event=med("cpu_us_per_event"),
        peak_rss_mb=max(run.peak_rss_mb for run in runs),
    )


HEADER = (
    f"{'scenario':<28} {'pipeline':<13} {'events/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
    f"{'CPU µs/ev':>10} {'peak RSS MB':>12}"
)


def _row(scenario: str, s: RunStats) -> str:
    return (
        f"{scenario:<28} {s.pipeline:<13} {s.events_per_s:>9.0f} {s.p50_ms:>8.1f} "
        f"{s.p99_ms:>8.1f} {s.cpu_us_per_event:>10.0f} {s.peak_rss_mb:>12.1f}"
    )


def report(config: Config, runs: dict[str, list[RunStats]]) -> str:
    ref, relay = (median_stats(p, runs[p]) for p in PIPELINES)
    ratio = RunStats(
        pipeline="ratio a/r",
        events_per_s=relay.events_per_s / ref.events_per_s,
        p50_ms=relay.p50_ms / ref.p50_ms,
        p99_ms=relay.p99_ms / ref.p99_ms,
        cpu_us_per_event=relay.cpu_us_per_event / ref.cpu_us_per_event,
        peak_rss_mb=relay.peak_rss_mb / ref.peak_rss_mb,
    )
    ratio_row = (
        f"{config.scenario:<28} {ratio.pipeline:<13} {ratio.events_per_s:>9.2f} "
        f"{ratio.p50_ms:>8.2f} {ratio.p99_ms:>8.2f} {ratio.cpu_us_per_event:>10.2f} "
        f"{ratio.peak_rss_mb:>12.2f}"
    )
    return "\n".join([HEADER, _row(config.scenario, ref), _row(config.scenario, relay), ratio_row])


def save(config: Config, runs: dict[str, list[RunStats]]) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = RESULTS_DIR / f"{stamp}-d{config.delay_ms:g}-p{config.prefetch}.json"
    data = {
        "tree": tree_note(),
        "config": asdict(config),
        "runs": {p: [asdict(r) for r in rs] for p, rs in runs.items()},
    }
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    return path


def parse_args() -> Config:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000, help="Preloaded backlog per run.")
    parser.add_argument("--rounds", type=int, default=3, help="Runs of each pipeline.")
    parser.add_argument("--prefetch", type=int, default=256, help="Both pipelines' prefetch.")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="Target's answer latency.")
    parser.add_argument("--latency-events", type=int, default=1000, help="Paced events per run.")
    parser.add_argument("--latency-rate", type=float, default=500.0, help="Paced events/s.")
    parser.add_argument("--timeout", type=float, default=120.0, help="Per phase, seconds.")
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--save", action="store_true", help="Write JSON to benchmarks/results/.")
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="Extra environment for actionrelay, e.g. ACTIONRELAY_EVENT_LOOP=asyncio.",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="Run both pipelines under cProfile (slower!), print their top functions, "
        "keep the .prof files in benchmarks/results/.",
    )
    args = vars(parser.parse_args())
    config = Config(**{**args, "worker_env": tuple(args["worker_env"])})
    if config.events < 2 or config.latency_events < 1 or config.latency_rate <= 0:
        parser.error("need --events >= 2, --latency-events >= 1 and --latency-rate > 0")
    return config


def tree_note() -> str:
    """Which actionrelay was measured: the commit, and whether src/ had local changes."""
    git = ["git", "-C", str(HERE.parent)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "status", "--porcelain", "src"], capture_output=True, text=True)
    if head.returncode != 0:
        return "actionrelay outside git"
    return f"actionrelay at {head.stdout.strip()}" + (" + local changes" if dirty.stdout else "")


def load_note() -> str:
    """Other work on the machine skews every number; say so up front."""
    load = os.getloadavg()[0]
    busy = load > 0.5 * (os.cpu_count() or 1)
    return f"load average {load:.2f}" + (" (busy machine: numbers will be noisy)" if busy else "")


def main() -> None:
    config = parse_args()
    print(
        f"{config.scenario}: {config.events} preloaded events, latency at "
        f"{config.latency_rate:g} events/s, {config.rounds} rounds; {tree_note()}; {load_note()}",
        flush=True,
    )
    runs = asyncio.run(benchmark(config))
    print(report(config, runs))
    print(f"after the runs: {load_note()}")
    if config.save:
        print(f"saved {save(config, runs)}")


if __name__ == "__main__":
    main()
