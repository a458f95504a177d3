"""Address safety: the refusal table as pure function tests, and a public address accepted
through the injected resolver — nothing is ever sent, nothing is resolved by DNS."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from typing import Any

import pytest

from service.webhooks import urlguard
from tests.conftest import assert_problem

PUBLIC = frozenset({"public"})

# (url, expected class label or refusal fragment)
REFUSED = [
    ("http://127.0.0.1/hook", "loopback"),
    ("http://127.255.255.254/hook", "loopback"),
    ("http://2130706433/hook", "loopback"),  # decimal
    ("http://0x7f.1/hook", "loopback"),  # hex, short form
    ("http://0x7f000001/hook", "loopback"),
    ("http://0177.0.0.1/hook", "loopback"),  # octal (httpx refuses to parse it at all)
    ("http://127.1/hook", "loopback"),  # short form
    ("http://127.0.0.1./hook", "loopback"),  # trailing dot
    ("http://localhost/hook", "loopback"),
    ("http://localhost./hook", "loopback"),
    ("http://api.localhost/hook", "loopback"),
    ("http://[::1]/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),  # IPv4-mapped
    ("http://[::ffff:7f00:1]/hook", "loopback"),
    ("http://10.0.0.1/hook", "private"),
    ("http://172.16.5.4/hook", "private"),
    ("http://192.168.1.1/hook", "private"),
    ("http://[::ffff:192.168.1.1]/hook", "private"),
    ("http://[fd00::1]/hook", "private"),
    ("http://100.64.0.1/hook", "cgnat"),
    ("http://100.127.255.254/hook", "cgnat"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("http://[fe80::1]/hook", "link-local"),
    ("http://224.0.0.1/hook", "multicast"),
    ("http://[ff02::1]/hook", "multicast"),
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://0/hook", "unspecified"),
    ("http://[::]/hook", "unspecified"),
    ("http://255.255.255.255/hook", "broadcast"),
    ("http://240.0.0.1/hook", "reserved"),
    ("http://192.0.2.10/hook", "reserved"),
    ("http://198.18.0.1/hook", "reserved"),
    ("http://[2001:db8::1]/hook", "reserved"),
    ("http://[64:ff9b::7f00:1]/hook", "reserved"),  # NAT64 of 127.0.0.1
    ("http://[64:ff9b::a00:1]/hook", "reserved"),  # NAT64 of 10.0.0.1
    ("http://[64:ff9b:1::1]/hook", "reserved"),  # local-use NAT64
    ("http://[2002:7f00:1::1]/hook", "reserved"),  # 6to4 of 127.0.0.1
]


def check(url: str, allowed: frozenset[str] = PUBLIC) -> urlguard.CheckedTarget:
    return asyncio.run(urlguard.check_url(url, allowed=allowed))


@pytest.mark.parametrize(("url", "label"), REFUSED)
def test_address_table_is_refused_under_public(url: str, label: str) -> None:
    with pytest.raises(urlguard.TargetRefused) as info:
        check(url)
    if "0177" not in url:
        assert f"({label})" in info.value.reason


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("0x7f.0.0.0x1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("192.168.257", "192.168.1.1"),
        ("1.2.3.4", "1.2.3.4"),
    ],
)
def test_ipv4_spellings(host: str, expected: str) -> None:
    assert urlguard.parse_ipv4(host) == ipaddress.IPv4Address(expected)


@pytest.mark.parametrize("host", ["example.com", "123.example.com", "a1b2", "xn--bcher-kva.example"])
def test_names_are_not_addresses(host: str) -> None:
    assert urlguard.parse_ipv4(host) is None


@pytest.mark.parametrize("host", ["1.2.3.4.5", "256.1.1.1", "foo.0x7f", "1.2.3.4294967296"])
def test_hosts_ending_in_a_number_that_are_no_address_are_refused(host: str) -> None:
    with pytest.raises(urlguard.TargetRefused):
        urlguard.parse_ipv4(host)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "http:///nohost",
        "https://user:secret@hooks.example.org/x",
        "https://hooks.example.org/x#frag",
        "not a url",
        "https://hooks.example.org/" + "a" * 2000,
    ],
)
def test_url_shape_is_refused(url: str, fixed_resolver: dict[str, list[str]]) -> None:
    fixed_resolver["hooks.example.org"] = ["93.184.216.34"]
    with pytest.raises(urlguard.TargetRefused):
        check(url)


def test_public_address_is_accepted_through_the_injected_resolver(
    fixed_resolver: dict[str, list[str]],
) -> None:
    fixed_resolver["hooks.example.org"] = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]
    target = check("https://hooks.example.org/imi")
    assert target.host == "hooks.example.org" and target.port == 443
    assert target.addresses == ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946")
    # NAT64 of a public address is public too.
    assert urlguard.classify(ipaddress.ip_address("64:ff9b::5db8:d822")) == "public"


def test_a_name_with_any_private_address_is_refused(fixed_resolver: dict[str, list[str]]) -> None:
    fixed_resolver["rebind.example.org"] = ["93.184.216.34", "10.0.0.7"]
    with pytest.raises(urlguard.TargetRefused, match=r"10\.0\.0\.7 \(private\)"):
        check("https://rebind.example.org/x")


def test_unknown_name_is_refused_without_dns() -> None:
    with pytest.raises(urlguard.TargetRefused, match="does not resolve"):
        check("https://nowhere.invalid/x")


def test_public_receivers_need_https(fixed_resolver: dict[str, list[str]]) -> None:
    fixed_resolver["hooks.example.org"] = ["93.184.216.34"]
    with pytest.raises(urlguard.TargetRefused, match="https"):
        check("http://hooks.example.org/x")


def test_classes_follow_the_setting() -> None:
    assert check("http://127.0.0.1:9/x", frozenset({"loopback"})).addresses == ("127.0.0.1",)
    assert check("http://10.1.2.3/x", frozenset({"private"})).addresses == ("10.1.2.3",)
    assert check("http://100.64.1.1/x", frozenset({"private"})).addresses == ("100.64.1.1",)
    with pytest.raises(urlguard.TargetRefused):
        check("http://10.1.2.3/x", frozenset({"loopback"}))
    for never in ("http://169.254.169.254/", "http://0.0.0.0/", "http://224.0.0.1/"):
        with pytest.raises(urlguard.TargetRefused):
            check(never, frozenset({"public", "private", "loopback"}))


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"webhook_targets": "public"}


def test_registration_refuses_with_a_422_problem_and_accepts_public(
    client: Any,
    manager: dict[str, str],
    fixed_resolver: dict[str, list[str]],
    session_factory: Callable[[], Any],
) -> None:
    for url in ("http://127.0.0.1:8000/hook", "http://2130706433/", "http://[::ffff:10.0.0.1]/"):
        r = client.post("/v1/webhooks/endpoints", json={"url": url}, headers=manager)
        body = assert_problem(r, 422)
        assert "not allowed" in body["detail"]
    fixed_resolver["hooks.example.org"] = ["93.184.216.34"]
    r = client.post("/v1/webhooks/endpoints", json={"url": "https://hooks.example.org/imi"}, headers=manager)
    assert r.status_code == 201, r.text
    assert r.json()["url"] == "https://hooks.example.org/imi"
    # Nothing was sent: registering never sends, and no worker runs in this module.
    import sqlalchemy as sa

    from service.webhooks.models import WebhookDelivery

    with session_factory() as s:
        assert s.execute(sa.select(sa.func.count()).select_from(WebhookDelivery)).scalar_one() == 0
