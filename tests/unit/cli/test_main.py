"""``actionrelay run`` takes every setting as an option, as its --help says."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from actionrelay.cli.main import main, run_loop
from actionrelay.settings import Settings


def test_help_names_every_setting_with_its_variable() -> None:
    result = CliRunner().invoke(main, ["run", "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for name in Settings.model_fields:
        assert f"--{name.replace('_', '-')}" in result.output
        assert f"ACTIONRELAY_{name.upper()}" in result.output
    assert "<class" not in result.output


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--redis-url", "redis://redis:6379/0"),
        ("--otlp-endpoint", "http://collector:4318/v1/traces"),
        ("--worker-id", "w-1"),
        ("--queue-type", "classic"),
        ("--prefetch", "10"),
    ],
)
def test_a_setting_given_as_an_option_is_accepted(tmp_path: Path, option: str, value: str) -> None:
    """The run stops at the missing actions directory, after the options were taken."""
    missing = tmp_path / "no-actions"
    result = CliRunner().invoke(main, ["run", option, value, "--actions", str(missing)])
    assert result.exit_code == 2
    assert f"{missing}: actions directory does not exist" in result.output
    assert "Invalid value" not in result.output


def test_a_setting_out_of_range_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", "--prefetch", "0", "--actions", str(tmp_path)])
    assert result.exit_code == 2
    assert "invalid settings: prefetch:" in result.output


def test_a_worker_process_loads_only_what_its_configuration_uses() -> None:
    """What ``actionrelay run`` imports (issue 17): the CLI's tables, the JWT signing stack,
    the rate-limit library and YAML are MB each that a worker with JSON action files, no
    JWT action and no endpoint limits never uses; greenlet (here because Playwright is)
    only feeds structlog's deprecated thread-local context, and stays importable."""
    script = (
        "import sys\n"
        "import actionrelay.cli.main as cli\n"
        "cli.keep_worker_lean()\n"
        "import actionrelay.service, actionrelay.observability.logs, actionrelay.catalog.loader\n"
        "heavy = ('rich', 'pygments', 'cryptography', 'jwt', 'limits', 'yaml', 'greenlet')\n"
        "print(sorted(m for m in heavy if sys.modules.get(m) is not None))\n"
        "import importlib.util\n"
        "if importlib.util.find_spec('greenlet'):\n"
        "    import greenlet  # still importable: hidden only while structlog loaded\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def loop_run_by(kind: str) -> str:
    seen: list[type[asyncio.AbstractEventLoop]] = []

    async def record() -> None:
        seen.append(type(asyncio.get_running_loop()))

    run_loop(record(), kind)
    [loop_type] = seen
    return loop_type.__module__.split(".")[0]


@pytest.mark.parametrize("kind", ["auto", "uvloop"])
def test_uvloop_runs_the_worker_when_installed(kind: str) -> None:
    pytest.importorskip("uvloop")
    assert loop_run_by(kind) == "uvloop"


def test_asyncio_loop_is_used_when_asked() -> None:
    assert loop_run_by("asyncio") == "asyncio"


def test_auto_falls_back_to_asyncio_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    assert loop_run_by("auto") == "asyncio"


def test_uvloop_asked_but_missing_is_a_usage_error_that_closes_the_coroutine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)
    coroutine = asyncio.sleep(0)
    with pytest.raises(click.UsageError, match="pip install uvloop"):
        run_loop(coroutine, "uvloop")
    assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED
