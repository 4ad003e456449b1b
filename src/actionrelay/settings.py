"""Worker settings, read from ``ACTIONRELAY_*`` environment variables by the CLI."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from yarl import URL


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Settings(BaseSettings):
    """Every option of ``actionrelay run``; each has an ``ACTIONRELAY_`` variable."""

    model_config = SettingsConfigDict(env_prefix="ACTIONRELAY_", frozen=True)

    amqp_url: str = Field(
        default="amqp://guest:guest@localhost:5672/",
        description="RabbitMQ URL; for a cluster, its nodes' URLs separated by commas.",
    )
    actions_dir: Path = Field(default=Path("actions"), description="Action files directory.")
    request_queue: str = Field(default="actionrelay.requests", description="Step events queue.")
    queue_type: Literal["quorum", "classic"] = Field(
        default="quorum",
        description="Type of the request, holding and dead-letter queues, and of the results "
        "queue when it is created.",
    )
    delivery_limit: int = Field(
        default=20,
        ge=1,
        description="Deliveries of one message before the broker dead-letters it (quorum).",
    )
    results_exchange: str = Field(
        default="actionrelay.results", description="Topic exchange of result events."
    )
    results_queue: str = Field(
        default="actionrelay.results", description="Durable queue bound to every result."
    )
    dead_letter_queue: str = Field(default="actionrelay.dead", description="Dead letters.")
    delay_prefix: str = Field(
        default="actionrelay.delay",
        description="Names of the delay ladder's queues and exchanges, shared by every "
        "request queue of the virtual host.",
    )
    prefetch: int = Field(default=256, ge=1, le=65535, description="Events in flight at once.")
    max_connections: int = Field(
        default=0, ge=0, description="HTTP connections in the pool, 0 = as many as needed."
    )
    shutdown_grace_seconds: float = Field(
        default=25.0, ge=0, description="On SIGTERM, how long in-flight calls may finish."
    )
    worker_id: str = Field(
        default_factory=_default_worker_id,
        description="Names this replica in logs and dead letters.",
    )
    allow_http_hosts: str = Field(
        default="",
        description="Hosts that may be called over plain http, comma-separated; * for any.",
    )
    allow_private_networks: str = Field(
        default="",
        description="Loopback/private/link-local ranges that may be called, e.g. "
        "127.0.0.0/8,10.0.0.0/8; * for any.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis for endpoint limits shared by all replicas (redis://host:6379/0); "
        "unset = limits apply per worker.",
    )
    breaker_failures: int = Field(
        default=50, ge=1, description="Consecutive connection errors/5xx that pause an endpoint."
    )
    breaker_cool_down_seconds: float = Field(
        default=30.0, gt=0, description="How long a paused endpoint waits before a probe call."
    )
    reload_interval_seconds: float = Field(
        default=2.0, ge=0, description="How often the actions directory is checked (0 = off)."
    )
    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP traces URL (http://collector:4318/v1/traces); spans around "
        "each call. Needs the otel extra.",
    )
    http_host: str = Field(
        default="0.0.0.0",  # noqa: S104 - probes and metrics are scraped from outside the pod
        description="Address of /healthz, /readyz, /metrics and the catalog API (/api/v1).",
    )
    http_port: int = Field(
        default=9464,
        ge=0,
        le=65535,
        description="Port of /healthz, /readyz, /metrics and the catalog API (0 = off).",
    )
    event_loop: Literal["auto", "uvloop", "asyncio"] = Field(
        default="auto", description="auto = uvloop when installed, else asyncio's own loop."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Lowest level of the log lines written to stderr."
    )
    log_format: Literal["json", "console"] = Field(
        default="json", description="json: one JSON object per line; console: for humans."
    )

    @field_validator("amqp_url")
    @classmethod
    def _amqp_urls(cls, value: str) -> str:
        split_urls(value)
        return value

    @property
    def amqp_urls(self) -> list[str]:
        return split_urls(self.amqp_url)


def split_urls(value: str) -> list[str]:
    """The URLs of ``ACTIONRELAY_AMQP_URL``: one, or several separated by commas.

    A comma inside a password is written %2C, as any reserved character in a URL.
    """
    urls = [part.strip() for part in value.split(",") if part.strip()]
    if not urls:
        raise ValueError("no RabbitMQ URL given")
    for url in urls:
        parsed = URL(url)
        if parsed.scheme not in ("amqp", "amqps"):
            shown = parsed.with_password("***") if parsed.password else parsed
            raise ValueError(f"{shown} is not an amqp:// or amqps:// URL")
    return urls


class ConsoleSettings(BaseSettings):
    """Options of ``actionrelay console`` only; it also reads the worker's ``Settings``
    (broker, queues, actions directory, egress policy)."""

    model_config = SettingsConfigDict(env_prefix="ACTIONRELAY_", frozen=True)

    console_host: str = Field(
        default="127.0.0.1",
        description="Address the console listens on; beyond loopback it needs a token.",
    )
    console_port: int = Field(default=8420, ge=0, le=65535, description="Console port.")
    console_token: SecretStr | None = Field(
        default=None,
        description="Token for every page and API call when bound beyond loopback, and for "
        "every write (test request, replay, purge) always.",
    )
    prometheus_url: str | None = Field(
        default=None,
        description="Prometheus that scrapes the workers (http://prometheus:9090); status "
        "comes from it when set.",
    )
    console_metrics_urls: str = Field(
        default="",
        description="Workers' /metrics URLs, comma-separated, read when no Prometheus is set.",
    )
    console_window_seconds: float = Field(
        default=300.0, gt=0, description="Status figures cover this many past seconds."
    )

    @property
    def metrics_urls(self) -> list[str]:
        return [url.strip() for url in self.console_metrics_urls.split(",") if url.strip()]
