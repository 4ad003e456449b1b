"""What every console page shares: settings, the catalog in force, templates, the guard.

Pages are rendered on the server by Jinja2 with autoescaping: whatever comes from
an event, a dead letter or an API answer is shown as text. Credentials are masked
with the catalog's secrets before anything is rendered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import orjson
from aiohttp import web

from actionrelay.catalog.loader import Catalog
from actionrelay.console.security import Guard
from actionrelay.console.status import MetricsReader, PrometheusReader, Status
from actionrelay.core.secret import Redactor
from actionrelay.limits.endpoint import EndpointTable
from actionrelay.settings import ConsoleSettings, Settings

HERE = Path(__file__).parent
CONSOLE: web.AppKey[Console] = web.AppKey("console")


def pretty(value: Any) -> str:
    """JSON for a <pre>: escaped by the template like any other text."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()


@dataclass
class Console:
    """Everything a page handler needs; the catalog follows hot reload."""

    settings: Settings
    options: ConsoleSettings
    catalog: Catalog
    endpoints: EndpointTable
    guard: Guard
    templates: jinja2.Environment = field(init=False)
    reader: MetricsReader | PrometheusReader = field(init=False)

    def __post_init__(self) -> None:
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.templates.filters["pretty"] = pretty
        window = self.options.console_window_seconds
        if self.options.prometheus_url:
            self.reader = PrometheusReader(self.options.prometheus_url, window)
        else:
            self.reader = MetricsReader(self.options.metrics_urls, window)

    @property
    def redactor(self) -> Redactor:
        return Redactor(self.catalog.secrets)

    def replace(self, catalog: Catalog, endpoints: EndpointTable) -> None:
        self.catalog, self.endpoints = catalog, endpoints

    def render(self, request: web.Request, template: str, **values: Any) -> web.Response:
        page = self.templates.get_template(template).render(
            csrf=self.guard.csrf(request),
            logged_in=self.guard.authenticated(request),
            writes=self.guard.token is not None,
            **values,
        )
        return web.Response(text=page, content_type="text/html")

    async def status(self) -> Status:
        return await self.reader.status()


def console_of(request: web.Request) -> Console:
    return request.app[CONSOLE]
