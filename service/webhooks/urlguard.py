"""Address safety for webhook URLs (DESIGN §5): which hosts a webhook may reach.

A URL is acceptable when it is ``http``/``https`` with a host, no user info
and no fragment, and **every** address its host resolves to falls in an
allowed class (``IMI_WEBHOOK_TARGETS``: ``public``, ``private``,
``loopback``). Addresses are classified after unwrapping IPv4-mapped
(``::ffff:a.b.c.d``), NAT64 (``64:ff9b::/96``), 6to4 and Teredo forms, and
host spellings are read the way ``inet_aton``/WHATWG URL parsers read them
(``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``, a trailing dot), so no
spelling of a loopback or private address passes as a name.

Classes and what they contain (anything else is never reachable):

- ``loopback``: 127.0.0.0/8, ::1, and ``localhost``/``*.localhost`` names (RFC 6761, no DNS)
- ``private``: RFC 1918, RFC 4193 unique-local (fc00::/7) and CGNAT shared space 100.64.0.0/10 (RFC 6598)
- ``public``: globally routable unicast (``ipaddress`` ``is_global``)
- never: unspecified, link-local (169.254/16 — cloud metadata —, fe80::/10), multicast,
  broadcast, documentation/benchmarking/reserved ranges, local-use NAT64 (64:ff9b:1::/48),
  and NAT64/6to4/Teredo forms of any non-public address.

Plain ``http`` reaches only ``loopback`` and ``private`` addresses (local
sandboxes, in-cluster receivers); a public receiver must use ``https``.

Name resolution goes through ONE injectable resolver (:func:`set_resolver`),
so tests give it fixed answers and never query DNS. The worker resolves and
checks at every attempt and connects only to the addresses it checked
(:class:`service.webhooks.sender.Sender`; Host header and TLS SNI stay the name).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``async resolver(host, port) -> ["93.184.216.34", "2606:2800::1"]``
Resolver = Callable[[str, int], Awaitable[list[str]]]

MAX_URL_LENGTH = 2000
#: How long the default resolver remembers an answer (seconds).
RESOLVER_CACHE_S = 30.0

#: Class label -> the ``IMI_WEBHOOK_TARGETS`` class that allows it (labels absent here never pass).
_ALLOWED_BY = {"public": "public", "private": "private", "cgnat": "private", "loopback": "loopback"}

_V4_NEVER = [
    (ipaddress.ip_network(n), label)
    for n, label in (
        ("0.0.0.0/8", "unspecified"),
        ("169.254.0.0/16", "link-local"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("240.0.0.0/4", "reserved"),
        ("192.0.0.0/24", "reserved"),
        ("192.0.2.0/24", "reserved"),
        ("198.18.0.0/15", "reserved"),
        ("198.51.100.0/24", "reserved"),
        ("203.0.113.0/24", "reserved"),
        ("192.88.99.0/24", "reserved"),
    )
]
_V4_CLASSES = [
    (ipaddress.ip_network(n), label)
    for n, label in (
        ("127.0.0.0/8", "loopback"),
        ("10.0.0.0/8", "private"),
        ("172.16.0.0/12", "private"),
        ("192.168.0.0/16", "private"),
        ("100.64.0.0/10", "cgnat"),
    )
]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_V6_CLASSES = [
    (ipaddress.ip_network(n), label)
    for n, label in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("fe80::/10", "link-local"),
        ("ff00::/8", "multicast"),
        ("fc00::/7", "private"),
        ("fec0::/10", "reserved"),
        ("2001:db8::/32", "reserved"),
        ("100::/64", "reserved"),
        ("::/96", "reserved"),  # IPv4-compatible (deprecated)
    )
]


class TargetRefused(Exception):
    """A URL or address a webhook may not reach; ``reason`` is for humans (no secrets)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CheckedTarget:
    """A checked URL: scheme, host (as written), port, and the allowed addresses it resolved to."""

    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


# --- classification -----------------------------------------------------------------


# Pure and asked at every attempt for the same few addresses: remembered (bounded).
@functools.lru_cache(maxsize=4096)
def classify(address: IPAddress) -> str:
    """The class label of one address (pure, no DNS).

    Labels: ``public``, ``private``, ``cgnat``, ``loopback``, ``link-local``,
    ``multicast``, ``broadcast``, ``unspecified``, ``reserved``. IPv4-mapped
    addresses take the class of the IPv4 address (a dual-stack socket reaches
    it); NAT64, 6to4 and Teredo forms are ``public`` only when the embedded
    IPv4 address is, else ``reserved``.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return classify(address.ipv4_mapped)
        if address in _NAT64_LOCAL:
            return "reserved"
        embedded: ipaddress.IPv4Address | None = None
        if address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        elif address.sixtofour is not None:
            embedded = address.sixtofour
        elif address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is not None:
            return "public" if classify(embedded) == "public" else "reserved"
        for net, label in _V6_CLASSES:
            if address in net:
                return label
        return "public" if address.is_global else "reserved"
    for net, label in _V4_NEVER:
        if address in net:
            return label
    for net, label in _V4_CLASSES:
        if address in net:
            return label
    return "public" if address.is_global else "reserved"


def allowed_class(label: str, allowed: Iterable[str]) -> bool:
    """True when an address labelled ``label`` may be reached under ``allowed`` classes."""
    target = _ALLOWED_BY.get(label)
    return target is not None and target in set(allowed)


# --- host spellings -------------------------------------------------------------------


def _ipv4_number(part: str) -> int | None:
    """One WHATWG/inet_aton IPv4 part: ``0x..`` hex, ``0..`` octal, else decimal; ``None`` if not a number."""
    if part == "":
        return None
    base = 10
    if part[:2].lower() == "0x":
        part, base = part[2:], 16
        if part == "":
            return 0
    elif len(part) > 1 and part[0] == "0":
        part, base = part[1:], 8
    try:
        return int(part, base) if part.isascii() and part.isalnum() else None
    except ValueError:
        return None


def parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """Read ``host`` as an IPv4 address in any spelling inet_aton accepts, else ``None``.

    ``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1`` and ``127.0.0.1.`` are
    all 127.0.0.1. Raises :class:`TargetRefused` for a host that ends in a
    number but is no valid address (WHATWG URL: "ends in a number").
    """
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts = parts[:-1]
    numbers = [_ipv4_number(p) for p in parts]
    if numbers and numbers[-1] is None:
        return None
    if len(parts) > 4 or any(n is None for n in numbers):
        raise TargetRefused(f"the host {host!r} ends in a number but is not an IPv4 address")
    values = [n for n in numbers if n is not None]
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(values)):
        raise TargetRefused(f"the host {host!r} is not a valid IPv4 address")
    value = last
    for i, v in enumerate(head):
        value += v << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


@functools.lru_cache(maxsize=4096)
def parse_ip_literal(host: str) -> IPAddress | None:
    """An IP address written as ``host`` (IPv6, bracketed or not; IPv4 in any spelling), else ``None``."""
    bare = host.strip()
    if bare.startswith("[") and bare.endswith("]"):
        bare = bare[1:-1]
    if ":" in bare:
        try:
            addr = ipaddress.IPv6Address(bare.split("%", 1)[0])
        except ValueError as exc:
            raise TargetRefused(f"the host {host!r} is not a valid IPv6 address") from exc
        return addr
    return parse_ipv4(bare)


def _is_localhost_name(host: str) -> bool:
    name = host.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


# --- resolver ---------------------------------------------------------------------------


_cache: dict[tuple[str, int], tuple[float, list[str]]] = {}


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (``getaddrinfo``), with a short cache."""
    key = (host, port)
    hit = _cache.get(key)
    now = time.monotonic()
    if hit is not None and now - hit[0] < RESOLVER_CACHE_S:
        return hit[1]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))
    if len(_cache) > 4096:
        _cache.clear()
    _cache[key] = (now, addresses)
    return addresses


_resolver: Resolver = system_resolver


def set_resolver(resolver: Resolver) -> Resolver:
    """Install the process-wide resolver; returns the previous one (tests restore it)."""
    global _resolver
    previous, _resolver = _resolver, resolver
    return previous


def get_resolver() -> Resolver:
    """The resolver in use."""
    return _resolver


# --- checks ----------------------------------------------------------------------------------


async def resolve_checked(host: str, port: int, allowed: Iterable[str]) -> list[IPAddress]:
    """Every address of ``host`` (literal, ``localhost`` or via the resolver), all of them allowed.

    Raises :class:`TargetRefused` when the host does not resolve or any of
    its addresses lies outside ``allowed``.
    """
    allowed = frozenset(allowed)
    literal = parse_ip_literal(host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    elif _is_localhost_name(host):
        addresses = [ipaddress.IPv4Address("127.0.0.1")]
    else:
        try:
            answers = await _resolver(host.rstrip("."), port)
        except (OSError, UnicodeError) as exc:
            raise TargetRefused(f"the host {host!r} does not resolve") from exc
        try:
            addresses = [ipaddress.ip_address(a) for a in answers]
        except ValueError as exc:
            raise TargetRefused(f"the host {host!r} resolved to something that is not an address") from exc
        if not addresses:
            raise TargetRefused(f"the host {host!r} does not resolve")
    for address in addresses:
        label = classify(address)
        if not allowed_class(label, allowed):
            raise TargetRefused(
                f"the host {host!r} resolves to {address} ({label}); webhooks may reach only "
                f"{', '.join(sorted(allowed))} addresses (IMI_WEBHOOK_TARGETS)"
            )
    return addresses


def parse_url(url: str) -> httpx.URL:
    """Parse and check the shape of a webhook URL (no DNS).

    Raises :class:`TargetRefused` unless it is an absolute ``http``/``https``
    URL with a host, a port in 1–65535, without user info or fragment, at most 2000
    characters.
    """
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise TargetRefused(f"not a valid URL: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise TargetRefused("the URL must use http or https")
    if not parsed.host:
        raise TargetRefused("the URL must name a host")
    if parsed.userinfo:
        raise TargetRefused("the URL must not carry user info (credentials belong in your receiver's secret)")
    if parsed.fragment:
        raise TargetRefused("the URL must not have a fragment")
    # httpx accepts any digits as a port; other parsers (urllib, the audit log's) do not.
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise TargetRefused("the port must be between 1 and 65535")
    return parsed


async def check_url(url: str, *, allowed: Iterable[str]) -> CheckedTarget:
    """Check a webhook URL completely: shape, resolution and address classes.

    ``http`` is accepted only when every address is loopback or private.
    Raises :class:`TargetRefused` with a reason fit for a 422 problem.
    """
    parsed = parse_url(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    addresses = await resolve_checked(parsed.host, port, allowed)
    if parsed.scheme == "http" and any(classify(a) == "public" for a in addresses):
        raise TargetRefused("a receiver on a public address must use https")
    return CheckedTarget(
        scheme=parsed.scheme, host=parsed.host, port=port, addresses=tuple(str(a) for a in addresses)
    )
