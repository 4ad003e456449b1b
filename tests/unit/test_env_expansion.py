"""``${env:NAME}`` references in action files."""

from __future__ import annotations

from pathlib import Path

import pytest

from actionrelay.catalog import expand_env, load_action
from actionrelay.errors import CatalogError


@pytest.mark.parametrize(
    ("raw", "expanded"),
    [
        ("${env:HOST}/v1", "https://api.test/v1"),
        ("${env:UNSET:-http://localhost:8080}/x", "http://localhost:8080/x"),
        ("${env:HOST:-ignored}", "https://api.test"),
        ({"a": ["${env:TOKEN}", 3]}, {"a": ["t0k", 3]}),
        ("no reference", "no reference"),
        ("$HOST and ${HOST}", "$HOST and ${HOST}"),
    ],
)
def test_expand_env(raw: object, expanded: object) -> None:
    missing: list[str] = []
    env = {"HOST": "https://api.test", "TOKEN": "t0k"}
    assert expand_env(raw, env, missing) == expanded
    assert missing == []


def test_missing_variable_names_file_and_variable(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("name: a\nurl: ${env:NOPE_URL}/x\n")
    with pytest.raises(CatalogError) as caught:
        load_action(path, environ={})
    assert str(path) in str(caught.value)
    assert "NOPE_URL" in str(caught.value)
