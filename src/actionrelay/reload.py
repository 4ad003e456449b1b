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

from actionrelay.catalog import Catalog, load_catalog
from actionrelay.endpoint import EndpointTable, load_endpoints
from actionrelay.errors import CatalogError

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
            await asyncio.to_thread(self.check)

    def check(self) -> bool:
        """Reload if the directory changed; True when a new catalog took effect."""
        current = fingerprint(self._directory)
        if current == self._seen:
            return False
        self._seen = current
        try:
            catalog = load_catalog(self._directory)
            endpoints = load_endpoints(self._directory)
        except CatalogError as exc:
            log.error(
                "catalog.reload_failed",
                problems=exc.problems,
                note="the previous actions stay in force until the files are fixed",
            )
            return False
        self._apply(catalog, endpoints)
        log.info("catalog.reloaded", actions=sorted(catalog), endpoints=len(endpoints.entries))
        return True
