"""The action catalog: a directory of YAML or JSON files, one action each."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from pydantic import ValidationError

from actionrelay.core.action import ActionDefinition
from actionrelay.core.auth import secret_values
from actionrelay.core.errors import CatalogError
from actionrelay.core.secret import Redactor
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
# TLS settings name files; the files' contents are never written anywhere.
NOT_SECRET_SECTIONS = frozenset({"tls"})


def _is_address(key: Any) -> bool:
    return key == "url" or str(key).endswith("_url")


def _path_start(url: str) -> int:
    """Where the path of ``url`` begins: what comes before is scheme, host and port."""
    scheme_end = url.find("://")
    if scheme_end < 0:
        return 0
    ends = [i for i in (url.find(c, scheme_end + 3) for c in "/?#") if i >= 0]
    return min(ends, default=len(url))


@dataclass
class References:
    """Resolves ``${env:NAME}``, ``${env:NAME:-default}`` and ``${file:/path}``.

    What it could not resolve lands in ``missing``. Every value resolved is a
    secret (``secrets``), except a default written in the file, a reference
    under ``tls`` (file names), and what a reference puts before the path of a
    ``url``/``*_url`` (scheme, host, port: an address, shown in messages).
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

    def substitute(
        self, raw: str, quote_as_path: bool = False
    ) -> tuple[str, list[tuple[int, int]]]:
        """``raw`` with its references resolved, and where each secret value landed."""
        parts: list[str] = []
        spans: list[tuple[int, int]] = []
        size = last = 0
        for match in REFERENCE.finditer(raw):
            kind, name, default = match.groups()
            value = self.resolve(kind, name, default)
            if value is None:
                self.missing.append(f"environment variable {name}")
                value = ""
            text = quote(value, safe="/") if quote_as_path else value
            literal = raw[last : match.start()]
            parts += [literal, text]
            size += len(literal)
            if value != default:
                spans.append((size, size + len(text)))
                self.secrets.append(value)
            size += len(text)
            last = match.end()
        parts.append(raw[last:])
        return "".join(parts), spans

    def _address(self, raw: str) -> str:
        """A URL: only what references put in its path is a secret."""
        kept = len(self.secrets)
        url, spans = self.substitute(raw)
        del self.secrets[kept:]
        path_start = _path_start(url)
        self.secrets += [url[max(a, path_start) : b] for a, b in spans if b > path_start]
        return url

    def expand(self, raw: Any, secret: bool = True) -> Any:
        if isinstance(raw, str):
            kept = len(self.secrets)
            text, _ = self.substitute(raw)
            if not secret:
                del self.secrets[kept:]
            return text
        if isinstance(raw, dict):
            return {
                key: self._address(value)
                if secret and isinstance(value, str) and _is_address(key)
                else self.expand(value, secret)
                for key, value in raw.items()
            }
        if isinstance(raw, list):
            return [self.expand(value, secret) for value in raw]
        return raw


def expand_references(raw: dict[str, Any], refs: References) -> dict[str, Any]:
    expanded: dict[str, Any] = {}
    for key, value in raw.items():
        if key in NOT_SECRET_SECTIONS:
            expanded[key] = refs.expand(value, secret=False)
        elif key == "path" and isinstance(value, str):
            # A value put in the path is percent-encoded (its '{', '?', '#', '%' too),
            # so it can neither end the path nor read as a placeholder.
            expanded[key], _ = refs.substitute(value, quote_as_path=True)
        else:
            expanded[key] = refs.expand({key: value})[key]
    return expanded


def _read(path: Path) -> Any:
    """JSON or YAML; ValueError (or OSError) when the file cannot be read as such."""
    text = path.read_bytes()
    if path.suffix == ".json":
        return orjson.loads(text)
    import yaml  # imported here: a catalog of JSON files does without it

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from exc


def load_action(
    path: Path, environ: Mapping[str, str] | None = None
) -> tuple[ActionDefinition, list[str]]:
    """One action file and the secrets it holds; CatalogError names file, field, problem."""
    try:
        raw = _read(path)
    except (OSError, ValueError) as exc:
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
        # A message may quote a value, and a value may be a secret.
        mask = Redactor(refs.secrets).mask
        raise CatalogError([f"{path}: {mask(line)}" for line in _describe(exc)]) from exc
    signing = action.signing.secret_values() if action.signing else []
    return action, refs.secrets + secret_values(action.auth) + signing


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
