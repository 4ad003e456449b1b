"""Hot reload of the action catalog and endpoint limits.

The actions directory is fingerprinted by content every few seconds (content,
not mtimes: a Kubernetes ConfigMap update swaps a symlink and keeps old
mtimes). A changed directory is loaded and validated as at start; a valid one
replaces the running catalog at once, an invalid one is logged and the
previous version stays in force.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path

import structlog

from actionrelay.catalog.loader import Catalog, load_catalog
from actionrelay.core.errors import CatalogError, ConfigError
from actionrelay.limits.endpoint import EndpointTable, load_endpoints

log = structlog.get_logger("actionrelay.reload")

Apply = Callable[[Catalog, EndpointTable], None]


def fingerprint(directory: Path) -> str:
    """A digest of every file's name and content (following symlinks), one level deep."""
    digest = hashlib.sha256()
    try:
        paths = sorted(directory.iterdir())
    except OSError:
        return ""
    for path in paths:
        children = sorted(path.iterdir()) if path.is_dir() and path.name == "endpoints" else [path]
        for item in children:
            if item.name.startswith(".") or not item.is_file():
                continue
            digest.update(item.name.encode())
            try:
                digest.update(hashlib.sha256(item.read_bytes()).digest())
            except OSError:
                continue
    return digest.hexdigest()


class CatalogWatcher:
    def __init__(self, directory: Path, interval_seconds: float, apply: Apply) -> None:
        self._directory = directory
        self._interval = interval_seconds
        self._apply = apply
        self._seen = fingerprint(directory)

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            # Files are read in a thread; the swap itself happens here, on the event loop,
            # so that no event ever sees half of the old catalog and half of the new one.
            loaded = await asyncio.to_thread(self.load_if_changed)
            if loaded is not None:
                self.apply(*loaded)

    def load_if_changed(self) -> tuple[Catalog, EndpointTable] | None:
        """The new catalog and endpoints when the directory changed and is valid, else None."""
        current = fingerprint(self._directory)
        if current == self._seen:
            return None
        self._seen = current
        try:
            return load_catalog(self._directory), load_endpoints(self._directory)
        except CatalogError as exc:
            self._failed(exc.problems)
            return None

    def apply(self, catalog: Catalog, endpoints: EndpointTable) -> bool:
        """Put a loaded catalog in force; True when it took effect."""
        try:
            self._apply(catalog, endpoints)
        except ConfigError as exc:  # e.g. a TLS file that the new version names is unreadable
            self._failed([str(exc)])
            return False
        log.info("catalog.reloaded", actions=sorted(catalog), endpoints=len(endpoints.entries))
        return True

    def check(self) -> bool:
        """Reload now if the directory changed; True when a new catalog took effect."""
        loaded = self.load_if_changed()
        return loaded is not None and self.apply(*loaded)

    @staticmethod
    def _failed(problems: list[str]) -> None:
        log.error(
            "catalog.reload_failed",
            problems=problems,
            note="the previous actions stay in force until the files are fixed",
        )
