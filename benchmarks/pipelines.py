"""The processes of a benchmark run: the target API and the pipelines under test.

A pipeline is the hand-written bare loop ``reference.py``, the FastStream peer
``faststream_peer.py``, the broker-only ``ceiling.py`` (no HTTP) or
``actionrelay run``, started as one or more subprocesses consuming the same
request queue. Each
actionrelay process gets its own free health/metrics port, as a user would run
it (metrics on), and the runner scrapes ``/metrics`` once at the end.
"""

from __future__ import annotations

import asyncio
import compileall
import contextlib
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import aiohttp
import orjson
from prometheus_client.parser import text_string_to_metric_families

import actionrelay
from actionrelay.settings import Settings

HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
RESULTS_DIR = HERE / "results"
PIPELINES = ("reference", "actionrelay")  # ``run.py`` without --all compares these two
# The scripts of the other pipelines; each takes --amqp-url, --queue, --prefetch, --target-url.
SCRIPTS = {
    "reference": "reference.py",
    "faststream": "faststream_peer.py",
    "ceiling": "ceiling.py",
}
ACTION_NAME = "benchPost"
DELIVERY_LIMIT = 20


class BenchmarkError(Exception):
    """A pipeline died, stalled or answered with failures: its numbers would mean nothing."""


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

    def profile_path(self, index: int) -> Path:
        RESULTS_DIR.mkdir(exist_ok=True)
        return RESULTS_DIR / f"profile-{self.pipeline}-{self.suffix}-{index}.prof"

    def queues(self) -> list[str]:
        return [self.request_queue, self.reply_queue, self.dead_letter_queue, self.results_queue]

    def settings(self, amqp_url: str, prefetch: int) -> Settings:
        return Settings(
            amqp_url=amqp_url,
            request_queue=self.request_queue,
            dead_letter_queue=self.dead_letter_queue,
            results_queue=self.results_queue,
            results_exchange=self.results_exchange,
            queue_type="quorum",
            delivery_limit=DELIVERY_LIMIT,
            prefetch=prefetch,
        )


@dataclass(frozen=True)
class Launch:
    """How to start a pipeline: the same for every process of a run."""

    amqp_url: str
    prefetch: int
    target_url: str
    actions_dir: Path
    worker_env: tuple[str, ...] = ()
    profile: bool = False
    delay_ms: float = 0.0  # the target's; the ceiling sleeps as long instead of calling


@dataclass
class PipelineProcess:
    process: asyncio.subprocess.Process
    metrics_port: int | None

    @property
    def pid(self) -> int:
        return self.process.pid


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


def byte_compile_actionrelay() -> None:
    """Write actionrelay's bytecode, as installing its wheel does.

    The editable install imports ``src/`` directly; with PYTHONDONTWRITEBYTECODE set
    (as in CI and dev shells) every worker would compile its 50-odd modules at start,
    which leaves about 0.5 MB of the compiler's memory in its RSS that no installed
    worker has.
    """
    if not compileall.compile_dir(Path(actionrelay.__file__).parent, quiet=1):
        raise BenchmarkError("actionrelay's sources do not compile")


def free_port() -> int:
    """A port nothing listens on right now (the worker binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def actionrelay_env(names: Names, launch: Launch, index: int, port: int) -> dict[str, str]:
    env = {
        "ACTIONRELAY_AMQP_URL": launch.amqp_url,
        "ACTIONRELAY_ACTIONS_DIR": str(launch.actions_dir),
        "ACTIONRELAY_REQUEST_QUEUE": names.request_queue,
        "ACTIONRELAY_DEAD_LETTER_QUEUE": names.dead_letter_queue,
        "ACTIONRELAY_RESULTS_EXCHANGE": names.results_exchange,
        "ACTIONRELAY_RESULTS_QUEUE": names.results_queue,
        "ACTIONRELAY_QUEUE_TYPE": "quorum",
        "ACTIONRELAY_DELIVERY_LIMIT": str(DELIVERY_LIMIT),
        "ACTIONRELAY_PREFETCH": str(launch.prefetch),
        "ACTIONRELAY_LOG_LEVEL": "info",
        "ACTIONRELAY_LOG_FORMAT": "json",
        "ACTIONRELAY_WORKER_ID": f"bench-{names.suffix}-{index}",
        # The target is plain http on loopback, which the egress policy refuses by default.
        "ACTIONRELAY_ALLOW_HTTP_HOSTS": "127.0.0.1",
        "ACTIONRELAY_ALLOW_PRIVATE_NETWORKS": "127.0.0.1/32",
        # Health and metrics on, as deployed; a free port so it cannot clash with a test's.
        "ACTIONRELAY_HTTP_HOST": "127.0.0.1",
        "ACTIONRELAY_HTTP_PORT": str(port),
    }
    return env | dict(item.split("=", 1) for item in launch.worker_env)


def pipeline_command(
    names: Names, launch: Launch, index: int
) -> tuple[list[str], dict[str, str], int | None]:
    """argv, environment and metrics port of the ``index``-th process of a run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIONRELAY_")}
    port: int | None = None
    if names.pipeline in SCRIPTS:
        command = [str(HERE / SCRIPTS[names.pipeline]), "--amqp-url", launch.amqp_url]
        command += ["--queue", names.request_queue, "--prefetch", str(launch.prefetch)]
        command += ["--target-url", launch.target_url]
        if names.pipeline == "ceiling":
            command += ["--delay-ms", str(launch.delay_ms)]
    else:
        command = [str(VENV_BIN / "actionrelay"), "run"]
        port = free_port()
        env |= actionrelay_env(names, launch, index, port)
    if launch.profile:
        # cProfile writes its stats when the pipeline exits after SIGTERM.
        command = ["-m", "cProfile", "-o", str(names.profile_path(index)), *command]
    return [sys.executable, *command], env, port


async def start_pipeline(
    names: Names, launch: Launch, count: int, log: IO[bytes]
) -> list[PipelineProcess]:
    started: list[PipelineProcess] = []
    for index in range(count):
        argv, env, port = pipeline_command(names, launch, index)
        process = await asyncio.create_subprocess_exec(*argv, env=env, stdout=log, stderr=log)
        started.append(PipelineProcess(process, port))
    return started


async def stop_process(process: asyncio.subprocess.Process, grace: float = 30.0) -> None:
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), grace)
    except TimeoutError:
        process.kill()
        await process.wait()


async def stop_pipeline(processes: list[PipelineProcess]) -> None:
    await asyncio.gather(*(stop_process(p.process) for p in processes))


async def results_by_status(session: aiohttp.ClientSession, port: int) -> dict[str, float]:
    """``actionrelay_results_total`` from one worker's /metrics, summed by status."""
    async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
        if response.status != 200:
            raise BenchmarkError(f"/metrics on port {port} answered {response.status}")
        text = await response.text()
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "actionrelay_results_total":
                status = sample.labels.get("status", "")
                totals[status] = totals.get(status, 0.0) + sample.value
    return totals


@dataclass
class Target:
    """The target API process: its URL, its pid, and the calls it saw."""

    url: str
    pid: int
    session: aiohttp.ClientSession

    async def stats(self, *, reset: bool = False) -> dict[str, int]:
        base = self.url.split("/v1/", 1)[0]
        async with self.session.get(f"{base}/stats", params={"reset": "1"} if reset else {}) as r:
            stats: dict[str, int] = await r.json()
            return stats


@contextlib.asynccontextmanager
async def target_server(delay_ms: float, session: aiohttp.ClientSession) -> AsyncIterator[Target]:
    script = str(HERE / "target.py")
    process = await asyncio.create_subprocess_exec(
        sys.executable, script, "--delay-ms", str(delay_ms), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        if not line.startswith(b"PORT "):
            raise BenchmarkError(f"target server did not start: {line!r}")
        url = f"http://127.0.0.1:{int(line.split()[1])}/v1/messages"
        yield Target(url, process.pid, session)
    finally:
        await stop_process(process, grace=5)


def log_tail(path: Path, lines: int = 15) -> list[str]:
    return path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
