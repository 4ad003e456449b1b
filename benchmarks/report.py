"""Everything the benchmark prints or saves: notes on the tree and load, tables, profiles."""

from __future__ import annotations

import hashlib
import os
import pstats
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, astuple, dataclass
from pathlib import Path
from typing import Any

import orjson

from measure import RunStats
from pipelines import HERE, RESULTS_DIR

# Own time in a profile, by who spends it: file path fragments, first match wins. Under
# uvloop the loop's C code (epoll, socket I/O) shows up as asyncio.runners.run's own time,
# so the event loop and the socket calls are one group, comparable across both loops.
PROFILE_GROUPS = (
    (("/aio_pika/", "/aiormq/", "/pamqp/"), "AMQP client (aio-pika, aiormq, pamqp)"),
    (
        ("/aiohttp/", "/yarl/", "/multidict/", "/aiohappyeyeballs/", "/propcache/"),
        "HTTP client (aiohttp, yarl, multidict)",
    ),
    (
        (
            "/asyncio/",
            "/uvloop/",
            "'uvloop.",
            "_asyncio.",
            "_contextvars.",
            "'_socket.",
            "'select.",
        ),
        "event loop and socket I/O (asyncio/uvloop, epoll, send/recv)",
    ),
    (("/actionrelay/",), "actionrelay's own code"),
    (("benchmarks/reference.py",), "reference.py's own code"),
    (("/faststream/", "/fast_depends/", "faststream_peer.py"), "FastStream (and fast-depends)"),
    (
        ("/pydantic", "pydantic_core.", "/structlog/", "/logging/"),
        "validation and logging (pydantic, structlog)",
    ),
    (("/prometheus_client/",), "metrics (prometheus_client)"),
    (("orjson",), "JSON (orjson)"),
)
SHOWN_SHARE = 0.5  # % of own time below which a group is folded into "everything else"


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(HERE.parent), *args], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else ""


def tree_note() -> str:
    """Which actionrelay was measured: the commit, whether src/ had local changes, and a
    fingerprint of src/ itself (commits that leave src/ alone keep it; edits change it)."""
    head = _git("rev-parse", "--short", "HEAD").strip()
    if not head:
        return "actionrelay outside git"
    tree = _git("rev-parse", "--short", "HEAD:src").strip()
    dirty = _git("status", "--porcelain", "src")
    if not dirty:
        return f"actionrelay at {head} (src {tree})"
    edits = hashlib.sha1((dirty + _git("diff", "HEAD", "--", "src")).encode()).hexdigest()[:7]
    return f"actionrelay at {head} + local changes (src {tree}+{edits})"


def src_of(note: str) -> str:
    """The src/ fingerprint of a tree_note: equal when the code measured was the same."""
    return note.rsplit("(src ", 1)[-1].rstrip(")")


def load_average() -> float:
    return os.getloadavg()[0]


def load_note() -> str:
    """Other work on the machine skews every number; say so up front."""
    load = load_average()
    busy = load > 0.5 * (os.cpu_count() or 1)
    return f"load average {load:.2f}" + (" (busy machine: numbers will be noisy)" if busy else "")


def median_stats(runs: list[RunStats]) -> RunStats:
    """The median run: medians of every figure, the maximum peak RSS, the minimum open calls."""

    def med(values: list[float]) -> float:
        return float(statistics.median(values))

    def med_opt(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return med(present) if present else None

    first = runs[0]
    return RunStats(
        pipeline=first.pipeline,
        processes=first.processes,
        events_per_s=med([r.events_per_s for r in runs]),
        cpu_us_per_event=med([r.cpu_us_per_event for r in runs]),
        peak_rss_mb=max(r.peak_rss_mb for r in runs),
        p50_ms=med_opt([r.p50_ms for r in runs]),
        p99_ms=med_opt([r.p99_ms for r in runs]),
        cpu_share={k: med([r.cpu_share.get(k, 0.0) for r in runs]) for k in first.cpu_share},
        rss_at_mb={k: med([r.rss_at_mb[k] for r in runs]) for k in first.rss_at_mb},
        peak_open_calls=min(r.peak_open_calls for r in runs),
        metrics_successes=first.metrics_successes,
        results=first.results,
    )


def cpu_share_note(stats: RunStats) -> str:
    shares = ", ".join(f"{role} {share:.0f} %" for role, share in stats.cpu_share.items())
    return f"{shares}; total {sum(stats.cpu_share.values()):.0f} % of {100 * cpu_count()} %"


def cpu_count() -> int:
    return os.cpu_count() or 1


# --- the single-scenario table (run.py without --all) ---------------------------------------

HEADER = (
    f"{'scenario':<28} {'pipeline':<13} {'events/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
    f"{'CPU µs/ev':>10} {'peak RSS MB':>12}"
)


def _opt(value: float | None, spec: str) -> str:
    """``value`` formatted, or a dash as wide as the spec's width when there is none."""
    if value is not None:
        return format(value, spec)
    width = spec.lstrip("<>^").split(".", 1)[0]
    return format("-", f">{width}") if width.isdigit() else "-"


def run_row(scenario: str, s: RunStats) -> str:
    return (
        f"{scenario:<28} {s.pipeline:<13} {s.events_per_s:>9.0f} {_opt(s.p50_ms, '>8.1f')} "
        f"{_opt(s.p99_ms, '>8.1f')} {s.cpu_us_per_event:>10.0f} {s.peak_rss_mb:>12.1f}"
    )


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def single_report(scenario: str, ref: RunStats, relay: RunStats) -> str:
    ratio_row = (
        f"{scenario:<28} {'ratio a/r':<13} {relay.events_per_s / ref.events_per_s:>9.2f} "
        f"{_opt(_ratio(relay.p50_ms, ref.p50_ms), '>8.2f')} "
        f"{_opt(_ratio(relay.p99_ms, ref.p99_ms), '>8.2f')} "
        f"{relay.cpu_us_per_event / ref.cpu_us_per_event:>10.2f} "
        f"{relay.peak_rss_mb / ref.peak_rss_mb:>12.2f}"
    )
    return "\n".join([HEADER, run_row(scenario, ref), run_row(scenario, relay), ratio_row])


# --- the suite table (run.py --all) -------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of the --all table; empty cells print as blanks."""

    scenario: str
    reference: str = ""
    faststream: str = ""
    actionrelay: str = ""
    ratio: str = ""
    ratio_faststream: str = ""
    rss: str = ""
    cpu: str = ""


SUITE_COLUMNS = (
    ("scenario", 50, "<"),
    ("bare loop", 10, ">"),
    ("FastStream", 10, ">"),
    ("actionrelay", 11, ">"),
    ("a/bare", 6, ">"),
    ("a/FS", 5, ">"),
    ("peak RSS MB b / F / a", 21, ">"),
    ("CPU µs/ev b / F / a", 19, ">"),
)


def suite_table(rows: list[Row]) -> str:
    def line(cells: tuple[str, ...]) -> str:
        return " ".join(
            format(cell, f"{align}{width}")
            for cell, (_, width, align) in zip(cells, SUITE_COLUMNS, strict=True)
        ).rstrip()

    header = line(tuple(name for name, _, _ in SUITE_COLUMNS))
    body = [line(tuple(astuple(r))) for r in rows]
    return "\n".join([header, "-" * len(header), *body])


def pair(ref: float | None, relay: float | None, spec: str) -> str:
    return f"{_opt(ref, spec)} / {_opt(relay, spec)}"


def triple(values: tuple[float | None, float | None, float | None], spec: str) -> str:
    return " / ".join(_opt(v, spec) for v in values)


def ratio_cell(relay: float | None, ref: float | None) -> str:
    return _opt(_ratio(relay, ref), ".2f")


# --- saving and profiles --------------------------------------------------------------------


def save(label: str, data: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{time.strftime('%Y%m%dT%H%M%S')}-{label}.json"
    path.write_bytes(
        orjson.dumps(
            {"tree": tree_note(), **data}, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
        )
    )
    return path


def runs_as_json(runs: list[RunStats]) -> list[dict[str, Any]]:
    return [asdict(r) for r in runs]


def print_profile(path: Path, top: int = 25) -> None:
    print(f"--- {path.name}: own time by package (cProfile inflates small calls)")
    stats = pstats.Stats(str(path), stream=sys.stdout)
    for group, share in profile_attribution(stats):
        print(f"  {share:5.1f} %  {group}")
    print(f"--- {path.name}: top {top} functions by own time")
    stats.sort_stats("tottime").print_stats(top)


def profile_attribution(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Share of own time (tottime) per group of PROFILE_GROUPS, largest first."""
    own: Counter[str] = Counter()
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _, function), (_, _, tottime, _, _) in raw.items():
        where = function if filename == "~" else filename
        own[_group(where)] += tottime
    total = sum(own.values()) or 1.0
    shares = [(group, 100 * t / total) for group, t in own.most_common()]
    shown = [(g, share) for g, share in shares if share >= SHOWN_SHARE]
    rest = sum(share for _, share in shares if share < SHOWN_SHARE)
    return [*shown, ("everything else", rest)] if rest else shown


def _group(where: str) -> str:
    for fragments, group in PROFILE_GROUPS:
        if any(fragment in where for fragment in fragments):
            return group
    if "/site-packages/" in where:
        return where.split("/site-packages/", 1)[1].split("/", 1)[0]
    if where.startswith("<"):
        return "other built-in functions (getattr, isinstance, ...)"
    return "other standard library (enum, contextlib, ...)"
