"""Debian's Chromium driven by Playwright: never a downloaded browser.

Missing, the browser tests are skipped on a developer machine and fail under CI=true.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, async_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS_ENV = "ACTIONRELAY_SCREENSHOTS_DIR"  # set it to refresh docs/console/


def chromium() -> str:
    if Path(CHROMIUM).is_file():
        return CHROMIUM
    message = "chromium is not installed: apt-get install -y chromium"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@asynccontextmanager
async def browser(profile: Path) -> AsyncIterator[BrowserContext]:
    """A fresh profile in ``profile``; 1280 x 900 like the screenshots in docs/."""
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=chromium(),
            headless=True,
            args=FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            await context.close()


def keep_screenshot(path: Path) -> None:
    """Copy a screenshot into the directory of ``ACTIONRELAY_SCREENSHOTS_DIR`` when set."""
    target = os.environ.get(SCREENSHOTS_ENV)
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)
