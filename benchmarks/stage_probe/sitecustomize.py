"""Where a step event's time goes inside ``actionrelay run``: a probe for benchmarks only.

Put this folder on the worker's PYTHONPATH (``--worker-env
PYTHONPATH=benchmarks/stage_probe``) and name a file in STAGE_PROBE_OUT; at exit
the worker writes there, for every event it settled with an ack, how long each
stage took (mean, median, 95th percentile, in ms):

- ``delivered -> call``: from the delivery to the start of the HTTP call
  (parsing, the gate, building the request, waiting for the loop);
- ``call``: the HTTP call itself;
- ``call end -> confirmed``: from the response to the broker's confirm of
  everything the event's fate publishes;
- ``confirmed -> ack on socket``: from the confirm to the ack frame written;
- ``whole cycle``: from the delivery to the ack;

the ack frames sent (multiple, and single ones for stragglers), the garbage
collector's runs and time, and the event loop's lag (how late a 10 ms timer
fires), which is what every stage waits on when the process is busy. Events are
keyed by (channel, delivery tag), as the broker keys them. Any other command, or
no STAGE_PROBE_OUT, leaves the process untouched. Not part of actionrelay: it
wraps a few of its methods.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STAGES = (
    ("delivered -> call", "delivered", "call_start"),
    ("call", "call_start", "call_end"),
    ("call end -> confirmed", "call_end", "confirmed"),
    ("confirmed -> ack on socket", "confirmed", "acked"),
    ("whole cycle", "delivered", "acked"),
)
LAG_INTERVAL_SECONDS = 0.01


@dataclass
class StageProbe:
    """Timestamps per (channel id, delivery tag); finished events move to ``done``."""

    open: dict[tuple[int, int], dict[str, float]] = field(default_factory=dict)
    done: list[dict[str, float]] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    watcher: asyncio.Task[None] | None = None
    frames: dict[bool, int] = field(default_factory=lambda: {True: 0, False: 0})  # by multiple
    gc_seconds: float = 0.0
    gc_collections: int = 0
    _gc_started: float = 0.0
    current: contextvars.ContextVar[tuple[int, int] | None] = field(
        default_factory=lambda: contextvars.ContextVar("stage_probe_key", default=None)
    )

    def delivered(self, channel: object, tag: int) -> None:
        key = (id(channel), tag)
        self.open[key] = {"delivered": time.monotonic()}
        self.current.set(key)

    def mark(self, stage: str) -> None:
        key = self.current.get()
        if key is not None and key in self.open:
            self.open[key][stage] = time.monotonic()

    def confirmed(self, channel: object, tag: int) -> None:
        stamps = self.open.get((id(channel), tag))
        if stamps is not None:
            stamps["confirmed"] = time.monotonic()

    def acked(self, channel: object, tag: int, multiple: bool) -> None:
        """An ack frame is out: it settles ``tag`` and, if multiple, each confirmed one below."""
        now, channel_id = time.monotonic(), id(channel)
        self.frames[multiple] += 1
        if multiple:
            keys = [k for k, s in self.open.items() if k[0] == channel_id and k[1] <= tag]
            keys = [k for k in keys if "confirmed" in self.open[k]]
        else:
            keys = [(channel_id, tag)] if (channel_id, tag) in self.open else []
        for key in keys:
            stamps = self.open.pop(key)
            stamps["acked"] = now
            self.done.append(stamps)

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_seconds += time.perf_counter() - self._gc_started
            self.gc_collections += 1

    async def watch_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(LAG_INTERVAL_SECONDS)
            self.lags.append(loop.time() - asked - LAG_INTERVAL_SECONDS)

    def table(self) -> str:
        lines = [f"events settled with an ack: {len(self.done)}; still open: {len(self.open)}"]
        lines.append(
            f"ack frames: {self.frames[True]} multiple, {self.frames[False]} single; "
            f"garbage collector: {self.gc_collections} runs, {self.gc_seconds * 1000:.0f} ms"
        )
        lines.append(f"{'stage':<28} {'mean ms':>9} {'median':>9} {'p95':>9}")
        for name, start, end in STAGES:
            spans = [(s[end] - s[start]) * 1000 for s in self.done if start in s and end in s]
            lines.append(_row(name, spans))
        lines.append(_row("event-loop lag", [lag * 1000 for lag in self.lags]))
        return "\n".join(lines) + "\n"


def _row(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:<28} {'-':>9} {'-':>9} {'-':>9}"
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
    return f"{name:<28} {statistics.fmean(values):9.2f} {statistics.median(values):9.2f} {p95:9.2f}"


def _on_receive(probe: StageProbe, original: Any) -> Any:
    async def _receive(self: Any, message: Any, held_since: float | None = None) -> None:
        if probe.watcher is None:
            probe.watcher = asyncio.get_running_loop().create_task(probe.watch_lag())
        probe.delivered(message.channel, message.delivery_tag or 0)
        await original(self, message, held_since)

    return _receive


def _on_call(probe: StageProbe, original: Any) -> Any:
    async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        probe.mark("call_start")
        try:
            return await original(self, *args, **kwargs)
        finally:
            probe.mark("call_end")

    return call


def _on_settle(probe: StageProbe, original: Any) -> Any:
    def settle(self: Any, tag: int) -> None:
        probe.confirmed(self._channel, tag)
        original(self, tag)

    return settle


def _on_ack(probe: StageProbe, original: Any) -> Any:
    async def _ack(self: Any, frames: list[tuple[int, bool]]) -> None:
        await original(self, frames)
        for tag, multiple in frames:
            probe.acked(self._channel, tag, multiple)

    return _ack


def install(out: Path) -> StageProbe:
    """Wrap the worker's delivery, call, confirm and ack steps; write the table at exit."""
    from actionrelay.broker.acks import AckBatcher
    from actionrelay.http.client import HttpClient
    from actionrelay.worker import Worker

    probe = StageProbe()
    wrappers: list[tuple[type, str, Callable[[StageProbe, Any], Any]]] = [
        (Worker, "_receive", _on_receive),
        (HttpClient, "call", _on_call),
        (AckBatcher, "settle", _on_settle),
        (AckBatcher, "_ack", _on_ack),
    ]
    for owner, name, wrap in wrappers:
        setattr(owner, name, wrap(probe, getattr(owner, name)))
    gc.callbacks.append(probe.on_gc)
    atexit.register(lambda: out.write_text(probe.table()))
    return probe


def _is_worker_run(orig_argv: list[str]) -> bool:
    """``actionrelay run`` or ``python -m actionrelay run`` (sys.argv is not set up yet)."""
    args = orig_argv[1:]
    if args[:2] == ["-m", "actionrelay"]:
        return args[2:3] == ["run"]
    return bool(args) and Path(args[0]).name == "actionrelay" and args[1:2] == ["run"]


if os.environ.get("STAGE_PROBE_OUT") and _is_worker_run(sys.orig_argv):
    install(Path(os.environ["STAGE_PROBE_OUT"]))
