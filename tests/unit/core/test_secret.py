"""The Redactor: every secret masked wherever it appears."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote, urlencode

import orjson
import pytest
from yarl import URL

from actionrelay.core.secret import MASK, Redactor


@pytest.mark.parametrize(
    ("secrets", "text", "masked"),
    [
        (["hunter22"], "password=hunter22&again=hunter22", "password=***&again=***"),
        (["key-1", "tok-9"], "key-1 then tok-9", "*** then ***"),
        (["abc"], "abc is too short to mask", "abc is too short to mask"),
        ([], "nothing to mask", "nothing to mask"),
        (["s3cr3t"], "no secret here", "no secret here"),
    ],
)
def test_redactor_masks_every_occurrence(secrets: list[str], text: str, masked: str) -> None:
    assert Redactor(secrets).mask(text) == masked


def test_redactor_masks_a_secret_that_contains_another_whole() -> None:
    nested = [f"abcd{'x' * i}" for i in range(12)]  # each one inside the next
    redactor = Redactor(nested)
    assert redactor.mask(f"<{nested[-1]}>") == f"<{MASK}>"


def test_redactor_masks_nested_values_but_not_keys() -> None:
    redactor = Redactor(["tok-secret"])
    value = {"tok-secret": ["a tok-secret", ("tok-secret",), 3, None], "n": {"m": "tok-secret"}}

    assert redactor.mask_value(value) == {
        "tok-secret": ["a ***", ["***"], 3, None],
        "n": {"m": "***"},
    }


def test_redactor_learns_secrets_later_and_counts_them() -> None:
    redactor = Redactor()
    assert redactor.mask("tok-1234") == "tok-1234"
    redactor.add("tok-1234", "ab")
    assert redactor.mask("tok-1234") == MASK
    assert len(redactor) == 1


def test_redactor_is_a_structlog_processor() -> None:
    redactor = Redactor(["pw-123456"])
    event = {"event": "call failed: pw-123456", "headers": {"Authorization": "Basic pw-123456"}}

    assert redactor(None, "warning", event) == {
        "event": "call failed: ***",
        "headers": {"Authorization": "Basic ***"},
    }


AWKWARD_SECRET = 'k3y with/slash+plus&amp=eq%"quote\\é'


@pytest.mark.parametrize(
    "carried",
    [
        pytest.param(lambda s: s, id="as-is"),
        pytest.param(lambda s: str(URL("https://h.test/hooks") / s), id="url-path-segment"),
        pytest.param(lambda s: str(URL.build(scheme="https", host="h", path="/" + s)), id="path"),
        pytest.param(lambda s: str(URL("https://h.test/").with_query({"k": s})), id="query"),
        pytest.param(lambda s: urlencode({"api_secret": s}), id="form-body"),
        pytest.param(lambda s: orjson.dumps({"api_key": s}).decode(), id="json-body"),
        pytest.param(lambda s: quote(s, safe=""), id="percent-encoded"),
    ],
)
def test_a_secret_is_masked_in_every_encoding_a_request_gives_it(
    carried: Callable[[str], str],
) -> None:
    text = f"echo: {carried(AWKWARD_SECRET)} end"
    masked = Redactor([AWKWARD_SECRET]).mask(text)
    assert "***" in masked
    assert "k3y" not in masked


def test_a_constant_is_not_masked_because_a_secret_contains_it() -> None:
    redactor = Redactor(["s3cret-token-value"])
    assert redactor.mask("the token endpoint answered") == "the token endpoint answered"
