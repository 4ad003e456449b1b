"""Keeping credentials out of everything actionrelay writes.

A ``Redactor`` knows every secret value (resolved from action files, fetched
tokens) and masks it in log lines, result events, dead-letter headers and
error messages.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._longest_first: list[str] = []
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        self._secrets.update(s for s in secrets if len(s) >= MIN_SECRET_LENGTH)
        # A secret inside a longer one must not be masked first and leave the rest visible.
        self._longest_first = sorted(self._secrets, key=len, reverse=True)

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
