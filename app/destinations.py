"""Where the gateway may send a request on a client's behalf (a webhook): never to this
machine, a private network, link-local (cloud metadata), multicast or reserved
addresses, in IPv4 or IPv6, however the address is written (decimal, hex, octal, short
forms, IPv4 inside IPv6), unless WEBHOOK_ALLOW_PRIVATE names the network.

A name is resolved once and the request goes to the address that was checked, so a
second answer of the DNS (rebinding) cannot move it elsewhere."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class ForbiddenDestination(ValueError):
    pass


def parse_allowed(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """WEBHOOK_ALLOW_PRIVATE: comma-separated networks (CIDR) or addresses."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False)
                 for part in text.split(",") if part.strip())


def _embedded(address: Address) -> list[Address]:
    """An IPv6 address and the IPv4 ones it carries (mapped, 6to4, Teredo, NAT64)."""
    found = [address]
    if isinstance(address, ipaddress.IPv6Address):
        for inner in (address.ipv4_mapped, address.sixtofour,
                      address.teredo[1] if address.teredo else None):
            if inner is not None:
                found.append(inner)
        if address in ipaddress.ip_network("64:ff9b::/96"):
            found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def is_public(address: Address, allowed=()) -> bool:
    if any(address in network for network in allowed if network.version == address.version):
        return True
    return all(a.is_global and not a.is_multicast and not a.is_reserved
               for a in _embedded(address))


@dataclass(frozen=True)
class Destination:
    url: str
    scheme: str
    host: str  # as written, for the Host header and TLS
    port: int
    address: str  # the checked address the request goes to
    path: str


def check_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL, or ForbiddenDestination."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
        raise ForbiddenDestination("must be an http(s) URL")
    if parts.username or parts.password:
        raise ForbiddenDestination("must not carry credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ForbiddenDestination("has an invalid port") from None
    return parts.scheme, parts.hostname, port


def literal_address(host: str) -> Address | None:
    """The address a host names by itself, in any numeric form the resolver accepts."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:  # 2130706433, 0x7f.1, 017700000001, 127.1: inet_aton's forms
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def check_literal(url: str, allowed=()) -> None:
    """What can be refused without asking the DNS (at the request's intake)."""
    _, host, _ = check_url(url)
    address = literal_address(host)
    if host.rstrip(".").lower() == "localhost" or (
            address is not None and not is_public(address, allowed)):
        raise ForbiddenDestination(f"may not point at {host}")


def resolve(url: str, allowed=(), resolver=socket.getaddrinfo) -> Destination:
    """The destination to send to: the first address of the host, once every address
    it resolves to is public (or allowed)."""
    scheme, host, port = check_url(url)
    try:
        infos = resolver(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise ForbiddenDestination(f"{host} does not resolve: {exc}") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses:
        raise ForbiddenDestination(f"{host} does not resolve")
    for address in addresses:
        if not is_public(address, allowed):
            raise ForbiddenDestination(f"{host} resolves to {address}, which is not public")
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Destination(url, scheme, host, port, str(addresses[0]), path)
