"""Endpoint configurations (``endpoints.yaml``): capping, throttling, connections, breaker.

Pure, apart from reading the file. An entry applies to every action whose
request URL matches its pattern and method, whatever the journey or action.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from yarl import URL

from actionrelay.core.errors import CatalogError

ENDPOINT_FILES = ("endpoints.yaml", "endpoints.yml")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class Capping(BaseModel):
    """At most ``max_calls`` per ``period_ms`` (sliding window); over it: status capped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_calls: int = Field(ge=1)
    period_ms: int = Field(ge=1, le=86_400_000)


class Throttling(BaseModel):
    """At most ``max_per_second``; calls over it wait their turn, up to ``max_wait_seconds``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The throttle's window is one second: under one call per second no slot would fit.
    max_per_second: float = Field(ge=1, le=100_000)
    max_wait_seconds: float = Field(default=21_600, gt=0, le=21_600)


class Breaker(BaseModel):
    """Pause an endpoint after ``failures`` consecutive connection errors or 5xx."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    failures: int = Field(default=50, ge=1)
    cool_down_seconds: float = Field(default=30.0, gt=0, le=3600)


class EndpointConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="scheme://host[:port]/path-prefix; * only in the path.")
    methods: list[str] = Field(default_factory=lambda: list(METHODS))
    capping: Capping | None = None
    throttling: Throttling | None = None
    max_connections: int | None = Field(default=None, ge=1, le=400)
    breaker: Breaker = Field(default_factory=Breaker)

    @field_validator("url")
    @classmethod
    def _pattern(cls, value: str) -> str:
        url = URL(value)
        if url.scheme not in ("http", "https") or not url.host or "*" in url.host:
            raise ValueError("must be http(s)://host[:port]/path with * only in the path")
        if "*" in url.path.rstrip("*"):
            raise ValueError("* may only end the path (a prefix match)")
        return value

    @field_validator("methods")
    @classmethod
    def _methods(cls, value: list[str]) -> list[str]:
        upper = [m.upper() for m in value]
        unknown = sorted(set(upper) - set(METHODS))
        if unknown:
            raise ValueError(f"unknown methods {unknown}; use {', '.join(METHODS)}")
        return upper

    @property
    def key(self) -> str:
        """A short stable id: names the Redis keys and the holding queue."""
        digest = hashlib.sha256(f"{self.url} {sorted(self.methods)}".encode()).hexdigest()
        return f"{URL(self.url).host}-{digest[:10]}"

    def matches(self, method: str, url: URL) -> bool:
        pattern = URL(self.url)
        if method not in self.methods or (url.scheme, url.host, url.port) != (
            pattern.scheme,
            pattern.host,
            pattern.port,
        ):
            return False
        prefix = pattern.path
        if prefix.endswith("*"):
            return url.path.startswith(prefix[:-1])
        return url.path == prefix or url.path.startswith(prefix.rstrip("/") + "/")


class EndpointTable:
    """Finds the configuration of a request's endpoint: the first matching entry."""

    def __init__(self, entries: list[EndpointConfig]) -> None:
        self.entries = entries

    def find(self, method: str, url: URL) -> EndpointConfig | None:
        return next((e for e in self.entries if e.matches(method, url)), None)


def load_endpoints(actions_dir: Path) -> EndpointTable:
    """``endpoints.yaml`` beside the actions, or every file in an ``endpoints/`` directory."""
    files = [actions_dir / name for name in ENDPOINT_FILES if (actions_dir / name).is_file()]
    folder = actions_dir / "endpoints"
    if folder.is_dir():
        files += sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))
    entries: list[EndpointConfig] = []
    problems: list[str] = []
    if files:
        import yaml  # imported here, like the files it reads: most workers have none
    for path in files:
        try:
            raw: Any = yaml.safe_load(path.read_text()) or []
        except (OSError, yaml.YAMLError) as exc:
            problems.append(f"{path}: cannot be read: {exc}")
            continue
        if not isinstance(raw, list):
            problems.append(f"{path}: must be a list of endpoint entries")
            continue
        for index, item in enumerate(raw):
            try:
                entries.append(EndpointConfig.model_validate(item))
            except ValidationError as exc:
                for error in exc.errors():
                    where = ".".join(str(p) for p in error["loc"]) or "(entry)"
                    message = error["msg"].removeprefix("Value error, ")
                    problems.append(f"{path}: [{index}].{where}: {message}")
    if problems:
        raise CatalogError(problems)
    return EndpointTable(entries)
