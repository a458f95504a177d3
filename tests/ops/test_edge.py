"""Security headers, CORS and request ids on every kind of response (SQLite only:
the edge layers never touch the database)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.responses import Response

from tests.conftest import assert_problem

SECURITY = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "content-security-policy": (
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
}
EXPOSED = {
    "ETag",
    "Link",
    "Content-Language",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "RateLimit-Policy",
    "X-Request-ID",
}


@pytest.fixture
def db_url(sqlite_db_url: str) -> str:
    return sqlite_db_url


def assert_security_headers(response: Any) -> None:
    for name, value in SECURITY.items():
        assert response.headers[name] == value, name
    assert "strict-transport-security" not in response.headers  # http base URL


def test_security_headers_on_success_and_every_kind_of_error(client: TestClient, app: Any) -> None:
    async def boom() -> Response:
        raise RuntimeError("kaput")

    app.add_api_route("/test-boom", boom)
    ok = client.get("/healthz")
    assert ok.status_code == 200
    assert_security_headers(ok)
    missing = client.get("/no/such/path")
    assert_problem(missing, 404)
    assert_security_headers(missing)
    not_allowed = client.delete("/healthz")
    assert_problem(not_allowed, 405)
    assert_security_headers(not_allowed)
    too_large = client.post("/v1/schools", content=b"x" * (1024 * 1024 + 1))
    assert_problem(too_large, 413)
    assert_security_headers(too_large)
    crashed = client.get("/test-boom")
    body = assert_problem(crashed, 500)
    assert "kaput" not in crashed.text and "Traceback" not in crashed.text
    assert body["type"] == "/problems/internal-error"
    assert_security_headers(crashed)
    assert re.fullmatch(r"[0-9a-f]{32}", crashed.headers["x-request-id"])


@pytest.mark.parametrize("settings_overrides", [{"public_base_url": "https://api.example.org"}])
def test_hsts_only_when_the_public_base_url_is_https(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.headers["strict-transport-security"] == "max-age=31536000"


def test_docs_get_a_csp_that_lets_swagger_ui_load(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net" in csp
    assert "frame-ancestors 'none'" in csp
    assert "cdn.jsdelivr.net" in r.text  # the bundle it allows is the one the page loads
    api = client.get("/openapi.json")
    assert api.headers["content-security-policy"] == SECURITY["content-security-policy"]


def test_reads_are_open_to_every_origin(client: TestClient) -> None:
    r = client.get("/v1/events", headers={"Origin": "https://association.example"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
    exposed = {h.strip() for h in r.headers["access-control-expose-headers"].split(",")}
    assert exposed == EXPOSED
    head = client.head("/v1/events", headers={"Origin": "https://association.example"})
    assert head.status_code == 200
    assert head.headers["access-control-allow-origin"] == "*"
    error = client.get("/v1/nothing-here", headers={"Origin": "https://association.example"})
    assert error.status_code == 404
    assert error.headers["access-control-allow-origin"] == "*"


def test_writes_carry_no_cors_headers(client: TestClient) -> None:
    r = client.post(
        "/v1/oauth/token", data={"grant_type": "client_credentials"}, headers={"Origin": "https://x.example"}
    )
    assert r.status_code == 401
    assert not [h for h in r.headers if h.startswith("access-control-")]
    assert_security_headers(r)


def test_preflight_for_a_read_is_allowed(client: TestClient) -> None:
    r = client.options(
        "/v1/standards/training-standards/current",
        headers={
            "Origin": "https://association.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "if-none-match",
        },
    )
    assert r.status_code == 204
    assert r.content == b""
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["access-control-allow-methods"] == "GET, HEAD"
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert "if-none-match" in allowed
    assert "authorization" not in allowed  # no bearer tokens from other sites' pages
    assert r.headers["access-control-max-age"] == "86400"
    assert_security_headers(r)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_preflight_for_a_write_is_refused(client: TestClient, method: str) -> None:
    r = client.options(
        "/v1/schools",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": method},
    )
    body = assert_problem(r, 403)
    assert body["type"] == "/problems/cors-refused"
    assert not [h for h in r.headers if h.startswith("access-control-")]
    assert_security_headers(r)


def test_plain_options_is_left_to_the_app(client: TestClient) -> None:
    r = client.options("/v1/events")
    assert_problem(r, 405)


def test_request_id_is_generated_when_absent(client: TestClient) -> None:
    first = client.get("/healthz").headers["x-request-id"]
    second = client.get("/healthz").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second


def test_request_id_is_echoed_when_well_formed(client: TestClient) -> None:
    rid = "req-2026.11.29:abc_DEF/42"
    assert client.get("/healthz", headers={"X-Request-ID": rid}).headers["x-request-id"] == rid
    problem = client.get("/nope", headers={"X-Request-ID": rid})
    assert problem.headers["x-request-id"] == rid


@pytest.mark.parametrize("bad", ["x" * 129, "has space", 'quo"te', "new\\nline", "<script>", ""], ids=repr)
def test_request_id_is_replaced_when_malformed(client: TestClient, bad: str) -> None:
    r = client.get("/healthz", headers={"X-Request-ID": bad})
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])
