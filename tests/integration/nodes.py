"""Private RabbitMQ nodes for fault tests, started from the installed ``rabbitmq-server``.

Each node has its own name, ports and data folder under a temporary directory
owned by the ``rabbitmq`` user, so a test may stop, kill, alarm or cluster it
freely; the shared broker on 5672 is never touched. The Debian wrapper
``rabbitmq-server`` switches to the ``rabbitmq`` user when run as root, and the
nodes share that user's Erlang cookie, which ``rabbitmqctl -n`` needs.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import orjson

BROKER_USER = "rabbitmq"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def why_nodes_cannot_start() -> str | None:
    """None when this machine can start private nodes; otherwise why not."""
    if shutil.which("rabbitmq-server") is None or shutil.which("rabbitmqctl") is None:
        return "rabbitmq-server is not installed"
    try:
        broker_uid = pwd.getpwnam(BROKER_USER).pw_uid
    except KeyError:
        return f"no {BROKER_USER!r} user"
    if os.geteuid() not in (0, broker_uid):
        return f"starting a node needs root or the {BROKER_USER!r} user"
    return None


@dataclass
class RabbitNode:
    """One RabbitMQ node of the test's own: ``short@localhost`` on its own ports."""

    short: str
    root: Path
    port: int
    dist_port: int

    @classmethod
    def create(cls, short: str, root: Path) -> RabbitNode:
        node = cls(short, root / short, free_port(), free_port())
        for folder in ("mnesia", "log"):
            (node.root / folder).mkdir(parents=True)
        (node.root / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{node.port}\n")
        (node.root / "enabled_plugins").write_text("[].\n")
        shutil.chown(node.root.parent, BROKER_USER, BROKER_USER)
        for path in [node.root, *node.root.rglob("*")]:
            shutil.chown(path, BROKER_USER, BROKER_USER)
        return node

    @property
    def name(self) -> str:
        return f"{self.short}@localhost"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def pid_file(self) -> Path:
        return self.root / "node.pid"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        env |= {
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq.conf"),
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.root / "log"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
        }
        return env

    def start(self, timeout: float = 120) -> None:
        """Start the node (after a stop or a kill too) and wait until it boots."""
        subprocess.run(
            ["rabbitmq-server", "-detached"],
            env=self.env(),
            check=True,
            capture_output=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        self.wait_booted(timeout)

    def wait_booted(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.ctl("await_startup", "--timeout", "30", timeout=40)
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)  # the node is not registered with epmd yet
            else:
                return

    def ctl(self, *args: str, timeout: float = 60, tool: str = "rabbitmqctl") -> str:
        completed = subprocess.run(
            [tool, "-n", self.name, *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return completed.stdout

    def queues(self, *fields: str) -> list[dict[str, object]]:
        """``rabbitmqctl list_queues`` as records (e.g. ``name``, ``leader``, ``messages``)."""
        out = self.ctl("list_queues", *fields, "--formatter", "json", "--quiet")
        records: list[dict[str, object]] = orjson.loads(out or "[]")
        return records

    def close_connections(self, name: str) -> int:
        """Have the node close every client connection named ``name``; how many it closed."""
        listed = self.ctl("list_connections", "pid", "client_properties", "--quiet")
        pids = [
            line.split("\t", 1)[0]
            for line in listed.splitlines()
            if f'{{"connection_name","{name}"}}' in line
        ]
        for pid in pids:
            self.ctl("close_connection", pid, "test: connection closed by the broker")
        return len(pids)

    def connected_ports(self, name: str) -> list[int]:
        """The AMQP ports (so the nodes) that client connections named ``name`` are on,
        across the cluster."""
        listed = self.ctl("list_connections", "port", "client_properties", "--quiet")
        return [
            int(line.split("\t", 1)[0])
            for line in listed.splitlines()
            if f'{{"connection_name","{name}"}}' in line
        ]

    def wait_alarm(self, kind: str, timeout: float = 30) -> None:
        """Until the node reports a ``kind`` (memory, disk) resource alarm."""
        deadline = time.monotonic() + timeout
        while kind not in self.ctl("alarms", tool="rabbitmq-diagnostics").lower():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} raised no {kind} alarm")
            time.sleep(0.1)

    def stop_app(self) -> None:
        self.ctl("stop_app")

    def start_app(self) -> None:
        self.ctl("start_app")
        self.wait_booted()

    def pid(self) -> int:
        return int(self.pid_file.read_text().strip())

    def kill(self) -> None:
        """SIGKILL the node's Erlang VM, as the kernel's OOM killer would."""
        pid = self.pid()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _alive(pid):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} (pid {pid}) survived SIGKILL")
            time.sleep(0.05)

    def stop(self) -> None:
        """Halt the node; quietly nothing when it is not running."""
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self.ctl("stop", timeout=60)
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            if _alive(pid := self.pid()):
                os.kill(pid, signal.SIGKILL)

    def join(self, seed: RabbitNode) -> None:
        """Make this (fresh, running) node a member of ``seed``'s cluster."""
        self.ctl("stop_app")
        self.ctl("join_cluster", seed.name)
        self.start_app()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too (a detached node is not our child, but be sure).
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        return state != "Z"
    return True


@contextlib.contextmanager
def private_nodes(prefix: str, count: int, *, cluster: bool) -> Iterator[list[RabbitNode]]:
    """``count`` running nodes (clustered when asked); stopped and deleted afterwards."""
    root = Path(tempfile.mkdtemp(prefix=f"actionrelay-{prefix}-"))
    os.chmod(root, 0o755)
    tag = f"{prefix}{os.getpid()}"
    nodes = [RabbitNode.create(f"{tag}n{i}", root) for i in range(1, count + 1)]
    try:
        with ThreadPoolExecutor(count) as pool:
            list(pool.map(RabbitNode.start, nodes))
        if cluster:
            for node in nodes[1:]:
                node.join(nodes[0])
        yield nodes
    finally:
        with ThreadPoolExecutor(count) as pool:
            list(pool.map(RabbitNode.stop, nodes))
        shutil.rmtree(root, ignore_errors=True)
