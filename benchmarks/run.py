"""actionrelay next to a minimal reference pipeline: throughput, latency, CPU and memory.

    .venv/bin/python benchmarks/run.py --all [--only fast,slow] [--quick]
    .venv/bin/python benchmarks/run.py [--events N] [--rounds R] [--prefetch P] [--delay-ms D]

``--all`` runs every scenario of issues 7 and 17 (fast endpoint, slow endpoint, memory
with 1,000 calls open, a 100,000-event soak, scale-out to two processes) and
prints one table with the verdicts. Without it, one scenario: each round runs
both pipelines, one after the other (the order alternates), on fresh uniquely
named queues: preload N step events, start the pipeline, time the backlog,
then a paced stream for latency at a fixed offered load. See
benchmarks/README.md and docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

from findings import findings
from harness import Lab, delete_leftovers, open_lab, sweep_leftovers
from measure import RunSpec, RunStats
from pipelines import PIPELINES
from report import (
    load_average,
    load_note,
    median_stats,
    print_profile,
    runs_as_json,
    save,
    single_report,
    src_of,
    suite_table,
    tree_note,
)
from scenarios import Outcome, Scenario, batches, progress_line, run_scenarios, suite

BUSY_LOAD = 1.5  # load average above which --all waits a minute once before starting


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="Run every scenario (issue 17).")
    parser.add_argument("--only", default="", help="With --all: comma-separated scenario keys.")
    parser.add_argument("--quick", action="store_true", help="With --all: a tenth, 1 round.")
    parser.add_argument("--events", type=int, default=5000, help="Preloaded backlog per run.")
    parser.add_argument("--rounds", type=int, default=3, help="Runs of each pipeline.")
    parser.add_argument("--prefetch", type=int, default=256, help="Both pipelines' prefetch.")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="Target's answer latency.")
    parser.add_argument("--processes", type=int, default=1, help="Pipeline processes per run.")
    parser.add_argument("--latency-events", type=int, default=1000, help="Paced events per run.")
    parser.add_argument("--latency-rate", type=float, default=500.0, help="Paced events/s.")
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="Fail when no result comes for this long (s)."
    )
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
        help="Run both pipelines under cProfile (slower!), print own time by package and "
        "the top functions, keep the .prof files in benchmarks/results/ (one scenario only).",
    )
    args = parser.parse_args()
    if args.all and args.profile:
        parser.error("--profile slows the pipelines down: use it with one scenario, not --all")
    if args.events < 2 or args.latency_events < 0 or args.latency_rate <= 0:
        parser.error("need --events >= 2, --latency-events >= 0 and --latency-rate > 0")
    return args


# --- one scenario ------------------------------------------------------------------------


async def single(args: argparse.Namespace) -> dict[str, list[RunStats]]:
    spec = RunSpec(
        events=args.events,
        prefetch=args.prefetch,
        delay_ms=args.delay_ms,
        processes=args.processes,
        latency_events=args.latency_events,
        latency_rate=args.latency_rate,
        stall_seconds=args.timeout,
    )
    runs: dict[str, list[RunStats]] = {p: [] for p in PIPELINES}
    async with (
        open_lab(args.amqp_url, tuple(args.worker_env), profile=args.profile) as lab,
        lab.bench(spec.delay_ms) as bench,
    ):
        try:
            for r in range(args.rounds):
                for pipeline in PIPELINES if r % 2 == 0 else reversed(PIPELINES):
                    stats = await bench.run(pipeline, spec)
                    runs[pipeline].append(stats)
                    print(f"round {r + 1}: {progress_line(stats)}", flush=True)
                    for path in stats.profiles:
                        print_profile(Path(path))
        finally:
            await sweep(lab)
    return runs


def single_main(args: argparse.Namespace) -> None:
    scenario = f"delay {args.delay_ms:g} ms, prefetch {args.prefetch}"
    if args.processes > 1:
        scenario += f", x{args.processes}"
    print(
        f"{scenario}: {args.events} preloaded events, latency at {args.latency_rate:g} events/s, "
        f"{args.rounds} rounds; {tree_note()}; {load_note()}",
        flush=True,
    )
    runs = asyncio.run(single(args))
    ref, relay = (median_stats(runs[p]) for p in PIPELINES)
    print(single_report(scenario, ref, relay))
    print(f"after the runs: {load_note()}")
    if args.save:
        data = {"args": vars(args), "runs": {p: runs_as_json(rs) for p, rs in runs.items()}}
        print(f"saved {save(f'd{args.delay_ms:g}-p{args.prefetch}', data)}")


# --- every scenario ----------------------------------------------------------------------


async def everything(args: argparse.Namespace, scenarios: list[Scenario]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    async with open_lab(args.amqp_url, tuple(args.worker_env)) as lab:
        try:
            for batch in batches(scenarios):
                titles = " / ".join(f"{s.title} ({s.rounds} round(s))" for s in batch)
                alternating = ", rounds alternating" if len(batch) > 1 else ""
                print(f"=== {titles}{alternating}", flush=True)
                done, failed = await run_scenarios(lab, batch)
                outcomes.extend(done)
                for outcome in done:
                    print(f"=== {outcome.scenario.key} done in {outcome.seconds:.0f} s", flush=True)
                for key, exc in failed.items():
                    print(f"!!! {key} FAILED, left out of the table: {exc!r}", flush=True)
        finally:
            await sweep(lab)
    return outcomes


async def sweep(lab: Lab) -> None:
    """What a failed run may have left (retry queues, objects of a broker restart): delete."""
    leftovers = sweep_leftovers(lab.suffixes)
    names = [name for kind in leftovers.values() for name in kind]
    if names:
        print(f"deleting {len(names)} leftover queues/exchanges: {', '.join(names)}")
        await delete_leftovers(await lab.live_connection(), leftovers)


def wait_for_quiet_machine() -> str:
    load = load_average()
    if load <= BUSY_LOAD:
        return load_note()
    print(f"load average {load:.2f} > {BUSY_LOAD}: waiting a minute", flush=True)
    time.sleep(60)
    note = load_note()
    if load_average() > BUSY_LOAD:
        note += f" (still > {BUSY_LOAD} after waiting a minute: proceeding anyway)"
    return note


def select(args: argparse.Namespace) -> list[Scenario]:
    scenarios = suite(quick=args.quick)
    if not args.only:
        return scenarios
    keys = set(args.only.split(","))
    unknown = keys - {s.key for s in scenarios}
    if unknown:
        raise SystemExit(f"unknown scenario(s) {sorted(unknown)}: {[s.key for s in scenarios]}")
    return [s for s in scenarios if s.key in keys]


def all_main(args: argparse.Namespace) -> None:
    scenarios = select(args)
    load = wait_for_quiet_machine()
    started = time.perf_counter()
    print(f"benchmark suite: {tree_note()}; {load}", flush=True)
    outcomes = asyncio.run(everything(args, scenarios))
    found = findings(outcomes)
    minutes = (time.perf_counter() - started) / 60
    print()
    print(suite_table(found.rows))
    print("\nverdicts against issue 17:", *(f"- {v}" for v in found.verdicts), sep="\n")
    print("\nCPU share over each backlog window (% of one core; medians):")
    print(*(f"- {n}" for n in found.cpu_notes), sep="\n")
    print("\nchecks:", *(f"- {c}" for c in found.checks), sep="\n")
    rounds = ", ".join(f"{s.key} {s.rounds}" for s in scenarios)
    print(f"\nrounds: {rounds}; {minutes:.1f} min; {sources_note(outcomes)}; {load_note()} after")
    if len(outcomes) < len(scenarios):
        raise SystemExit("some scenarios failed: see the !!! lines above")
    if args.save:
        print(f"saved {save('all', suite_json(outcomes, found.verdicts))}")


def sources_note(outcomes: list[Outcome]) -> str:
    """The code measured: one src/ state for the whole suite, or which scenario saw which."""
    states = {src_of(note) for o in outcomes for note in o.sources}
    if len(states) <= 1:
        return f"every run measured {tree_note() if not outcomes else outcomes[0].sources[0]}"
    seen = "; ".join(f"{o.scenario.key}: {', '.join(o.sources)}" for o in outcomes)
    return f"src/ CHANGED during the suite ({seen}); now {tree_note()}"


def suite_json(outcomes: list[Outcome], verdicts: list[str]) -> dict[str, Any]:
    return {
        "verdicts": verdicts,
        "scenarios": {
            o.scenario.key: {
                "title": o.scenario.title,
                "sources": o.sources,
                "runs": {f"{p} x{n}": runs_as_json(rs) for (p, n), rs in o.runs.items()},
            }
            for o in outcomes
        },
    }


def main() -> None:
    args = parse_args()
    if args.all:
        all_main(args)
    else:
        single_main(args)


if __name__ == "__main__":
    main()
