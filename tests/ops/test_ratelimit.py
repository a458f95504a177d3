"""Rate limits per client address (DESIGN §4): reads, strict paths, trusted proxies,
Redis shared between replicas. SQLite only: the limiter never touches the database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.core.config import Settings
from service.main import create_app
from service.web.edge import TrustedProxies
from tests.conftest import BASE_URL, assert_problem
from tests.ops.conftest import wait_unless_window_lasts

DAY = 86400
HOUR = 3600


@pytest.fixture
def db_url(sqlite_db_url: str) -> str:
    return sqlite_db_url


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # Day-long windows: a test's requests never straddle a window boundary
    # (checked with wait_unless_window_lasts for the last seconds before midnight UTC).
    return {"rate_limit_reads": "3/day", "rate_limit_strict": "2/day"}


@pytest.fixture(autouse=True)
def _same_window() -> None:
    wait_unless_window_lasts(DAY)


def client_at(app: Any, address: str) -> TestClient:
    return TestClient(app, base_url=BASE_URL, raise_server_exceptions=False, client=(address, 40000))


def assert_limited(r: Any, limit: int, window: int, *, read: bool = True) -> dict[str, Any]:
    body = assert_problem(r, 429)
    assert body["type"] == "/problems/rate-limited"
    assert body["limit"] == limit and body["window_s"] == window
    retry = int(r.headers["retry-after"])
    assert 1 <= retry <= window
    assert r.headers["ratelimit-limit"] == str(limit)
    assert r.headers["ratelimit-remaining"] == "0"
    assert r.headers["ratelimit-reset"] == str(retry)
    assert r.headers["ratelimit-policy"] == f"{limit};w={window}"
    assert r.headers["x-content-type-options"] == "nosniff"
    if read:  # a browser may read why; writes stay closed to other origins
        assert r.headers["access-control-allow-origin"] == "*"
    else:
        assert "access-control-allow-origin" not in r.headers
    return body


def test_reads_are_limited_per_address_with_headers(app: Any) -> None:
    with client_at(app, "198.51.100.10") as c, client_at(app, "198.51.100.11") as other:
        remaining = []
        for _ in range(3):
            r = c.get("/v1/events")
            assert r.status_code == 200
            remaining.append(r.headers["ratelimit-remaining"])
            assert r.headers["ratelimit-limit"] == "3"
            assert 1 <= int(r.headers["ratelimit-reset"]) <= DAY
        assert remaining == ["2", "1", "0"]
        assert_limited(c.get("/v1/events"), 3, DAY)
        assert_limited(c.post("/v1/schools", json={}), 3, DAY, read=False)  # writes count too
        assert other.get("/v1/events").status_code == 200  # another address has its own budget


def test_strict_paths_have_their_own_smaller_limit(app: Any) -> None:
    with client_at(app, "198.51.100.20") as c:
        for _ in range(2):
            r = c.post("/v1/oauth/token", data={"grant_type": "client_credentials"})
            assert r.status_code == 401
            assert r.headers["ratelimit-limit"] == "2"
        r = c.post("/v1/oauth/token", data={"grant_type": "client_credentials"})
        assert_limited(r, 2, DAY, read=False)  # problem+json even on the token endpoint (DESIGN §1)
        for _ in range(2):
            assert c.get("/v1/verify", params={"name": "Zen"}).status_code != 429
        assert_limited(c.get("/v1/verify", params={"name": "Zen"}), 2, DAY)
        # Each strict path has its own budget, separate from the reads budget.
        assert c.get("/v1/events").headers["ratelimit-remaining"] == "2"


def test_liveness_is_never_limited(app: Any) -> None:
    with client_at(app, "198.51.100.30") as c:
        for _ in range(5):
            r = c.get("/healthz")
            assert r.status_code == 200
            assert "ratelimit-limit" not in r.headers


@pytest.mark.parametrize(
    "settings_overrides", [{"rate_limit_reads": "1/day", "trusted_proxies": "10.0.0.0/8"}]
)
def test_forwarded_for_is_believed_only_from_trusted_proxies(app: Any) -> None:
    with client_at(app, "10.1.2.3") as proxy, client_at(app, "192.0.2.50") as stranger:
        # Behind the trusted proxy every client has its own budget ...
        assert proxy.get("/v1/events", headers={"X-Forwarded-For": "203.0.113.1"}).status_code == 200
        assert proxy.get("/v1/events", headers={"X-Forwarded-For": "203.0.113.2"}).status_code == 200
        assert proxy.get("/v1/events", headers={"X-Forwarded-For": "203.0.113.1"}).status_code == 429
        # ... and a spoofed left-most entry does not buy a new one: the right-most
        # untrusted address (the one the proxy saw) is the client.
        spoofed = proxy.get("/v1/events", headers={"X-Forwarded-For": "198.18.0.9, 203.0.113.2"})
        assert spoofed.status_code == 429
        # An untrusted peer's X-Forwarded-For is ignored: its own address counts.
        assert stranger.get("/v1/events", headers={"X-Forwarded-For": "203.0.113.3"}).status_code == 200
        assert stranger.get("/v1/events", headers={"X-Forwarded-For": "203.0.113.4"}).status_code == 429


def test_trusted_proxy_chain_resolution() -> None:
    proxies = TrustedProxies(["10.0.0.0/8", "2001:db8::/32", "proxy.internal"])
    assert proxies.client("192.0.2.1", [b"203.0.113.9"]) == "192.0.2.1"
    assert proxies.client("10.0.0.1", [b"203.0.113.9"]) == "203.0.113.9"
    assert proxies.client("10.0.0.1", [b"203.0.113.9, 10.0.0.7"]) == "203.0.113.9"
    assert proxies.client("10.0.0.1", [b"1.1.1.1", b"203.0.113.9"]) == "203.0.113.9"
    assert proxies.client("2001:db8::1", [b"2001:db8::2, 2001:db8:ffff::5"]) == "2001:db8::2"
    assert proxies.client("::ffff:10.0.0.1", [b"203.0.113.9"]) == "203.0.113.9"
    assert proxies.client("proxy.internal", [b"203.0.113.9"]) == "203.0.113.9"
    assert proxies.client("10.0.0.1", [b"garbage, 203.0.113.9"]) == "203.0.113.9"
    assert proxies.client("10.0.0.1", [b"203.0.113.9, garbage"]) == "10.0.0.1"  # stop at the bad hop
    assert proxies.client("10.0.0.1", [b"10.0.0.2, 10.0.0.3"]) == "10.0.0.2"
    assert proxies.client("10.0.0.1", []) == "10.0.0.1"
    assert not TrustedProxies([])


# --- Redis -------------------------------------------------------------------------


@pytest.fixture
def redis_apps(redis_url: str, settings: Settings) -> Iterator[tuple[Any, Any, str]]:
    """Two apps (replicas) sharing Redis, and an address no other run uses."""
    import redis

    shared = settings.model_copy(update={"rate_limit_storage": redis_url, "rate_limit_reads": "3/hour"})
    address = f"2001:db8:{uuid.uuid4().hex[:4]}::{uuid.uuid4().hex[:4]}"
    yield create_app(shared), create_app(shared), address
    conn = redis.Redis.from_url(redis_url)
    for key in conn.scan_iter(match=f"imi*{address}*"):
        conn.delete(key)


@pytest.mark.redis
def test_redis_backed_limits_are_shared_between_replicas(redis_apps: tuple[Any, Any, str]) -> None:
    wait_unless_window_lasts(HOUR)
    first, second, address = redis_apps
    with client_at(first, address) as a, client_at(second, address) as b:
        assert a.get("/v1/events").headers["ratelimit-remaining"] == "2"
        assert b.get("/v1/events").headers["ratelimit-remaining"] == "1"
        assert a.get("/v1/events").headers["ratelimit-remaining"] == "0"
        assert_limited(b.get("/v1/events"), 3, HOUR)
        assert_limited(a.get("/v1/events"), 3, HOUR)


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_storage": "redis://127.0.0.1:9/0"}])
def test_unreachable_redis_fails_open(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    for _ in range(4):
        r = client.get("/v1/events")
        assert r.status_code == 200
        assert "ratelimit-limit" not in r.headers
    warnings = [r for r in caplog.records if r.name == "service.web.ratelimit"]
    assert len(warnings) == 1  # logged once per 30 s, not per request
