"""docs/asyncapi.yaml is generated from the models and must stay current."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from actionrelay.asyncapi import document, render

DOC = Path(__file__).parents[2] / "docs" / "asyncapi.yaml"


def test_document_in_docs_is_up_to_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTIONRELAY_REQUEST_QUEUE", "not.the.default")  # must not leak in
    assert DOC.read_text() == render(), "run: actionrelay asyncapi > docs/asyncapi.yaml"


def test_every_reference_resolves() -> None:
    doc = document()

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    for ref in refs(doc):
        target: object = doc
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(target, dict)
            assert part in target, f"unresolved {ref}"
            target = target[part]


def test_schemas_describe_the_contract() -> None:
    schemas = yaml.safe_load(render())["components"]["schemas"]
    assert schemas["StepEvent"]["required"] == ["event_id", "action"]
    status = schemas["ActionResult"]["properties"]["status"]
    assert set(status["enum"]) == {"success", "error", "timedout", "invalid", "capped"}
