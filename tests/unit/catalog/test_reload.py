"""Hot reload: a new version takes effect only when all of it can be put in force."""

from __future__ import annotations

from pathlib import Path

import orjson
from structlog.testing import capture_logs

from actionrelay.catalog.loader import Catalog
from actionrelay.catalog.reload import CatalogWatcher
from actionrelay.http.client import Endpoint
from actionrelay.limits.endpoint import EndpointTable


def _write(directory: Path, **definition: object) -> None:
    path = directory / f"{definition['name']}.json"
    path.write_bytes(orjson.dumps({"url": "https://api.example.com/v1", **definition}))


class Running:
    """What a worker does with a reloaded catalog: its TLS files are read as it is applied."""

    def __init__(self) -> None:
        self.versions: list[dict[str, int]] = []

    def apply(self, catalog: Catalog, endpoints: EndpointTable) -> None:
        for action in catalog.values():
            Endpoint.for_action(action)
        self.versions.append({name: action.version for name, action in catalog.items()})


def test_a_changed_directory_is_applied_once(tmp_path: Path) -> None:
    _write(tmp_path, name="greet", version=1)
    running = Running()
    watcher = CatalogWatcher(tmp_path, 1.0, running.apply)
    assert watcher.check() is False  # nothing changed since the start
    _write(tmp_path, name="greet", version=2)
    with capture_logs() as logs:
        assert watcher.check() is True
    assert watcher.check() is False
    assert running.versions == [{"greet": 2}]
    assert [log["event"] for log in logs] == ["catalog.reloaded"]


def test_a_version_that_cannot_be_put_in_force_keeps_the_previous_one(tmp_path: Path) -> None:
    _write(tmp_path, name="greet", version=1)
    running = Running()
    watcher = CatalogWatcher(tmp_path, 1.0, running.apply)
    missing = str(tmp_path / "missing.pem")
    _write(tmp_path, name="greet", version=2, tls={"client_cert": missing, "client_key": missing})
    with capture_logs() as logs:
        assert watcher.check() is False
    assert running.versions == []
    [failed] = logs
    assert failed["event"] == "catalog.reload_failed"
    assert "action greet: cannot load TLS files" in failed["problems"][0]
    _write(tmp_path, name="greet", version=3)
    assert watcher.check() is True  # a later fix still takes effect
    assert running.versions == [{"greet": 3}]
