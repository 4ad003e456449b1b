"""Installing a provider recipe against local servers, and checking a request received
against the provider's own OpenAPI description (``tests/schemas/providers/``)."""

from __future__ import annotations

import base64
import warnings
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from tests.integration.support import Received, WorkerHarness

ROOT = Path(__file__).resolve().parents[3]
RECIPES = ROOT / "examples" / "providers"
DESCRIPTIONS = ROOT / "tests" / "schemas" / "providers"


def install(harness: WorkerHarness, name: str, replacements: dict[str, str]) -> None:
    """Copy a recipe into the test's actions directory, its addresses pointed at local
    servers (``{"https://api.twilio.com": api.url}``); nothing else is changed."""
    text = (RECIPES / f"{name}.yaml").read_text()
    for old, new in replacements.items():
        assert old in text, f"{name}.yaml has no {old!r}"
        text = text.replace(old, new)
    (harness.settings.actions_dir / f"{name}.yaml").write_text(text)


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@dataclass
class AsSentToProvider:
    """A request a local server received, as if the provider's own host had received it
    (openapi-core's Request protocol)."""

    host_url: str
    path: str
    method: str
    content_type: str
    body: bytes | None
    parameters: RequestParameters = field(default_factory=RequestParameters)

    @classmethod
    def of(cls, received: Received, host_url: str) -> AsSentToProvider:
        headers = Headers(list(received.headers.items()))
        return cls(
            host_url=host_url,
            path=received.path,
            method=received.method.lower(),
            content_type=headers.get("Content-Type", "").lower(),
            body=received.body or None,
            parameters=RequestParameters(query=ImmutableMultiDict(received.query), header=headers),
        )

    @property
    def full_url_pattern(self) -> str:
        return self.host_url + self.path


@cache
def description(file_name: str) -> OpenAPI:
    return OpenAPI.from_file_path(str(DESCRIPTIONS / file_name))


def _explain(error: BaseException) -> list[str]:
    """An openapi-core error and the schema errors under it, one line each."""
    lines = [f"{type(error).__name__}: {error}"]
    for schema_error in getattr(error, "schema_errors", ()) or ():
        where = "/".join(map(str, schema_error.absolute_path))
        lines.append(f"  {where}: {schema_error.message}")
    if error.__cause__ is not None:
        lines += _explain(error.__cause__)
    return lines


def described(file_name: str, host_url: str, received: Received) -> tuple[list[str], Any]:
    """(what the description refuses in the request, its body as the description reads it)."""
    request = AsSentToProvider.of(received, host_url)
    with warnings.catch_warnings():
        # openapi-core checks http and apiKey schemes, not oauth2 (FCM): the FCM test
        # checks the bearer token itself.
        warnings.filterwarnings("ignore", "Unsupported scheme type", UserWarning)
        result = description(file_name).unmarshal_request(request)
    problems = [line for error in result.errors for line in _explain(error)]
    return problems, result.body
