"""The scenarios of issues 7 and 17, run one after the other by ``run.py --all``,
except fast and slow, whose rounds alternate (see ``INTERLEAVED``).

Every scenario runs its pipelines (the bare loop, FastStream, actionrelay; the
broker-only ceiling in the fast and slow ones) on the same broker and the same target
API, the order alternating between rounds; scale-out scenarios run each
pipeline with one process and with two on one queue. The memory scenario also
reads each pipeline's RSS at rest, consuming an empty queue. ``findings.py``
turns the runs into the table and the verdicts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from harness import CONNECTION_LOST, Bench, Lab
from measure import RunSpec, RunStats
from pipelines import BenchmarkError, byte_compile_actionrelay
from report import cpu_share_note, median_stats, src_of, tree_note


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    spec: RunSpec
    rounds: int
    process_counts: tuple[int, ...] = (1,)
    pipelines: tuple[str, ...] = ("reference", "faststream", "actionrelay")


@dataclass
class Outcome:
    scenario: Scenario
    runs: dict[tuple[str, int], list[RunStats]] = field(default_factory=dict)
    seconds: float = 0.0
    retries: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # tree notes, one per src/ state seen
    rest_rss_mb: dict[str, list[float]] = field(default_factory=dict)  # idle, consuming

    def median(self, pipeline: str, processes: int = 1) -> RunStats:
        return median_stats(self.runs[(pipeline, processes)])

    def all_runs(self) -> list[RunStats]:
        return [run for runs in self.runs.values() for run in runs]


def suite(*, quick: bool = False) -> list[Scenario]:
    """The full suite (10 to 17 minutes on 2 cores), or a tenth of it as a smoke test."""
    n = 10 if quick else 1

    def rounds(full: int) -> int:
        return 1 if quick else full

    soak = 100_000 // n
    return [
        Scenario(
            "fast",
            f"1 fast endpoint, {20_000 // n:,} preloaded",
            RunSpec(events=20_000 // n, prefetch=256, delay_ms=0, latency_events=1000 // n),
            rounds(3),
            pipelines=("reference", "faststream", "ceiling", "actionrelay"),
        ),
        Scenario(
            "slow",
            "2 slow endpoint (200 ms), prefetch 1000",
            RunSpec(events=20_000 // n, prefetch=1000, delay_ms=200, latency_events=1000 // n),
            rounds(3),
            pipelines=("reference", "faststream", "ceiling", "actionrelay"),
        ),
        Scenario(
            "memory",
            "3 1000 calls open (2 s endpoint)",
            RunSpec(events=4_000 // n, prefetch=1000, delay_ms=2000),
            rounds(2),
        ),
        Scenario(
            "soak",
            f"4 soak, {soak:,} events, fast endpoint",
            RunSpec(
                events=soak,
                prefetch=256,
                delay_ms=0,
                backlog_window=10_000 // n,
                rss_marks=(soak // 10, soak // 2, soak),
            ),
            rounds(1),
            pipelines=("reference", "actionrelay"),
        ),
        Scenario(
            "scale-slow",
            "5 scale-out, slow endpoint (1 s), prefetch 256",
            RunSpec(events=3_072 // n, prefetch=256, delay_ms=1000),
            rounds(2),
            (1, 2),
            pipelines=("reference", "actionrelay"),
        ),
        Scenario(
            "scale-fast",
            "5 scale-out, fast endpoint, prefetch 256",
            RunSpec(events=10_000 // n, prefetch=256, delay_ms=0),
            rounds(3),
            (1, 2),
            pipelines=("reference", "actionrelay"),
        ),
    ]


# The slow target is a ratio to the fast figure: their rounds alternate, so that the
# machine's drift (its speed varies by a third within an hour) hits both alike.
INTERLEAVED = frozenset({"fast", "slow"})


def batches(scenarios: list[Scenario]) -> list[list[Scenario]]:
    """Scenarios in running order, fast and slow in one batch when both are selected."""
    together = [s for s in scenarios if s.key in INTERLEAVED]
    order: list[list[Scenario]] = []
    for scenario in scenarios:
        if scenario.key not in INTERLEAVED:
            order.append([scenario])
        elif scenario is together[0]:
            order.append(together)
    return order


def plan(scenario: Scenario, r: int) -> Iterator[tuple[str, int]]:
    """(pipeline, processes) of round ``r``: alternating, so neither always goes first."""
    pipelines = scenario.pipelines
    order = pipelines if r % 2 == 0 else tuple(reversed(pipelines))
    counts = scenario.process_counts
    for pipeline in order:
        for processes in counts if r % 2 == 0 else tuple(reversed(counts)):
            yield pipeline, processes


async def run_scenarios(
    lab: Lab, scenarios: list[Scenario]
) -> tuple[list[Outcome], dict[str, BaseException]]:
    """Round 1 of each scenario, then round 2 in the opposite order, …; each on its own target.

    A scenario whose target does not start, or whose run fails twice, stops there (its
    error is returned); the others go on.
    """
    outcomes = {s.key: Outcome(s) for s in scenarios}
    failed: dict[str, BaseException] = {}
    async with contextlib.AsyncExitStack() as stack:
        benches: dict[str, Bench] = {}
        for scenario in scenarios:
            try:
                bench = lab.bench(scenario.spec.delay_ms)
                benches[scenario.key] = await stack.enter_async_context(bench)
            except (BenchmarkError, TimeoutError, *CONNECTION_LOST) as exc:
                failed[scenario.key] = exc
        for r in range(max(s.rounds for s in scenarios)):
            # Alternating, like the pipelines within a round: neither scenario always goes first.
            for scenario in scenarios if r % 2 == 0 else reversed(scenarios):
                if r >= scenario.rounds or scenario.key in failed:
                    continue
                outcome = outcomes[scenario.key]
                started = time.perf_counter()
                try:
                    await run_round(benches[scenario.key], outcome, r)
                except (BenchmarkError, TimeoutError, *CONNECTION_LOST) as exc:
                    failed[scenario.key] = exc
                outcome.seconds += time.perf_counter() - started
    return [outcomes[s.key] for s in scenarios if s.key not in failed], failed


async def run_round(bench: Bench, outcome: Outcome, r: int) -> None:
    scenario = outcome.scenario
    for pipeline, processes in plan(scenario, r):
        note_source(outcome)
        spec = dataclasses.replace(scenario.spec, processes=processes)
        stats = await run_with_one_retry(bench, pipeline, spec, outcome)
        outcome.runs.setdefault((pipeline, processes), []).append(stats)
        print(f"{scenario.key} round {r + 1}: {progress_line(stats)}", flush=True)
        if scenario.key == "memory" and processes == 1:
            rest = await bench.rest_rss_mb(pipeline, scenario.spec.prefetch)
            outcome.rest_rss_mb.setdefault(pipeline, []).append(rest)
            print(f"{scenario.key} round {r + 1}: {pipeline} at rest {rest:.1f} MB", flush=True)


def note_source(outcome: Outcome) -> None:
    """Another session may edit src/ during the suite: say which code each run measured,
    and compile what changed, so that no worker compiles at start."""
    note = tree_note()
    if not outcome.sources or src_of(note) != src_of(outcome.sources[-1]):
        if outcome.sources:
            print(f"--- src/ changed: from here on {note}", flush=True)
            byte_compile_actionrelay()
        outcome.sources.append(note)


async def run_with_one_retry(
    bench: Bench, pipeline: str, spec: RunSpec, outcome: Outcome
) -> RunStats:
    """A run cut short by the broker (another session's test may restart it) is run again once.

    The retry is recorded and printed with the results; a second failure ends the scenario.
    """
    try:
        return await bench.run(pipeline, spec)
    except (BenchmarkError, TimeoutError, *CONNECTION_LOST) as exc:
        note = f"{pipeline} x{spec.processes} run again after: {exc!r}"
        print(f"!!! {outcome.scenario.key}: {note}", flush=True)
        outcome.retries.append(note)
    return await bench.run(pipeline, spec)


def progress_line(s: RunStats) -> str:
    latency = "" if s.p99_ms is None else f", p50 {s.p50_ms:.0f} / p99 {s.p99_ms:.0f} ms"
    marks = "".join(f", RSS@{k // 1000}k {v:.1f}" for k, v in s.rss_at_mb.items())
    # A target without delay answers each call within one loop turn: nothing to count.
    calls = f", peak calls open {s.peak_open_calls}" if s.peak_open_calls > 1 else ""
    return (
        f"{s.pipeline} x{s.processes}: {s.events_per_s:.0f} events/s, "
        f"{s.cpu_us_per_event:.0f} CPU µs/event, peak RSS {s.peak_rss_mb:.1f} MB{marks}"
        f"{latency}{calls}; CPU: {cpu_share_note(s)}"
    )
