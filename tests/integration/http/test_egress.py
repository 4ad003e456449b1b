"""Safe outbound calls through a real worker: scheme, address, redirect and size rules.

The settings fixture opts into plain http and loopback; each test here narrows
that back to what it checks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import orjson
import pytest

from actionrelay.core.event import MAX_EVENT_BYTES
from tests.integration.auth_support import Pki, TlsApi, make_pki
from tests.integration.support import RecordingApi, Reply, WorkerHarness, step_event

ONE_ATTEMPT = {"max_attempts": 1}


async def outcome(
    harness: WorkerHarness, action: dict[str, Any], params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run one event for ``action`` through a worker started with ``harness.settings``."""
    harness.action({"retry": ONE_ATTEMPT, **action})
    await harness.start_worker()
    await harness.publish(step_event("e-1", action["name"], params=params or {}))
    [result] = await harness.results(1)
    return result


def narrow(harness: WorkerHarness, **update: str) -> None:
    harness.settings = harness.settings.model_copy(update=update)


def assert_refused(result: dict[str, Any], *words: str) -> None:
    assert result["status"] == "invalid", result
    assert result["status_code"] == "invalid"
    assert result["error"]["type"] == "forbidden_destination"
    for word in words:
        assert word in result["error"]["message"]


@pytest.fixture
async def second_api() -> AsyncIterator[RecordingApi]:
    server = RecordingApi()
    await server.start()
    yield server
    await server.stop()


# --- scheme -----------------------------------------------------------------------


async def test_plain_http_is_refused_unless_the_host_is_listed(harness: WorkerHarness) -> None:
    narrow(harness, allow_http_hosts="")

    result = await outcome(harness, {"name": "plain"})
    [dead] = await harness.dead_letters(1)

    assert_refused(result, "plain http to 127.0.0.1", "ACTIONRELAY_ALLOW_HTTP_HOSTS")
    assert dead.headers["x-actionrelay-error-type"] == "forbidden_destination"
    assert harness.api.received == []


async def test_plain_http_to_a_listed_host_is_allowed(harness: WorkerHarness) -> None:
    narrow(harness, allow_http_hosts="example.test, 127.0.0.1")

    result = await outcome(harness, {"name": "plain"})

    assert result["status"] == "success", result["error"]
    assert len(harness.api.received) == 1


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def test_https_needs_no_listing(harness: WorkerHarness, pki: Pki) -> None:
    narrow(harness, allow_http_hosts="")
    tls_api = TlsApi(pki.server_context(require_client_cert=False))
    await tls_api.start()
    try:
        action = {"name": "secure", "url": f"{tls_api.url}/hook", "tls": {"ca_bundle": str(pki.ca)}}
        result = await outcome(harness, action)
    finally:
        await tls_api.stop()

    assert result["status"] == "success", result["error"]
    assert len(tls_api.received) == 1


# --- addresses --------------------------------------------------------------------


# A literal address, a name, and a spelling that only the resolver turns into 127.0.0.1
# (aiohttp itself refuses the shortened forms 127.1 and 2130706433).
LOOPBACK_SPELLINGS = ["127.0.0.1", "localhost", "0x7f000001"]


@pytest.mark.parametrize("host", [*LOOPBACK_SPELLINGS, "[::ffff:127.0.0.1]"])
async def test_loopback_is_refused_unless_allow_private_networks_lists_it(
    harness: WorkerHarness, host: str
) -> None:
    narrow(harness, allow_private_networks="10.0.0.0/8")
    url = f"http://{host}:{harness.api.port}/hook"

    result = await outcome(harness, {"name": "local", "url": url})

    assert_refused(result, "a loopback address", "ACTIONRELAY_ALLOW_PRIVATE_NETWORKS")
    assert harness.api.received == []


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
async def test_loopback_listed_in_allow_private_networks_is_called(
    harness: WorkerHarness, host: str
) -> None:
    narrow(harness, allow_private_networks="127.0.0.1/32")
    url = f"http://{host}:{harness.api.port}/hook"

    result = await outcome(harness, {"name": "local", "url": url})

    assert result["status"] == "success", result["error"]
    assert len(harness.api.received) == 1


async def test_cloud_metadata_address_is_refused(harness: WorkerHarness) -> None:
    url = "http://169.254.169.254/latest/meta-data/iam"

    result = await outcome(harness, {"name": "metadata", "method": "GET", "url": url})

    assert_refused(result, "169.254.169.254", "link-local")


# --- redirects --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "header", "sent"),
    [
        pytest.param(
            {"type": "bearer", "token": "for-the-first-host-only"},
            "Authorization",
            "Bearer for-the-first-host-only",
            id="bearer",
        ),
        pytest.param(
            {"type": "api_key", "name": "X-Api-Key", "value": "key-for-first-host", "in": "header"},
            "X-Api-Key",
            "key-for-first-host",
            id="api-key-header",
        ),
    ],
)
async def test_redirect_to_an_allowed_server_is_followed_without_credentials(
    harness: WorkerHarness,
    second_api: RecordingApi,
    auth: dict[str, str],
    header: str,
    sent: str,
) -> None:
    narrow(harness, allow_private_networks="127.0.0.1/32")
    harness.api.default = Reply(307, headers={"Location": f"{second_api.url}/moved"})

    result = await outcome(harness, {"name": "moved", "auth": auth})

    assert result["status"] == "success", result["error"]
    [first] = harness.api.received
    [second] = second_api.received
    assert first.headers[header] == sent
    assert second.path == "/moved"
    assert header not in second.headers  # another origin


@pytest.mark.parametrize(
    ("narrowed", "location", "words"),
    [
        pytest.param(
            {"allow_private_networks": "127.0.0.1/32"},
            "http://127.0.0.2:{port}/internal",
            ["127.0.0.2", "loopback", "ACTIONRELAY_ALLOW_PRIVATE_NETWORKS"],
            id="to-a-refused-address",
        ),
        pytest.param(
            {"allow_http_hosts": "127.0.0.1"},
            "http://localhost:{port}/internal",
            ["plain http to localhost", "ACTIONRELAY_ALLOW_HTTP_HOSTS"],
            id="to-plain-http-on-an-unlisted-host",
        ),
        pytest.param(
            {"allow_private_networks": "127.0.0.1/32"},
            "http://169.254.169.254/latest/meta-data/",
            ["169.254.169.254", "link-local"],
            id="to-cloud-metadata",
        ),
    ],
)
async def test_redirect_to_a_refused_destination_is_refused(
    harness: WorkerHarness,
    second_api: RecordingApi,
    narrowed: dict[str, str],
    location: str,
    words: list[str],
) -> None:
    narrow(harness, **narrowed)
    harness.api.default = Reply(302, headers={"Location": location.format(port=second_api.port)})

    result = await outcome(harness, {"name": "moved"})

    assert_refused(result, *words)
    assert len(harness.api.received) == 1
    assert second_api.received == []


# --- what variables may not do ----------------------------------------------------


@pytest.mark.parametrize("value", ["../admin", "../../etc/passwd", "a?admin=1", "x#frag", "a/b"])
async def test_a_path_variable_stays_one_encoded_segment(
    harness: WorkerHarness, value: str
) -> None:
    result = await outcome(harness, {"name": "lookup", "path": "/{id}"}, {"id": value})

    assert result["status"] == "success", result["error"]
    [call] = harness.api.received
    assert call.raw_path == f"/hook/{quote(value, safe='')}"
    assert call.raw_path.count("/") == 2  # /hook/<one segment>
    assert call.query == []


@pytest.mark.parametrize("value", ["acme\r\nX-Injected: 1", "acme\nX-Injected: 1", "a\x00b"])
async def test_control_characters_in_a_header_variable_make_the_event_invalid(
    harness: WorkerHarness, value: str
) -> None:
    headers = {"X-Tenant": {"$var": "tenant", "type": "string"}}

    result = await outcome(harness, {"name": "tenant", "headers": headers}, {"tenant": value})

    assert result["status"] == "invalid"
    assert result["error"]["type"] == "validation"
    assert "header X-Tenant" in result["error"]["message"]
    assert "control characters" in result["error"]["message"]
    assert harness.api.received == []


# --- sizes ------------------------------------------------------------------------


async def test_a_step_event_over_1_mib_is_dead_lettered_as_invalid(harness: WorkerHarness) -> None:
    harness.action({"name": "big"})
    await harness.start_worker()
    body = orjson.dumps(step_event("e-big", "big", params={"blob": "x" * MAX_EVENT_BYTES}))

    await harness.publish(body)
    [result] = await harness.results(1)
    [dead] = await harness.dead_letters(1)

    assert result["status"] == "invalid"
    assert (result["event_id"], result["action"]) == ("e-big", "big")
    assert f"{len(body):,} bytes" in result["error"]["message"]
    assert "1 MiB" in result["error"]["message"]
    assert f"{len(body):,} bytes" in str(dead.headers["x-actionrelay-error-message"])
    assert dead.body == body
    assert harness.api.received == []


@pytest.mark.parametrize(("size", "truncated"), [(60 * 1024, False), (70 * 1024, True)])
async def test_a_response_over_64_kib_is_left_out_of_the_result(
    harness: WorkerHarness, size: int, truncated: bool
) -> None:
    harness.api.default = Reply(json={"blob": "y" * size})

    result = await outcome(harness, {"name": "large"})

    assert result["status"] == "success"
    assert result["response_truncated"] is truncated
    assert (result["response"] is None) is truncated
