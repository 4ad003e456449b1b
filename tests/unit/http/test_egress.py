"""The egress policy: a refused and an allowed case for every rule."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from actionrelay.http.egress import (
    EgressPolicy,
    ForbiddenDestination,
    GuardedResolver,
    address_kind,
    describe,
    parse_networks,
)

STRICT = EgressPolicy()


def policy(http_hosts: str = "", private_networks: str = "") -> EgressPolicy:
    return EgressPolicy.from_settings(http_hosts, private_networks)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("100.64.0.1", "non-global"),  # shared address space (CGNAT), not is_private
        ("100.100.100.200", "non-global"),  # a cloud metadata service
        ("240.0.0.1", "private"),
        ("93.184.216.34", None),
        ("2606:2800:220:1:248:1893:25c8:1946", None),
        ("::ffff:93.184.216.34", None),
    ],
)
def test_address_kind(address: str, kind: str | None) -> None:
    assert address_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    ("rules", "url", "refusal"),
    [
        # plain http
        (policy(), "http://api.example.com/x", "plain http to api.example.com is refused"),
        (policy("api.example.com"), "http://api.example.com/x", None),
        (policy("API.Example.com"), "http://api.example.com/x", None),
        (policy("other.example.com"), "http://api.example.com/x", "ACTIONRELAY_ALLOW_HTTP_HOSTS"),
        (policy("*"), "http://api.example.com/x", None),
        (policy(), "https://api.example.com/x", None),
        # schemes
        (policy("*"), "ftp://api.example.com/x", "scheme 'ftp' is refused"),
        (policy("*"), "file:///etc/passwd", "scheme 'file' is refused"),
        # literal addresses, checked before any connection
        (policy(), "https://127.0.0.1/x", "loopback"),
        (policy(private_networks="127.0.0.0/8"), "https://127.0.0.1/x", None),
        (policy(), "https://[::1]:8443/x", "loopback"),
        (policy(private_networks="::1"), "https://[::1]:8443/x", None),
        (policy(), "https://[::ffff:127.0.0.1]/x", "loopback"),
        (policy(), "https://169.254.169.254/latest/meta-data", "link-local"),
        (policy(private_networks="169.254.0.0/16"), "https://169.254.169.254/", None),
        (policy(), "https://10.0.0.5/x", "private"),
        (policy(private_networks="10.0.0.0/8"), "https://10.0.0.5/x", None),
        (policy(private_networks="10.0.0.0/24"), "https://10.0.1.5/x", "private"),
        (policy(), "https://0.0.0.0/x", "unspecified"),
        (policy(private_networks="*"), "https://0.0.0.0/x", None),
        (policy(), "https://224.0.0.1/x", "multicast"),
        (policy(private_networks="224.0.0.0/4"), "https://224.0.0.1/x", None),
        (policy(), "https://100.100.100.200/latest/meta-data", "non-global"),
        (policy(private_networks="100.64.0.0/10"), "https://100.100.100.200/", None),
        (policy(), "https://93.184.216.34/x", None),
        # names are checked after resolution (GuardedResolver), not here
        (policy(), "https://localhost/x", None),
    ],
)
def test_check_url(rules: EgressPolicy, url: str, refusal: str | None) -> None:
    if refusal is None:
        rules.check_url(URL(url))
        return
    with pytest.raises(ForbiddenDestination, match=refusal.replace("*", r"\*")) as failure:
        rules.check_url(URL(url))
    assert failure.value.status == "invalid"
    assert failure.value.error_type == "forbidden_destination"
    assert not failure.value.retryable


@pytest.mark.parametrize(
    ("networks", "address", "allowed"),
    [
        ("", "127.0.0.1", False),
        ("127.0.0.1/32", "127.0.0.1", True),
        ("127.0.0.1/32", "127.0.0.2", False),
        ("127.0.0.0/8, ::1/128", "::1", True),
        ("10.0.0.0/8", "192.168.0.1", False),
        ("192.168.0.0/16", "192.168.0.1", True),
        ("", "169.254.169.254", False),
        ("169.254.169.254", "169.254.169.254", True),
        ("", "8.8.8.8", True),
    ],
)
def test_check_address(networks: str, address: str, allowed: bool) -> None:
    rules = policy(private_networks=networks)
    if allowed:
        rules.check_address("host.test", ipaddress.ip_address(address))
        return
    with pytest.raises(ForbiddenDestination, match="ACTIONRELAY_ALLOW_PRIVATE_NETWORKS") as exc:
        rules.check_address("host.test", ipaddress.ip_address(address))
    assert f"host.test resolves to {address}" in exc.value.message


def test_parse_networks() -> None:
    assert parse_networks(" 10.0.0.0/8 , 127.0.0.1,, ::1 ") == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )
    assert parse_networks("10.1.2.3/8") == (ipaddress.ip_network("10.0.0.0/8"),)
    assert len(parse_networks(" * ")) == 2
    assert parse_networks("") == ()
    with pytest.raises(ValueError, match="does not appear to be"):
        parse_networks("not-a-network")


def test_describe_says_what_is_allowed() -> None:
    assert describe(STRICT) == {
        "http_hosts": "none (https only)",
        "private_networks": "none",
    }
    assert describe(policy("b.test,a.test", "10.0.0.0/8")) == {
        "http_hosts": ["a.test", "b.test"],
        "private_networks": ["10.0.0.0/8"],
    }


class StaticResolver(AbstractResolver):
    """Answers every name with fixed addresses, as a DNS server under someone's control."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        pass


async def test_resolver_refuses_a_name_that_resolves_only_to_refused_addresses() -> None:
    resolver = GuardedResolver(STRICT, StaticResolver("127.0.0.1", "169.254.169.254"))
    with pytest.raises(ForbiddenDestination, match=r"rebind\.test resolves to 127\.0\.0\.1"):
        await resolver.resolve("rebind.test", 443)


async def test_resolver_keeps_only_the_allowed_addresses() -> None:
    resolver = GuardedResolver(STRICT, StaticResolver("10.0.0.1", "93.184.216.34"))
    [kept] = await resolver.resolve("mixed.test", 443)
    assert kept["host"] == "93.184.216.34"


async def test_resolver_allows_listed_private_networks() -> None:
    rules = policy(private_networks="10.0.0.0/8")
    resolver = GuardedResolver(rules, StaticResolver("10.0.0.1"))
    assert [r["host"] for r in await resolver.resolve("internal.test", 443)] == ["10.0.0.1"]
