"""The HTTP side: one pooled aiohttp session that calls third-party APIs.

aiohttp exceptions are translated here, once, into the actionrelay tree.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from types import TracebackType

import aiohttp
from multidict import CIMultiDictProxy

from actionrelay.errors import CallTimeout, ConnectFailure, PermanentFailure
from actionrelay.payload import OutboundRequest

MAX_RESPONSE_BYTES = 1024 * 1024
MAX_REDIRECTS = 5


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    truncated: bool
    latency_ms: float


class ClientState(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


class TooManyRedirects(PermanentFailure):
    error_type = "too_many_redirects"


class HttpClient:
    """Calls endpoints; opened once per worker, shared by every in-flight call."""

    def __init__(self, *, max_connections: int = 0) -> None:
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self.state = ClientState.UNOPENED

    async def open(self) -> None:
        if self.state is not ClientState.UNOPENED:
            raise RuntimeError(f"HttpClient cannot be opened when {self.state.value}")
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, ttl_dns_cache=300, enable_cleanup_closed=True
        )
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True)
        self.state = ClientState.OPEN

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self.state = ClientState.CLOSED

    async def __aenter__(self) -> HttpClient:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def call(self, request: OutboundRequest, budget_seconds: float) -> HttpResponse:
        """Send ``request``; the whole exchange, redirects included, fits in the budget."""
        if self._session is None or self.state is not ClientState.OPEN:
            raise RuntimeError("HttpClient is not open")
        loop = asyncio.get_running_loop()
        started = loop.time()
        host = request.url.host
        try:
            async with self._session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body,
                timeout=aiohttp.ClientTimeout(total=budget_seconds),
                # aiohttp raises on the Nth redirect answer, so N allows only N - 1.
                max_redirects=MAX_REDIRECTS + 1,
            ) as resp:
                body, truncated = await _read_limited(resp)
                latency_ms = (loop.time() - started) * 1000
                return HttpResponse(resp.status, resp.headers, body, truncated, latency_ms)
        except TimeoutError as exc:
            raise CallTimeout(
                f"no complete answer from {host} within {budget_seconds:g} s"
            ) from exc
        except aiohttp.TooManyRedirects as exc:
            raise TooManyRedirects(f"{host} redirected more than {MAX_REDIRECTS} times") from exc
        except aiohttp.ClientError as exc:
            raise ConnectFailure(f"calling {host} failed: {_describe(exc)}") from exc


async def _read_limited(resp: aiohttp.ClientResponse) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            return b"".join(chunks)[:MAX_RESPONSE_BYTES], True
    return b"".join(chunks), False


def _describe(exc: aiohttp.ClientError) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"
