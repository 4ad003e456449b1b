"""The console in a real headless Chromium, against a real broker and a real worker:
the list, an action page and its test request, the dead-letter filter, a letter whose
params hold <script>, a dry run, a replay whose results arrive, and writes refused
without the token or without the form's CSRF field."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from playwright.async_api import Page, expect

from actionrelay.catalog.loader import load_catalog
from actionrelay.console.server import make_app
from actionrelay.limits.endpoint import load_endpoints
from actionrelay.settings import ConsoleSettings
from tests.integration.console.browser import browser, chromium, keep_screenshot
from tests.integration.ops_support import dead_letter, publish_all
from tests.integration.support import WorkerHarness

TOKEN = "console-test-token-7f3a"
XSS = "<script>document.title='owned'</script>"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def console(harness: WorkerHarness) -> AsyncIterator[str]:
    """Actions, dead letters and a running worker; the console's base URL."""
    harness.action(
        {
            "name": "notify",
            "description": "Tell the CRM",
            "body": {"id": {"$var": "id", "type": "string"}},
            "response": {"fields": ["ok"]},
        }
    )
    harness.action({"name": "lookup", "method": "GET", "query": {"q": {"$var": "id"}}})
    await harness.declare()
    letters = [dead_letter(f"n-{n}") for n in range(3)]
    letters += [dead_letter(f"l-{n}", action="lookup", http_status=404) for n in range(2)]
    script = dead_letter("xss-1", error_type="validation", http_status=None)
    script.body = orjson.dumps({"event_id": "xss-1", "action": "notify", "params": {"id": XSS}})
    await publish_all(harness.channel, harness.settings.dead_letter_queue, [*letters, script])
    await harness.start_worker()
    settings = harness.settings
    options = ConsoleSettings(console_token=TOKEN, console_metrics_urls="")
    catalog, endpoints = load_catalog(settings.actions_dir), load_endpoints(settings.actions_dir)
    runner = web.AppRunner(make_app(settings, options, catalog, endpoints), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def shot(page: Page, directory: Path, name: str) -> None:
    path = directory / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    keep_screenshot(path)


@pytest.mark.timeout(120)
async def test_the_console_in_a_browser(
    harness: WorkerHarness, console: str, tmp_path: Path
) -> None:
    chromium()
    dialogs: list[str] = []
    async with browser(tmp_path / "profile") as context:
        page = await context.new_page()
        page.on("dialog", lambda dialog: dialogs.append(dialog.message))

        # A write without the token is refused, from the form and from a script.
        await page.goto(f"{console}/actions/notify")
        await page.click("#test-form button")
        await expect(page.locator("p.refused")).to_contain_text("log in first")
        answer = await context.request.post(
            f"{console}/dead-letters/purge", form={"confirm": "yes"}
        )
        assert answer.status == 401
        assert await harness.depth(harness.settings.dead_letter_queue) == 6

        await page.goto(f"{console}/login")
        await page.fill("input[name=token]", TOKEN)
        await page.click("#login button")
        await expect(page.locator("#actions")).to_contain_text("notify")
        await expect(page.locator("#dead-by-cause")).to_contain_text("lookup")
        await shot(page, tmp_path, "actions")

        # With the session cookie but without the form's CSRF field: refused.
        forged = await context.request.post(
            f"{console}/dead-letters/purge", form={"confirm": "yes"}
        )
        assert forged.status == 403
        assert await harness.depth(harness.settings.dead_letter_queue) == 6

        await page.click("text=notify")
        await expect(page.locator("#schema")).to_contain_text('"required"')
        await page.fill("textarea[name=params]", '{"id": "from-the-console"}')
        await page.click("#test-form button")
        await expect(page.locator("#answer")).to_contain_text("HTTP 200")
        await expect(page.locator("#test-result")).to_contain_text("success")
        assert [r.json() for r in harness.api.received] == [{"id": "from-the-console"}]
        await shot(page, tmp_path, "action")

        await page.goto(f"{console}/dead-letters")
        await page.fill("#filter input[name=action]", "lookup")
        await page.click("#filter button")
        await expect(page.locator("#count")).to_contain_text("2 match")
        await expect(page.locator("#letters")).to_contain_text("l-1")
        await expect(page.locator("#letters")).not_to_contain_text("n-1")
        await page.fill("#filter input[name=action]", "")
        await page.fill("#filter input[name=http_status]", "503")
        await page.click("#filter button")
        await expect(page.locator("#count")).to_contain_text("3 match")
        await shot(page, tmp_path, "dead-letters")

        await page.goto(f"{console}/dead-letters/xss-1")
        await expect(page.locator("#event")).to_contain_text(XSS)
        assert await page.title() != "owned"
        assert await page.locator("script").count() == 0
        await shot(page, tmp_path, "dead-letter")

        await page.goto(f"{console}/dead-letters?action=notify&http_status=503")
        await page.click("#replay-dry-run button")
        await expect(page.locator("#dry-run-summary")).to_contain_text(
            "3 dead letters would be replayed"
        )
        assert await harness.depth(harness.settings.dead_letter_queue) == 6
        await shot(page, tmp_path, "replay-dry-run")
        await page.click("#confirm button")
        await expect(page.locator("#change-summary")).to_contain_text("Replayed 3 of 3")
        await shot(page, tmp_path, "replayed")
    results = await harness.results(3)
    assert sorted(r["event_id"] for r in results) == ["n-0", "n-1", "n-2"]
    assert {r["status"] for r in results} == {"success"}
    assert await harness.depth(harness.settings.dead_letter_queue) == 3
    assert dialogs == []
