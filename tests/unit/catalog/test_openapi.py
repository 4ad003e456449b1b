"""docs/openapi.yaml: generated, current, valid OpenAPI 3.1, and describing what the
catalog API really answers (the answers themselves: tests/integration/catalog/test_api.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from openapi_spec_validator import validate

from actionrelay.catalog.api import action_document, endpoint_url, etag_of
from actionrelay.catalog.loader import load_catalog
from actionrelay.catalog.openapi import document
from actionrelay.cli.openapi import render
from actionrelay.core.secret import Redactor
from actionrelay.limits.endpoint import EndpointConfig, EndpointTable

ROOT = Path(__file__).parents[3]
DOC = ROOT / "docs" / "openapi.yaml"
CATALOG = load_catalog(ROOT / "examples" / "actions", environ={})


def test_document_in_docs_is_up_to_date() -> None:
    assert DOC.read_text() == render(), "run: actionrelay openapi > docs/openapi.yaml"


def test_the_document_is_valid_openapi_3_1() -> None:
    doc = yaml.safe_load(DOC.read_text())
    assert doc["openapi"] == "3.1.0"
    validate(doc)
    doc["paths"]["/api/v1/actions"]["get"]["responses"]["200"].pop("description")
    with pytest.raises(Exception, match="description"):  # the check can fail
        validate(doc)


def schema_problems(name: str, instance: Any) -> list[str]:
    """Problems of ``instance`` against components/schemas/``name`` of the document."""
    root = {"$ref": f"#/components/schemas/{name}", **document()}
    validator = jsonschema.Draft202012Validator(root)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]


LIMITS = EndpointTable(
    [
        EndpointConfig.model_validate(
            {"url": "http://localhost:8080/sms/*", "capping": {"max_calls": 5, "period_ms": 1000}}
        )
    ]
)


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_every_example_action_is_an_action_of_the_document(name: str) -> None:
    shown = action_document(CATALOG[name], LIMITS, Redactor(CATALOG.secrets))
    assert schema_problems("Action", shown) == []
    assert schema_problems("Action", {**shown, "method": "TRACE"}) != []


def test_nothing_secret_is_shown() -> None:
    redactor = Redactor(CATALOG.secrets)
    shown = str([action_document(CATALOG[n], LIMITS, redactor) for n in CATALOG])
    for secret in CATALOG.secrets:
        assert secret not in shown
    assert "demo-client-secret" not in shown


def test_limits_host_and_response_fields() -> None:
    sms = action_document(CATALOG["sendSms"], LIMITS, Redactor())
    assert sms["host"] == "localhost"
    assert sms["url"] == "http://localhost:8080/sms/v1/{country}/messages"
    assert sms["limits"]["capping"] == {"max_calls": 5, "period_ms": 1000}
    assert sms["response_fields"] == ["messageId", "status"]
    assert sms["auth"] == {"type": "none"}
    assert action_document(CATALOG["upsertContact"], LIMITS, Redactor())["limits"] is None
    assert CATALOG["sendSmsOAuth2"].auth.type == "oauth2_client_credentials"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@api.example.com/v1", "https://api.example.com/v1"),
        ("https://api.example.com:8443", "https://api.example.com:8443"),
    ],
)
def test_the_url_never_carries_user_info(url: str, shown: str) -> None:
    action = CATALOG["upsertContact"].model_copy(update={"url": url, "path": None})
    assert str(endpoint_url(action)) == shown


def test_an_etag_changes_with_the_body() -> None:
    assert etag_of(b"{}") == etag_of(b"{}")
    assert etag_of(b"{}") != etag_of(b"[]")
    assert etag_of(b"{}").startswith('"')
