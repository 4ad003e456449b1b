"""Where actionrelay may send requests: the outbound-call policy.

A worker that builds URLs from event data is an SSRF target. By default it
calls only https URLs on public addresses. The address is checked after DNS
resolution, on the address actually connected to, and again on every redirect.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from actionrelay.core.errors import InvalidEvent

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
HTTP_HOSTS_SETTING = "ACTIONRELAY_ALLOW_HTTP_HOSTS"
PRIVATE_SETTING = "ACTIONRELAY_ALLOW_PRIVATE_NETWORKS"


class ForbiddenDestination(InvalidEvent):
    """The call would go somewhere the egress policy refuses; permanent."""

    error_type = "forbidden_destination"


def address_kind(address: IPAddress) -> str | None:
    """Why an address is not public, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        # e.g. 100.64.0.0/10 (carrier-grade NAT), home of some clouds' metadata services
        ("non-global", not address.is_global),
    )
    return next((kind for kind, hit in checks if hit), None)


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """``10.0.0.0/8,127.0.0.1`` -> networks; ``*`` allows every address."""
    if text.strip() == "*":
        return (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
    return tuple(
        ipaddress.ip_network(item.strip(), strict=False) for item in text.split(",") if item.strip()
    )


@dataclass(frozen=True)
class EgressPolicy:
    http_hosts: frozenset[str] = frozenset()
    private_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_settings(cls, allow_http_hosts: str, allow_private_networks: str) -> EgressPolicy:
        hosts = frozenset(h.strip().lower() for h in allow_http_hosts.split(",") if h.strip())
        return cls(hosts, parse_networks(allow_private_networks))

    def check_url(self, url: URL) -> None:
        """Scheme and literal-address rules, before any connection."""
        refusal = self._verdict(url.scheme, (url.host or "").lower())
        if refusal is not None:
            raise ForbiddenDestination(refusal)

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - policies live as long as the process
    def _verdict(self, scheme: str, host: str) -> str | None:
        """Why (scheme, host) is refused, or None; the same answer every time, so cached."""
        if scheme == "http" and "*" not in self.http_hosts and host not in self.http_hosts:
            return (
                f"plain http to {host} is refused: use https, or list the host in "
                f"{HTTP_HOSTS_SETTING}"
            )
        if scheme not in ("http", "https"):
            return f"scheme {scheme!r} is refused: only http(s)"
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return None
        try:
            self.check_address(host, literal)
        except ForbiddenDestination as exc:
            return exc.message
        return None

    def check_address(self, host: str, address: IPAddress) -> None:
        kind = address_kind(address)
        if kind is None or any(address in net for net in self.private_networks):
            return
        raise ForbiddenDestination(
            f"{host} resolves to {address}, a {kind} address: calls there are refused "
            f"unless {PRIVATE_SETTING} lists its range"
        )


class GuardedResolver(AbstractResolver):
    """DNS resolution that keeps only addresses the policy allows."""

    def __init__(self, policy: EgressPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed: list[ResolveResult] = []
        refusal: ForbiddenDestination | None = None
        for result in results:
            try:
                self._policy.check_address(host, ipaddress.ip_address(result["host"]))
            except ForbiddenDestination as exc:
                refusal = refusal or exc
            else:
                allowed.append(result)
        if not allowed and refusal is not None:
            raise refusal
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def describe(policy: EgressPolicy) -> dict[str, Any]:
    return {
        "http_hosts": sorted(policy.http_hosts) or "none (https only)",
        "private_networks": [str(n) for n in policy.private_networks] or "none",
    }
