"""Loading a directory of action files, and the message a bad one stops startup with."""

from __future__ import annotations

from pathlib import Path

import pytest

from actionrelay.catalog.loader import load_catalog
from actionrelay.core.errors import CatalogError, ConfigError
from actionrelay.core.payload import build_request
from tests.unit.support import sent_json

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "actions"

SMS_YAML = """\
name: sendSms
version: 3
url: https://sms.example.com/v1/messages
path: "/{country}/send"
headers:
  X-Tenant: {$var: tenant, type: string}
body:
  to: {$var: phone, type: string}
timeout_seconds: 10
"""
TIER_JSON = """\
{"name": "getTier", "method": "GET", "url": "https://crm.example.com/tiers",
 "path": "/{memberId}", "response": {"fields": ["tier"]}}
"""


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def _problems(directory: Path) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        load_catalog(directory)
    assert isinstance(caught.value, ConfigError)
    return caught.value.problems


def test_yaml_and_json_files_load(tmp_path: Path) -> None:
    sms = _write(tmp_path, "sms.yaml", SMS_YAML)
    tier = _write(tmp_path, "tier.json", TIER_JSON)
    _write(tmp_path, "ping.yml", "name: ping\nurl: https://ping.example.com\n")
    _write(tmp_path, "README.md", "not an action")
    _write(tmp_path, "notes.txt", "name: [")
    catalog = load_catalog(tmp_path)
    assert sorted(catalog) == ["getTier", "ping", "sendSms"]
    assert catalog["sendSms"].version == 3
    assert catalog["sendSms"].timeout_seconds == 10
    assert catalog["getTier"].method == "GET"
    assert catalog.source("sendSms") == sms
    assert catalog.source("getTier") == tier


def test_an_empty_directory_is_an_empty_catalog(tmp_path: Path) -> None:
    assert len(load_catalog(tmp_path)) == 0


BAD_FILES: list[tuple[str, str, str]] = [
    (
        "a.yaml",
        SMS_YAML.replace("timeout_seconds: 10", "timeout_seconds: 99"),
        "timeout_seconds: Input should be less than or equal to 30",
    ),
    (
        "a.yaml",
        SMS_YAML.replace("name: sendSms", "name: send-sms"),
        "name: String should match pattern '^[A-Za-z0-9_]{1,30}$'",
    ),
    ("a.yaml", SMS_YAML + "timout: 5\n", "timout: Extra inputs are not permitted"),
    (
        "a.yaml",
        SMS_YAML.replace("type: string}\nbody", "type: strin}\nbody"),
        "(action): headers.X-Tenant: type: Input should be 'string'",
    ),
    (
        "a.yaml",
        SMS_YAML.replace("to: {$var: phone, type: string}", "to.number: 1"),
        "(action): body: field name 'to.number' is not allowed",
    ),
    (
        "a.yaml",
        SMS_YAML.replace("X-Tenant", "Content-Type"),
        "headers: header Content-Type is set by actionrelay and cannot be defined",
    ),
    ("a.json", TIER_JSON.replace('"GET"', '"GRAB"'), "method: Input should be 'GET'"),
    (
        "a.json",
        TIER_JSON.replace('"https://crm', '"crm'),
        "url: must be an absolute http:// or https:// URL with a host",
    ),
    (
        "a.yaml",
        SMS_YAML + "retry: {schedule_seconds: [1, 200000]}\n",
        "retry.schedule_seconds: delays must be at most 104858 s (29 h)",
    ),
    ("a.yaml", "name: x\n", "url: Field required"),
    ("a.yaml", "name: [unclosed\n", "cannot be read"),
    ("a.json", '{"name": "x",}', "cannot be read"),
    ("a.yaml", "- name: x\n- name: y\n", "must hold one action (a mapping), not list"),
    ("a.yaml", "just a string\n", "must hold one action (a mapping), not str"),
    ("a.yaml", "", "must hold one action (a mapping), not NoneType"),
    ("a.json", "[]", "must hold one action (a mapping), not list"),
]


@pytest.mark.parametrize(("filename", "text", "problem"), BAD_FILES)
def test_a_bad_file_is_reported_with_file_field_and_problem(
    tmp_path: Path, filename: str, text: str, problem: str
) -> None:
    path = _write(tmp_path, filename, text)
    [line] = _problems(tmp_path)
    assert line.startswith(f"{path}: ")
    assert problem in line


def test_the_error_message_lists_every_problem_of_every_file(tmp_path: Path) -> None:
    a = _write(tmp_path, "a.yaml", "name: a-b\nurl: nowhere\n")
    b = _write(tmp_path, "b.json", "[]")
    _write(tmp_path, "c.yaml", SMS_YAML)
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path)
    message = str(caught.value)
    assert message.startswith("invalid action catalog:\n")
    assert f"{a}: name: String should match pattern" in message
    assert f"{a}: url: must be an absolute http://" in message
    assert f"{b}: must hold one action (a mapping), not list" in message
    assert len(caught.value.problems) == 3


def test_a_name_defined_twice_is_reported_with_both_files(tmp_path: Path) -> None:
    first = _write(tmp_path, "a.yaml", SMS_YAML)
    second = _write(tmp_path, "b.json", '{"name": "sendSms", "url": "https://x.example.com"}')
    assert _problems(tmp_path) == [f"{second}: name: action sendSms is already defined in {first}"]


def test_a_missing_directory_is_reported(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    assert _problems(missing) == [f"{missing}: actions directory does not exist"]


def test_a_file_in_place_of_the_directory_is_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, "actions", SMS_YAML)
    assert _problems(path) == [f"{path}: actions directory does not exist"]


def test_the_example_actions_load() -> None:
    catalog = load_catalog(EXAMPLES)
    assert sorted(catalog) == [
        "addPointsCustomAuth",
        "createNoteBasic",
        "getForecastApiKeyQuery",
        "getLoyaltyTier",
        "openTicketBearer",
        "sendPushApiKey",
        "sendSms",
        "sendSmsOAuth2",
        "upsertContact",
    ]
    modes = {catalog[name].auth.type for name in catalog}
    assert modes == {"none", "basic", "api_key", "bearer", "oauth2_client_credentials", "custom"}


def test_the_documented_step_event_builds_the_documented_request() -> None:
    action = load_catalog(EXAMPLES)["sendSms"]
    params = {"phone": "+33612345678", "text": "Hi", "tenant": "acme", "country": "fr"}
    request = build_request(action, params, "e-9f2")
    assert request.method == "POST"
    assert str(request.url) == "http://localhost:8080/sms/v1/fr/messages?source=journeys"
    assert request.headers["X-Tenant"] == "acme"
    assert request.headers["X-Api-Version"] == "2"
    assert request.headers["Idempotency-Key"] == "e-9f2"
    assert sent_json(request) == {
        "to": "+33612345678",
        "text": "Hi",
        "meta": {"channel": "sms", "priority": None},
    }
