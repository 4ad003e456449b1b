"""Dead-letter triage: which dead letters a command touches, and counts by cause. Pure."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from actionrelay.core.deadletter import DeadLetter, parse_time

NO_STATUS = "-"


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead letters a command touches; empty criteria match everything (AND between)."""

    actions: frozenset[str] = frozenset()
    error_types: frozenset[str] = frozenset()
    http_statuses: frozenset[int] = frozenset()
    event_ids: frozenset[str] = frozenset()
    since: datetime | None = None

    def matches(self, letter: DeadLetter) -> bool:
        checks = (
            not self.actions or letter.action in self.actions,
            not self.error_types or letter.error_type in self.error_types,
            not self.http_statuses or letter.http_status in self.http_statuses,
            not self.event_ids or letter.event_id in self.event_ids,
            self.since is None or (letter.failed_at is not None and letter.failed_at >= self.since),
        )
        return all(checks)

    def describe(self) -> str:
        parts = [
            f"{name} in {', '.join(sorted(map(str, values)))}"
            for name, values in (
                ("action", self.actions),
                ("error type", self.error_types),
                ("http status", self.http_statuses),
                ("event id", self.event_ids),
            )
            if values
        ]
        if self.since is not None:
            parts.append(f"failed since {self.since.isoformat()}")
        return " and ".join(parts) or "all dead letters"


RELATIVE = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_since(text: str, now: datetime) -> datetime:
    """``2026-11-27T12:00:00Z``, ``2026-11-27`` (UTC when no zone) or a span ago: ``90s``,
    ``30m``, ``1h``, ``2d``, ``1w``, ``1h30m``."""
    text = text.strip()
    match = RELATIVE.fullmatch(text)
    if match and text:
        weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
        span = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
        return now - span
    parsed = parse_time(text)
    if parsed is None:
        raise ValueError(
            f"{text!r} is neither ISO 8601 (2026-11-27T12:00:00Z) nor a span like 30m, 1h, 2d"
        )
    return parsed


@dataclass
class DeadLetterStats:
    """Counts by action, by error type and by HTTP status (``-`` when there was none)."""

    total: int = 0
    by_action: Counter[str] = field(default_factory=Counter)
    by_error_type: Counter[str] = field(default_factory=Counter)
    by_http_status: Counter[str] = field(default_factory=Counter)
    by_cause: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def add(self, letter: DeadLetter) -> None:
        action = letter.action or NO_STATUS
        status = str(letter.http_status) if letter.http_status is not None else NO_STATUS
        self.total += 1
        self.by_action[action] += 1
        self.by_error_type[letter.error_type] += 1
        self.by_http_status[status] += 1
        self.by_cause[(action, letter.error_type, status)] += 1

    def as_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_action": dict(self.by_action.most_common()),
            "by_error_type": dict(self.by_error_type.most_common()),
            "by_http_status": dict(self.by_http_status.most_common()),
            "by_cause": [
                {"action": a, "error_type": e, "http_status": s, "count": n}
                for (a, e, s), n in self.by_cause.most_common()
            ],
        }
