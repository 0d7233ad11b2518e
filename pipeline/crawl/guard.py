"""SSRF guard: the crawler never connects to loopback, private, link-local or otherwise internal addresses."""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_reqrep import ClientRequest
from aiohttp.connector import Connection
from aiohttp.resolver import DefaultResolver
from aiohttp.tracing import Trace

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Ranges the ipaddress module does not flag in every Python version we support.
_CARRIER_GRADE_NAT = ipaddress.IPv4Network("100.64.0.0/10")
# NAT64 prefixes: on a NAT64 network these reach the embedded IPv4 address, so that address decides.
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")
# Aborted TLS transports leak before CPython 3.12.8 / 3.13.1; aiohttp warns if the cleanup is asked for later.
_NEEDS_CLEANUP_CLOSED = sys.version_info < (3, 12, 8) or (3, 13, 0) <= sys.version_info < (3, 13, 1)


class AddressForbiddenError(OSError):
    """A host resolved to (or is) an address the crawler must not contact."""

    def __init__(self, host: str, address: str) -> None:
        shown = address if host == address else f"{host} -> {address}"
        super().__init__(f"{shown} is not a public address")
        self.host = host
        self.address = address


def _parse_address(address: str | IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return address
    return ipaddress.ip_address(address.strip("[]"))


def _destination(address: IPAddress) -> IPAddress:
    """The address a connection really goes to: the IPv4 one inside IPv4-mapped and NAT64 addresses."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _is_internal(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and (address in _NAT64_LOCAL_USE or address.is_site_local):
        return True
    if isinstance(address, ipaddress.IPv4Address) and address in _CARRIER_GRADE_NAT:
        return True
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_unspecified
        or address.is_multicast
        or address.is_reserved
    )


def _normalise_host(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()


@dataclass(frozen=True)
class AddressPolicy:
    """Which internal hosts the crawler may still contact: host names, IP addresses or CIDR networks.

    Everything else that resolves to an internal address is refused; the empty policy allows no internal
    address at all.
    """

    allowed_hosts: frozenset[str] = frozenset()
    _allowed_names: frozenset[str] = field(init=False, repr=False, compare=False)
    _allowed_networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in self.allowed_hosts:
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                if "/" in entry or ":" in entry:
                    raise ValueError(
                        f"allowed host {entry!r} is neither a host name nor an IP network"
                    ) from None
                names.add(_normalise_host(entry))
        object.__setattr__(self, "_allowed_names", frozenset(names))
        object.__setattr__(self, "_allowed_networks", tuple(networks))

    def is_forbidden(self, address: str | IPAddress) -> bool:
        """True when the address is internal (loopback, private, link-local, ...) and not allow-listed."""
        parsed = _parse_address(address)
        destination = _destination(parsed)
        if self._is_allowed_address(parsed) or self._is_allowed_address(destination):
            return False
        if _is_internal(destination):
            return True
        # A 6to4 address reaches its embedded IPv4 address wherever a 6to4 relay routes it.
        sixtofour = destination.sixtofour if isinstance(destination, ipaddress.IPv6Address) else None
        return sixtofour is not None and _is_internal(sixtofour)

    def is_allowed_name(self, host: str) -> bool:
        """True when the host name itself is allow-listed, whatever it resolves to."""
        return _normalise_host(host) in self._allowed_names

    def check_resolved(self, host: str, addresses: Iterable[str | IPAddress]) -> None:
        """Raise AddressForbiddenError unless every address the host resolved to may be contacted."""
        if self.is_allowed_name(host):
            return
        for address in addresses:
            if self.is_forbidden(address):
                raise AddressForbiddenError(host, str(address))

    def check_literal_host(self, host: str) -> None:
        """Raise AddressForbiddenError when the host is an IP literal that may not be contacted.

        Host names pass here; the GuardedResolver checks what they resolve to.
        """
        try:
            address = _parse_address(host)
        except ValueError:
            return
        self.check_resolved(host, [address])

    def _is_allowed_address(self, address: IPAddress) -> bool:
        return any(
            address.version == network.version and address in network for network in self._allowed_networks
        )


class GuardedResolver(AbstractResolver):
    """Resolves through another resolver and refuses names that lead to forbidden addresses.

    The check runs on the resolved addresses, which are the ones the connector then connects to, so a
    public-looking name pointing at 10.x (or rebinding to it) is refused.
    """

    def __init__(self, address_policy: AddressPolicy, inner: AbstractResolver | None = None) -> None:
        self.address_policy = address_policy
        self._inner = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve like the inner resolver, then refuse the whole answer if any address is forbidden."""
        results = await self._inner.resolve(host, port, family)
        self.address_policy.check_resolved(host, (result["host"] for result in results))
        return results

    async def close(self) -> None:
        """Close the inner resolver."""
        await self._inner.close()


class GuardedConnector(aiohttp.TCPConnector):
    """A TCPConnector that enforces an AddressPolicy on every connection, whoever makes the request.

    aiohttp never calls the resolver for IP-literal hosts, so those are checked here before connecting.
    Refusals surface as aiohttp.ClientConnectorError whose os_error is an AddressForbiddenError.
    """

    def __init__(
        self,
        address_policy: AddressPolicy,
        *,
        limit: int = 100,
        ttl_dns_cache: int = 300,
        inner_resolver: AbstractResolver | None = None,
    ) -> None:
        super().__init__(
            resolver=GuardedResolver(address_policy, inner_resolver),
            limit=limit,
            ttl_dns_cache=ttl_dns_cache,
            enable_cleanup_closed=_NEEDS_CLEANUP_CLOSED,
        )
        self.address_policy = address_policy

    async def connect(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 - aiohttp's BaseConnector.connect signature
    ) -> Connection:
        """Refuse forbidden IP-literal hosts before taking a connection."""
        try:
            self.address_policy.check_literal_host(req.url.raw_host or "")
        except AddressForbiddenError as error:
            raise aiohttp.ClientConnectorError(req.connection_key, error) from error
        return await super().connect(req, traces, timeout)
