"""The action catalog: a directory of YAML or JSON files, one action each."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import ValidationError

from actionrelay.action import ActionDefinition
from actionrelay.errors import CatalogError

SUFFIXES = (".yaml", ".yml", ".json")


class Catalog(Mapping[str, ActionDefinition]):
    """Actions by name, with the file each came from."""

    def __init__(self, actions: Mapping[str, tuple[ActionDefinition, Path]]) -> None:
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


ENV_REFERENCE = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(raw: Any, environ: Mapping[str, str], missing: list[str]) -> Any:
    """Replace ``${env:NAME}`` and ``${env:NAME:-default}`` in every string of a definition."""
    if isinstance(raw, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ:
                return environ[name]
            if default is None:
                missing.append(name)
                return ""
            return default

        return ENV_REFERENCE.sub(substitute, raw)
    if isinstance(raw, dict):
        return {key: expand_env(value, environ, missing) for key, value in raw.items()}
    if isinstance(raw, list):
        return [expand_env(value, environ, missing) for value in raw]
    return raw


def _read(path: Path) -> Any:
    text = path.read_bytes()
    if path.suffix == ".json":
        return orjson.loads(text)
    return yaml.safe_load(text)


def load_action(path: Path, environ: Mapping[str, str] | None = None) -> ActionDefinition:
    """One action file; CatalogError names the file, the field and the problem."""
    try:
        raw = _read(path)
    except (OSError, orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise CatalogError([f"{path}: cannot be read: {exc}"]) from exc
    if not isinstance(raw, dict):
        raise CatalogError([f"{path}: must hold one action (a mapping), not {type(raw).__name__}"])
    missing: list[str] = []
    raw = expand_env(raw, os.environ if environ is None else environ, missing)
    if missing:
        names = ", ".join(sorted(set(missing)))
        raise CatalogError([f"{path}: environment variable(s) {names} not set (${{env:…}})"])
    try:
        return ActionDefinition.model_validate(raw)
    except ValidationError as exc:
        raise CatalogError([f"{path}: {line}" for line in _describe(exc)]) from exc


def load_catalog(directory: Path) -> Catalog:
    """Every action file in ``directory``; all problems are reported together."""
    if not directory.is_dir():
        raise CatalogError([f"{directory}: actions directory does not exist"])
    problems: list[str] = []
    found: dict[str, tuple[ActionDefinition, Path]] = {}
    for path in sorted(p for p in directory.iterdir() if p.suffix in SUFFIXES and p.is_file()):
        try:
            action = load_action(path)
        except CatalogError as exc:
            problems.extend(exc.problems)
            continue
        if action.name in found:
            first = found[action.name][1]
            problems.append(f"{path}: name: action {action.name} is already defined in {first}")
            continue
        found[action.name] = (action, path)
    if problems:
        raise CatalogError(problems)
    return Catalog(found)
