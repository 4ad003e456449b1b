"""From the runs of ``--all`` to the table, the verdicts against issue 17 and the CPU notes.

The bare loop is ``reference.py``; FastStream is ``faststream_peer.py``; the ceiling is
``ceiling.py`` (consume and a confirmed publish, no HTTP)."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from measure import RunStats
from report import Row, cpu_count, cpu_share_note, ratio_cell, triple
from scenarios import Outcome

PEER_RATIO = 1.5  # actionrelay events/s over the bare loop's and over FastStream's, fast endpoint
SLOW_SHARE = 0.95  # of actionrelay's own fast-endpoint figure, slow endpoint with prefetch 1000
RSS_MARGIN_MB = 20.0  # actionrelay's RSS over the bare loop's, at rest and with 1,000 calls open
SOAK_GROWTH_MB = 5.0  # RSS growth from the first tenth of the soak to its end (~55 B/event)
SCALE_RATIO = 1.6  # two processes over one, where CPU is not the limit
CPU_BUSY = 0.9  # of all cores: the machine is the limit
PEERS = ("reference", "faststream", "actionrelay")


@dataclass
class Findings:
    rows: list[Row] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)
    cpu_notes: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)


Builder = Callable[[Outcome, dict[str, Outcome], Findings], None]


def findings(outcomes: list[Outcome]) -> Findings:
    by_key = {o.scenario.key: o for o in outcomes}
    found = Findings()
    for outcome in outcomes:
        BUILDERS[outcome.scenario.key](outcome, by_key, found)
        for (pipeline, processes), runs in outcome.runs.items():
            median = outcome.median(pipeline, processes)
            note = f"{outcome.scenario.key}, {pipeline} x{processes} (runs: {len(runs)}): "
            found.cpu_notes.append(note + cpu_share_note(median))
    found.checks = metrics_checks(outcomes)
    found.checks += [f"{o.scenario.key}: {note}" for o in outcomes for note in o.retries]
    return found


def met(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def medians(outcome: Outcome, processes: int = 1) -> dict[str, RunStats]:
    return {p: outcome.median(p, processes) for p, n in outcome.runs if n == processes}


def cells(runs: dict[str, RunStats], value: Callable[[RunStats], float | None], spec: str) -> Row:
    """A row's figures for the bare loop, FastStream and actionrelay, and the two ratios."""
    got = {p: value(runs[p]) if p in runs else None for p in PEERS}
    shown = {p: format(v, spec) if v is not None else "" for p, v in got.items()}
    relay = got["actionrelay"]
    return Row(
        "",
        reference=shown["reference"],
        faststream=shown["faststream"],
        actionrelay=shown["actionrelay"],
        ratio=ratio_cell(relay, got["reference"]),
        ratio_faststream=ratio_cell(relay, got["faststream"]) if got["faststream"] else "",
    )


def throughput_row(label: str, runs: dict[str, RunStats]) -> Row:
    row = cells(runs, lambda s: s.events_per_s, ".0f")
    peers = [runs.get(p) for p in PEERS]
    rss = triple(tuple(s.peak_rss_mb if s else None for s in peers), ".1f")  # type: ignore[arg-type]
    cpu = triple(tuple(s.cpu_us_per_event if s else None for s in peers), ".0f")  # type: ignore[arg-type]
    return Row(label, row.reference, row.faststream, row.actionrelay, row.ratio,
               row.ratio_faststream, rss, cpu)  # fmt: skip


def value_row(label: str, runs: dict[str, RunStats], value: Callable[[RunStats], float | None],
              spec: str) -> Row:  # fmt: skip
    row = cells(runs, value, spec)
    return Row(label, row.reference, row.faststream, row.actionrelay, row.ratio,
               row.ratio_faststream)  # fmt: skip


def latency_rows(outcome: Outcome, runs: dict[str, RunStats]) -> list[Row]:
    rate = f"{outcome.scenario.spec.latency_rate:g}/s"
    return [
        value_row(f"  p50 ms publish->result, paced {rate}", runs, lambda s: s.p50_ms, ".0f"),
        value_row(f"  p99 ms publish->result, paced {rate}", runs, lambda s: s.p99_ms, ".0f"),
    ]


def add_ceiling_rows(runs: dict[str, RunStats], what: str, found: Findings) -> str:
    """Add the broker-only ceiling's row and every pipeline's share of it; returns the
    verdict's words on actionrelay's share (empty without a ceiling run)."""
    ceiling = runs.get("ceiling")
    if ceiling is None:
        return ""
    found.rows.append(
        Row(
            f"  broker-only ceiling (consume + confirmed publish, {what})",
            actionrelay=f"{ceiling.events_per_s:.0f}",
            rss=f"{ceiling.peak_rss_mb:.1f}",
            cpu=f"{ceiling.cpu_us_per_event:.0f}",
        )
    )
    found.rows.append(
        value_row(
            "  % of the ceiling", runs, lambda s: 100 * s.events_per_s / ceiling.events_per_s,
            ".0f",
        )
    )  # fmt: skip
    relay = runs["actionrelay"]
    return (
        f"; {100 * relay.events_per_s / ceiling.events_per_s:.0f} % of the broker-only "
        f"ceiling ({ceiling.events_per_s:.0f}/s, {what})"
    )


def fast(outcome: Outcome, _: dict[str, Outcome], found: Findings) -> None:
    runs = medians(outcome)
    relay, bare, peer = runs["actionrelay"], runs["reference"], runs["faststream"]
    found.rows.append(throughput_row(f"{outcome.scenario.title}: events/s", runs))
    found.rows += latency_rows(outcome, runs)
    share = add_ceiling_rows(runs, "no HTTP", found)
    to_bare, to_peer = (
        relay.events_per_s / bare.events_per_s,
        relay.events_per_s / peer.events_per_s,
    )
    found.verdicts.append(
        f"fast: actionrelay / bare loop = {to_bare:.2f}, / FastStream = {to_peer:.2f}, median of "
        f"{outcome.scenario.rounds} alternating rounds (target >= {PEER_RATIO} each): "
        f"{met(min(to_bare, to_peer) >= PEER_RATIO)}; CPU µs/event {relay.cpu_us_per_event:.0f} "
        f"(bare {bare.cpu_us_per_event:.0f}, FastStream {peer.cpu_us_per_event:.0f}){share}"
    )


def slow(outcome: Outcome, by_key: dict[str, Outcome], found: Findings) -> None:
    spec = outcome.scenario.spec
    runs = medians(outcome)
    found.rows.append(throughput_row(f"{outcome.scenario.title}: events/s", runs))
    in_flight = spec.prefetch / (spec.delay_ms / 1000)
    if "fast" in by_key:
        fast_runs = medians(by_key["fast"])
        found.rows.append(
            value_row(
                "  % of its own fast-endpoint figure", runs,
                lambda s: 100 * s.events_per_s / fast_runs[s.pipeline].events_per_s, ".0f",
            )
        )  # fmt: skip
        share = runs["actionrelay"].events_per_s / fast_runs["actionrelay"].events_per_s
        verdict = f"(target >= {100 * SLOW_SHARE:.0f} %): {met(share >= SLOW_SHARE)}"
        figure = f"{100 * share:.0f} % of its fast-endpoint figure"
    else:
        verdict, figure = "(run with fast for the verdict)", ""
    found.rows += latency_rows(outcome, runs)
    of_ceiling = add_ceiling_rows(runs, f"a {spec.delay_ms:g} ms sleep for the call", found)
    found.verdicts.append(
        f"slow: actionrelay {runs['actionrelay'].events_per_s:.0f}/s = {figure} {verdict}; "
        f"in-flight bound {in_flight:.0f}/s{of_ceiling}; bare loop "
        f"{runs['reference'].events_per_s:.0f}/s, "
        f"FastStream {runs['faststream'].events_per_s:.0f}/s"
    )


def memory(outcome: Outcome, _: dict[str, Outcome], found: Findings) -> None:
    runs = medians(outcome)
    rest = {p: statistics.median(v) for p, v in outcome.rest_rss_mb.items()}
    found.rows.append(
        value_row("3 RSS MB at rest (consuming, idle)", runs, lambda s: rest.get(s.pipeline), ".1f")
    )
    found.rows.append(
        value_row(f"{outcome.scenario.title}: peak RSS MB", runs, lambda s: s.peak_rss_mb, ".1f")
    )
    found.rows.append(
        value_row("  calls open at once at the target", runs, lambda s: s.peak_open_calls, "d")
    )
    spec = outcome.scenario.spec
    rate = spec.prefetch * 1000 / spec.delay_ms
    bound = f"{spec.prefetch} / {spec.delay_ms / 1000:g} s = {rate:.0f}/s"
    found.rows.append(throughput_row(f"  events/s (bound: {bound})", runs))
    relay, bare = runs["actionrelay"], runs["reference"]
    over_peak = relay.peak_rss_mb - bare.peak_rss_mb
    over_rest = rest.get("actionrelay", 0.0) - rest.get("reference", 0.0)
    ok = max(over_peak, over_rest) <= RSS_MARGIN_MB
    found.verdicts.append(
        f"memory: actionrelay over the bare loop: {over_rest:+.1f} MB at rest, "
        f"{over_peak:+.1f} MB with {relay.peak_open_calls} calls open (target <= "
        f"{RSS_MARGIN_MB:.0f} MB each): {met(ok)}; actionrelay {rest.get('actionrelay', 0):.1f} / "
        f"{relay.peak_rss_mb:.1f} MB, bare loop {rest.get('reference', 0):.1f} / "
        f"{bare.peak_rss_mb:.1f} MB, FastStream {rest.get('faststream', 0):.1f} / "
        f"{runs['faststream'].peak_rss_mb:.1f} MB"
    )


def soak(outcome: Outcome, _: dict[str, Outcome], found: Findings) -> None:
    runs = medians(outcome)
    found.rows.append(throughput_row(f"{outcome.scenario.title}: events/s", runs))
    marks = outcome.scenario.spec.rss_marks
    for mark in marks:
        found.rows.append(value_row(f"  RSS MB at {mark:,} results", runs, rss_at(mark), ".1f"))
    first, last = marks[0], marks[-1]
    growth = {p: s.rss_at_mb[last] - s.rss_at_mb[first] for p, s in runs.items()}
    found.rows.append(
        value_row(f"  RSS growth MB, {first:,} -> {last:,}", runs,
                  lambda s: growth[s.pipeline], "+.1f")
    )  # fmt: skip
    relay = runs["actionrelay"]
    sizes = " / ".join(f"{relay.rss_at_mb[m]:.1f}" for m in marks)
    found.verdicts.append(
        f"soak: actionrelay RSS {sizes} MB at {' / '.join(f'{m:,}' for m in marks)} results, "
        f"growth {growth['actionrelay']:+.1f} MB (no growth: <= {SOAK_GROWTH_MB:g} MB): "
        f"{met(growth['actionrelay'] <= SOAK_GROWTH_MB)}; bare loop {growth['reference']:+.1f} MB"
    )


def rss_at(mark: int) -> Callable[[RunStats], float | None]:
    return lambda stats: stats.rss_at_mb.get(mark)


def scale(outcome: Outcome, _: dict[str, Outcome], found: Findings) -> None:
    title = outcome.scenario.title
    one, two = medians(outcome, 1), medians(outcome, 2)
    found.rows.append(Row(title))
    found.rows.append(throughput_row("  1 process, events/s", one))
    found.rows.append(throughput_row("  2 processes on one queue, events/s", two))
    factor = {p: two[p].events_per_s / one[p].events_per_s for p in one}
    found.rows.append(value_row("  2 processes / 1", one, lambda s: factor[s.pipeline], ".2f"))
    busy = sum(two["actionrelay"].cpu_share.values()) / (100 * cpu_count())
    limit = (
        f"CPU is the limit: the machine's cores were {100 * busy:.0f} % busy with 2 workers "
        f"({cpu_share_note(two['actionrelay'])})"
        if busy >= CPU_BUSY
        else f"CPU is not the limit: cores {100 * busy:.0f} % busy with 2 workers"
    )
    if outcome.scenario.spec.delay_ms:
        bound = outcome.scenario.spec.prefetch / (outcome.scenario.spec.delay_ms / 1000)
        verdict = f"(target >= {SCALE_RATIO}): {met(factor['actionrelay'] >= SCALE_RATIO)}"
        limit += f"; in-flight bound {bound:.0f}/s per process"
    else:
        verdict = "(no target where CPU is the limit)"
    found.verdicts.append(
        f"{title}: actionrelay 2 / 1 processes = {factor['actionrelay']:.2f} {verdict}; "
        f"bare loop {factor['reference']:.2f}; {limit}"
    )


BUILDERS: dict[str, Builder] = {
    "fast": fast,
    "slow": slow,
    "memory": memory,
    "soak": soak,
    "scale-slow": scale,
    "scale-fast": scale,
}


def metrics_checks(outcomes: list[Outcome]) -> list[str]:
    """Metrics were on: each actionrelay run's /metrics counted every result as a success."""
    relay_runs = [r for o in outcomes for r in o.all_runs() if r.pipeline == "actionrelay"]
    wrong = [r for r in relay_runs if r.metrics_successes != r.results]
    if not wrong:
        return [
            f"metrics on: /metrics of all {len(relay_runs)} actionrelay runs counted every "
            "result as actionrelay_results_total{status=success}"
        ]
    return [
        f"metrics MISMATCH: /metrics counted {r.metrics_successes} successes, "
        f"{r.results} results arrived"
        for r in wrong
    ]
