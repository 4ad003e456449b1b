"""Shared by the deployment-file tests: paths, tools from the dev extra, YAML helpers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from actionrelay.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"


def tool(name: str) -> str:
    """A command-line tool from the dev extra; missing: skip here, fail under CI=true."""
    beside_python = Path(sys.executable).parent / name  # the venv's bin, activated or not
    found = str(beside_python) if beside_python.is_file() else shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed: pip install -e '.[dev]'"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def run(*command: str, cwd: Path = ROOT) -> str:
    """Run a tool and return its stdout; a non-zero exit fails the test with its output."""
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=50)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@cache
def rendered(directory: str) -> tuple[dict[str, Any], ...]:
    """``kubectl kustomize deploy/kubernetes/<directory>``: the manifests as applied."""
    output = run(tool("kubectl"), "kustomize", str(KUBERNETES / directory))
    return tuple(doc for doc in yaml.safe_load_all(output) if doc)


def find(docs: tuple[dict[str, Any], ...], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def setting_names() -> set[str]:
    """Every ``ACTIONRELAY_*`` variable the worker reads."""
    return {f"ACTIONRELAY_{name.upper()}" for name in Settings.model_fields}


def settings_from(environ: dict[str, str]) -> Settings:
    """The worker's Settings built from ``ACTIONRELAY_*`` variables (validates values)."""
    unknown = {k for k in environ if k.startswith("ACTIONRELAY_")} - setting_names()
    assert not unknown, f"not worker settings (typo?): {sorted(unknown)}"
    values = {
        k.removeprefix("ACTIONRELAY_").lower(): v
        for k, v in environ.items()
        if k.startswith("ACTIONRELAY_")
    }
    return Settings.model_validate(values)
