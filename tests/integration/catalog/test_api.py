"""The catalog API of a running worker (``actionrelay run``, its own process): what it
lists, ETags, hot reload, and params schemas that judge real events as the worker does."""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jsonschema
import pytest
from aiohttp import web
from multidict import CIMultiDict

from actionrelay.catalog.openapi import document
from actionrelay.cli.demo_api import make_app
from tests.catalog_cases import CASES, EXAMPLES
from tests.integration.support import WorkerHarness


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def problems(name: str, instance: Any) -> list[str]:
    """What is wrong with ``instance`` as components/schemas/``name`` of the OpenAPI document."""
    validator = jsonschema.Draft202012Validator(
        {"$ref": f"#/components/schemas/{name}", **document()}
    )
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]


@pytest.fixture
async def demo_api(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """The demo third-party API that the example actions call, on loopback."""
    port = free_port()
    runner = web.AppRunner(make_app(), handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    monkeypatch.setenv("DEMO_API_URL", f"http://127.0.0.1:{port}")
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def worker_api(harness: WorkerHarness, demo_api: str) -> str:
    """A worker process with the example actions; the base URL of its catalog API."""
    for path in EXAMPLES.iterdir():
        shutil.copy(path, harness.settings.actions_dir / path.name)
    port = free_port()
    await harness.spawn_worker(http_host="127.0.0.1", http_port=port, reload_interval_seconds=0.2)
    await harness.wait_consuming(1)
    return f"http://127.0.0.1:{port}/api/v1"


async def get(url: str, **headers: str) -> tuple[int, CIMultiDict[str], Any]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        body = await response.json() if response.status != 304 else None
        return response.status, response.headers.copy(), body


async def test_list_one_etag_and_hot_reload(harness: WorkerHarness, worker_api: str) -> None:
    status, headers, listing = await get(f"{worker_api}/actions")
    assert status == 200
    assert problems("ActionList", listing) == []
    assert listing["count"] == len(list(EXAMPLES.iterdir()))
    assert [a["name"] for a in listing["actions"]] == sorted(a["name"] for a in listing["actions"])
    etag = headers["ETag"]
    assert (await get(f"{worker_api}/actions", **{"If-None-Match": etag}))[0] == 304

    status, _, sms = await get(f"{worker_api}/actions/sendSms")
    assert status == 200
    assert sms == next(a for a in listing["actions"] if a["name"] == "sendSms")
    assert sms["host"] == "127.0.0.1"
    assert sms["response_fields"] == ["messageId", "status"]
    assert sms["params"]["required"] == ["country", "tenant", "phone", "text"]
    oauth = (await get(f"{worker_api}/actions/sendSmsOAuth2"))[2]
    assert oauth["auth"] == {"type": "oauth2_client_credentials"}
    assert "demo-client-secret" not in str(listing)
    status, _, missing = await get(f"{worker_api}/actions/sendFax")
    assert (status, problems("Error", missing)) == (404, [])
    assert (await get(f"{worker_api}/openapi.json"))[2] == document()

    harness.action({"name": "pingHook", "description": "added while running"})
    deadline = time.monotonic() + 10
    while (answer := await get(f"{worker_api}/actions", **{"If-None-Match": etag}))[0] == 304:
        assert time.monotonic() < deadline, "the reload did not show"
        await asyncio.sleep(0.1)
    status, headers, listing = answer
    assert "pingHook" in {a["name"] for a in listing["actions"]}
    assert headers["ETag"] != etag


async def test_the_schemas_judge_real_events_as_the_worker_does(
    harness: WorkerHarness, worker_api: str
) -> None:
    listing = (await get(f"{worker_api}/actions"))[2]
    schemas = {a["name"]: a["params"] for a in listing["actions"]}
    for n, (action, params, _) in enumerate(CASES):
        await harness.publish({"event_id": f"case-{n}", "action": action, "params": params})
    results = {r["event_id"]: r for r in await harness.results(len(CASES), timeout=30)}
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    for n, (action, params, taken) in enumerate(CASES):
        result = results[f"case-{n}"]
        refused = (result["error"] or {}).get("type") == "validation"
        valid = jsonschema.Draft202012Validator(schemas[action], format_checker=checker)
        assert refused is not taken, f"{action} {params}: {result}"
        assert valid.is_valid(params) is taken, f"{action} {params}: the schema disagrees"
        if taken:
            assert result["status"] == "success", f"{action} {params}: {result}"
