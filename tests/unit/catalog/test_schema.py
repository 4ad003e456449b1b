"""The params schema says what the worker checks: every example action, events it takes
and events it refuses as invalid (validation), through a real JSON Schema validator."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from actionrelay.catalog.loader import load_catalog
from actionrelay.catalog.schema import example_params, params_schema
from actionrelay.core.action import ActionDefinition
from actionrelay.core.errors import PayloadError
from actionrelay.core.payload import build_request
from tests.catalog_cases import CASES, EXAMPLES

CATALOG = load_catalog(EXAMPLES, environ={})


def worker_takes(action: ActionDefinition, params: dict[str, Any]) -> bool:
    try:
        build_request(action, params, "e-1")
    except PayloadError:
        return False
    return True


def schema_takes(action: ActionDefinition, params: dict[str, Any]) -> bool:
    validator = jsonschema.Draft202012Validator(
        params_schema(action), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return validator.is_valid(params)


@pytest.mark.parametrize(("name", "params", "taken"), CASES)
def test_the_schema_and_the_worker_agree(name: str, params: dict[str, Any], taken: bool) -> None:
    action = CATALOG[name]
    assert worker_takes(action, params) is taken, "the case itself is wrong"
    assert schema_takes(action, params) is taken


def test_every_example_action_has_cases_both_ways() -> None:
    assert {name for name, _, taken in CASES if taken} == set(CATALOG)
    assert {name for name, _, taken in CASES if not taken} == set(CATALOG)


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_every_schema_is_valid_draft_2020_12(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(params_schema(CATALOG[name]))


def test_types_optional_nullable_and_lists_are_spelled_out() -> None:
    schema = params_schema(CATALOG["upsertContact"])
    properties = schema["properties"]
    assert set(schema["required"]) == {"contactId", "email", "optIn"}
    assert properties["lastPurchase"]["type"] == ["string", "null"]
    assert properties["lastPurchase"]["format"] == "date-time"
    assert properties["birthday"]["format"] == "date"
    assert properties["score"]["type"] == "number"
    assert properties["orders"] == {
        "type": "array",
        "items": {"type": ["object", "null"]},
        "x-actionrelay-type": "listObject",
    }
    assert properties["contactId"]["type"] == ["string", "integer"]
    sms = params_schema(CATALOG["sendSms"])["properties"]
    assert sms["tenant"]["pattern"].startswith("^[\\t")
    assert sms["priority"]["type"] == ["integer", "null"]


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_the_example_params_fit_the_action(name: str) -> None:
    action = CATALOG[name]
    params = example_params(action)
    assert set(params) == set(action.variables)
    assert worker_takes(action, params)
    assert schema_takes(action, params)
