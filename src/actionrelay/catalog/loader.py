"""The action catalog: a directory of YAML or JSON files, one action each."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import ValidationError

from actionrelay.core.action import ActionDefinition
from actionrelay.core.auth import secret_values
from actionrelay.core.errors import CatalogError
from actionrelay.limits.endpoint import ENDPOINT_FILES

SUFFIXES = (".yaml", ".yml", ".json")


class Catalog(Mapping[str, ActionDefinition]):
    """Actions by name, with the file each came from."""

    def __init__(
        self, actions: Mapping[str, tuple[ActionDefinition, Path]], secrets: Iterable[str] = ()
    ) -> None:
        self.secrets = frozenset(secrets)
        self._actions = {name: action for name, (action, _) in actions.items()}
        self._sources = {name: source for name, (_, source) in actions.items()}

    def __getitem__(self, name: str) -> ActionDefinition:
        return self._actions[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._actions)

    def __len__(self) -> int:
        return len(self._actions)

    def source(self, name: str) -> Path:
        return self._sources[name]


def _describe(error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(action)"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {message}")
    return lines


REFERENCE = re.compile(r"\$\{(env|file):([^}:]+)(?::-([^}]*))?\}")
SECRET_SECTIONS = ("auth", "headers", "query", "tls")


@dataclass
class References:
    """Resolves ``${env:NAME}``, ``${env:NAME:-default}`` and ``${file:/path}``.

    What it could not resolve lands in ``missing``; values resolved inside
    credential-bearing sections are remembered as ``secrets``.
    """

    environ: Mapping[str, str]
    missing: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)

    def resolve(self, kind: str, name: str, default: str | None) -> str | None:
        if kind == "env":
            return self.environ.get(name, default)
        try:
            return Path(name).read_text().strip()
        except OSError as exc:
            self.missing.append(f"file {name} ({exc.strerror})")
            return ""

    def expand(self, raw: Any, secret: bool = False) -> Any:
        if isinstance(raw, str):

            def substitute(match: re.Match[str]) -> str:
                kind, name, default = match.groups()
                value = self.resolve(kind, name, default)
                if value is None:
                    self.missing.append(f"environment variable {name}")
                    return ""
                if secret and value != default:
                    self.secrets.append(value)
                return value

            return REFERENCE.sub(substitute, raw)
        if isinstance(raw, dict):
            # An endpoint address is not a credential, even inside ``auth``.
            return {
                key: self.expand(value, secret and not str(key).endswith("url"))
                for key, value in raw.items()
            }
        if isinstance(raw, list):
            return [self.expand(value, secret) for value in raw]
        return raw


def expand_references(raw: dict[str, Any], refs: References) -> dict[str, Any]:
    return {key: refs.expand(value, key in SECRET_SECTIONS) for key, value in raw.items()}


def _read(path: Path) -> Any:
    text = path.read_bytes()
    if path.suffix == ".json":
        return orjson.loads(text)
    return yaml.safe_load(text)


def load_action(
    path: Path, environ: Mapping[str, str] | None = None
) -> tuple[ActionDefinition, list[str]]:
    """One action file and the secrets it holds; CatalogError names file, field, problem."""
    try:
        raw = _read(path)
    except (OSError, orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise CatalogError([f"{path}: cannot be read: {exc}"]) from exc
    if not isinstance(raw, dict):
        raise CatalogError([f"{path}: must hold one action (a mapping), not {type(raw).__name__}"])
    refs = References(os.environ if environ is None else environ)
    raw = expand_references(raw, refs)
    if refs.missing:
        name = raw.get("name", path.stem)
        return_problems = [
            f"{path}: action {name}: secret {m} is not available" for m in refs.missing
        ]
        raise CatalogError(return_problems)
    try:
        action = ActionDefinition.model_validate(raw)
    except ValidationError as exc:
        raise CatalogError([f"{path}: {line}" for line in _describe(exc)]) from exc
    return action, refs.secrets + secret_values(action.auth)


def load_catalog(directory: Path, environ: Mapping[str, str] | None = None) -> Catalog:
    """Every action file in ``directory``; all problems are reported together."""
    if not directory.is_dir():
        raise CatalogError([f"{directory}: actions directory does not exist"])
    problems: list[str] = []
    found: dict[str, tuple[ActionDefinition, Path]] = {}
    all_secrets: list[str] = []
    files = (p for p in directory.iterdir() if p.suffix in SUFFIXES and p.is_file())
    for path in sorted(p for p in files if p.name not in ENDPOINT_FILES):
        try:
            action, secrets = load_action(path, environ)
        except CatalogError as exc:
            problems.extend(exc.problems)
            continue
        if action.name in found:
            first = found[action.name][1]
            problems.append(f"{path}: name: action {action.name} is already defined in {first}")
            continue
        found[action.name] = (action, path)
        all_secrets.extend(secrets)
    if problems:
        raise CatalogError(problems)
    return Catalog(found, secrets=all_secrets)
