"""Keeping credentials out of everything actionrelay writes.

A ``Redactor`` knows every secret value (resolved from action files, fetched
tokens) and masks it in log lines, result events, dead-letter headers and
error messages. A secret is masked as written and in each form it takes on the
way out: percent-encoded in a URL path or query, form-encoded in a body, escaped
in JSON; an API that echoes the request back echoes those forms.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any
from urllib.parse import quote, quote_plus

import orjson
from yarl import URL

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words


def encoded_forms(secret: str) -> set[str]:
    """``secret`` and every encoding of it a request can carry."""
    forms = {
        secret,
        quote(secret, safe=""),
        quote(secret, safe="/"),
        quote_plus(secret),
        orjson.dumps(secret).decode()[1:-1],
    }
    try:
        forms.add(URL.build(path="/" + secret).raw_path[1:])
        forms.add(URL("http://h/").with_query({"k": secret}).raw_query_string[2:])
    except (ValueError, TypeError):  # not a value yarl can place: it cannot be sent either
        pass
    return forms


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._forms: set[str] = set()
        self._longest_first: list[str] = []
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        fresh = {s for s in secrets if len(s) >= MIN_SECRET_LENGTH and s not in self._secrets}
        if not fresh:
            return
        self._secrets.update(fresh)
        for secret in fresh:
            self._forms.update(f for f in encoded_forms(secret) if len(f) >= MIN_SECRET_LENGTH)
        # A secret inside a longer one must not be masked first and leave the rest visible.
        self._longest_first = sorted(self._forms, key=len, reverse=True)

    def __len__(self) -> int:
        return len(self._secrets)

    def mask(self, text: str) -> str:
        if not self._secrets:
            return text
        for secret in self._longest_first:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def mask_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, dict):
            return {k: self.mask_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.mask_value(v) for v in value]
        return value

    def __call__(
        self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """A structlog processor."""
        if self._secrets:
            for key, value in event_dict.items():
                event_dict[key] = self.mask_value(value)
        return event_dict
