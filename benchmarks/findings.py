"""From the runs of ``--all`` to the table, the verdicts against issue 7 and the CPU notes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from measure import RunStats
from report import Row, cpu_count, cpu_share_note, pair, ratio_cell
from scenarios import Outcome

FAST_RATIO = 1.2  # actionrelay events/s over the reference's, fast endpoint
BOUND_SHARE = 0.95  # of min(in-flight bound, CPU-bound figure), slow endpoint
RSS_LIMIT_MB = 100.0  # peak RSS with 1,000 calls in flight
SOAK_GROWTH_MB = 5.0  # RSS growth from the first tenth of the soak to its end (~55 B/event)
SCALE_RATIO = 1.6  # two processes over one, where CPU is not the limit
CPU_BUSY = 0.9  # of all cores: the machine is the limit


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


def throughput_row(label: str, ref: RunStats, relay: RunStats) -> Row:
    return Row(
        label,
        f"{ref.events_per_s:.0f}",
        f"{relay.events_per_s:.0f}",
        ratio_cell(relay.events_per_s, ref.events_per_s),
        pair(ref.peak_rss_mb, relay.peak_rss_mb, ".1f"),
        pair(ref.cpu_us_per_event, relay.cpu_us_per_event, ".0f"),
    )


def value_row(label: str, ref: float | None, relay: float | None, spec: str) -> Row:
    cells = [format(v, spec) if v is not None else "-" for v in (ref, relay)]
    return Row(label, cells[0], cells[1], ratio_cell(relay, ref))


def latency_rows(outcome: Outcome, ref: RunStats, relay: RunStats) -> list[Row]:
    rate = f"{outcome.scenario.spec.latency_rate:g}/s"
    return [
        value_row(f"  p50 ms publish->result, paced {rate}", ref.p50_ms, relay.p50_ms, ".0f"),
        value_row(f"  p99 ms publish->result, paced {rate}", ref.p99_ms, relay.p99_ms, ".0f"),
    ]


def fast(outcome: Outcome, _: dict[str, Outcome], found: Findings) -> None:
    ref, relay = outcome.median("reference"), outcome.median("actionrelay")
    found.rows.append(throughput_row(f"{outcome.scenario.title}: events/s", ref, relay))
    found.rows += latency_rows(outcome, ref, relay)
    ratio = relay.events_per_s / ref.events_per_s
    found.verdicts.append(
        f"1 fast: actionrelay / reference events/s = {ratio:.2f}, median of "
        f"{outcome.scenario.rounds} alternating rounds (target >= {FAST_RATIO}): "
        f"{met(ratio >= FAST_RATIO)}; "
        f"every result a success; CPU µs/event {relay.cpu_us_per_event:.0f} vs "
        f"{ref.cpu_us_per_event:.0f} ({relay.cpu_us_per_event / ref.cpu_us_per_event:.2f}x)"
    )


def slow(outcome: Outcome, by_key: dict[str, Outcome], found: Findings) -> None:
    spec = outcome.scenario.spec
    in_flight = spec.prefetch / (spec.delay_ms / 1000)
    ref, relay = outcome.median("reference"), outcome.median("actionrelay")
    found.rows.append(throughput_row(f"{outcome.scenario.title}: events/s", ref, relay))
    bounds: dict[str, tuple[float, str]] = {}
    for stats in (ref, relay):
        bounds[stats.pipeline] = (in_flight, f"in-flight {in_flight:.0f}/s")
        if "fast" in by_key:
            cpu_bound = by_key["fast"].median(stats.pipeline).events_per_s
            if cpu_bound < in_flight:
                bounds[stats.pipeline] = (cpu_bound, f"CPU-bound {cpu_bound:.0f}/s from 1")
    b_ref, b_relay = bounds["reference"][0], bounds["actionrelay"][0]
    found.rows.append(
        value_row("  bound: min(prefetch/latency, CPU-bound of 1)", b_ref, b_relay, ".0f")
    )
    share_ref, share_relay = ref.events_per_s / b_ref, relay.events_per_s / b_relay
    found.rows.append(value_row("  % of that bound", 100 * share_ref, 100 * share_relay, ".0f"))
    found.rows += latency_rows(outcome, ref, relay)
    found.verdicts.append(
        f"2 slow: actionrelay {relay.events_per_s:.0f}/s = {100 * share_relay:.0f} % of the lower "
        f"bound, {bounds['actionrelay'][1]} (in-flight bound {in_flight:.0f}/s; target >= "
        f"{100 * BOUND_SHARE:.0f} %): {met(share_relay >= BOUND_SHARE)}; reference "
        f"{100 * share_ref:.0f} % of {bounds['reference'][1]}; p99 publish->result "
        f"{relay.p99_ms:.0f} ms (reference {ref.p99_ms:.0f} ms) at {spec.latency_rate:g} events/s"
    )


def memory(outcome: Outcome, _: dict[str, Outcome], found: Findings) -> None:
    ref, relay = outcome.median("reference"), outcome.median("actionrelay")
    found.rows.append(
        Row(
            f"{outcome.scenario.title}: peak RSS MB",
            f"{ref.peak_rss_mb:.1f}",
            f"{relay.peak_rss_mb:.1f}",
            ratio_cell(relay.peak_rss_mb, ref.peak_rss_mb),
            pair(ref.peak_rss_mb, relay.peak_rss_mb, ".1f"),
            pair(ref.cpu_us_per_event, relay.cpu_us_per_event, ".0f"),
        )
    )
    found.rows.append(
        value_row(
            "  calls open at once at the target", ref.peak_open_calls, relay.peak_open_calls, "d"
        )
    )
    spec = outcome.scenario.spec
    rate = spec.prefetch * 1000 / spec.delay_ms
    bound = f"{spec.prefetch} / {spec.delay_ms / 1000:g} s = {rate:.0f}/s"
    found.rows.append(throughput_row(f"  events/s (bound: {bound})", ref, relay))
    ok = relay.peak_rss_mb <= RSS_LIMIT_MB
    found.verdicts.append(
        f"3 memory: actionrelay peak RSS {relay.peak_rss_mb:.1f} MB with "
        f"{relay.peak_open_calls} calls open at once (target <= {RSS_LIMIT_MB:.0f} MB): {met(ok)}; "
        f"reference {ref.peak_rss_mb:.1f} MB with {ref.peak_open_calls} open"
    )


def soak(outcome: Outcome, _: dict[str, Outcome], found: Findings) -> None:
    ref, relay = outcome.median("reference"), outcome.median("actionrelay")
    found.rows.append(throughput_row(f"{outcome.scenario.title}: events/s", ref, relay))
    for mark in outcome.scenario.spec.rss_marks:
        label = f"  RSS MB at {mark:,} results"
        found.rows.append(
            value_row(label, ref.rss_at_mb.get(mark), relay.rss_at_mb.get(mark), ".1f")
        )
    first, last = outcome.scenario.spec.rss_marks[0], outcome.scenario.spec.rss_marks[-1]
    growth = {s.pipeline: s.rss_at_mb[last] - s.rss_at_mb[first] for s in (ref, relay)}
    label = f"  RSS growth MB, {first:,} -> {last:,}"
    found.rows.append(value_row(label, growth["reference"], growth["actionrelay"], "+.1f"))
    ok = growth["actionrelay"] <= SOAK_GROWTH_MB
    marks = outcome.scenario.spec.rss_marks
    sizes = " / ".join(f"{relay.rss_at_mb[m]:.1f}" for m in marks)
    found.verdicts.append(
        f"4 soak: actionrelay RSS {sizes} MB at {' / '.join(f'{m:,}' for m in marks)} "
        f"results, growth {growth['actionrelay']:+.1f} MB (no growth: <= {SOAK_GROWTH_MB:g} MB): "
        f"{met(ok)}; reference {growth['reference']:+.1f} MB"
    )


def scale(outcome: Outcome, _: dict[str, Outcome], found: Findings) -> None:
    title = outcome.scenario.title
    one = {p: outcome.median(p, 1) for p in ("reference", "actionrelay")}
    two = {p: outcome.median(p, 2) for p in ("reference", "actionrelay")}
    found.rows.append(Row(title))
    found.rows.append(throughput_row("  1 process, events/s", one["reference"], one["actionrelay"]))
    found.rows.append(
        throughput_row("  2 processes on one queue, events/s", two["reference"], two["actionrelay"])
    )
    factor = {p: two[p].events_per_s / one[p].events_per_s for p in one}
    found.rows.append(
        value_row("  2 processes / 1", factor["reference"], factor["actionrelay"], ".2f")
    )
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
        f"reference {factor['reference']:.2f}; {limit}"
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
