"""Every error is an RFC 9457 problem; paths are exact; HEAD mirrors GET."""

from __future__ import annotations

import base64
import json
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import assert_problem


def test_unknown_path_is_problem_404(client: TestClient) -> None:
    body = assert_problem(client.get("/v1/nothing-here"), 404)
    assert body["type"] == "/problems/not-found"


def test_trailing_slash_is_404_not_redirect(client: TestClient) -> None:
    r = client.get("/v1/events/", follow_redirects=False)
    assert_problem(r, 404)


def test_wrong_method_is_problem_405(client: TestClient) -> None:
    r = client.delete("/v1/events")
    assert_problem(r, 405)
    assert "GET" in r.headers["allow"]


def test_405_allow_lists_every_method_of_the_path(client: TestClient) -> None:
    """RFC 9110 §15.5.6: `Allow` names all methods of the resource, not only those of the
    first route on the path (found by schemathesis: `OPTIONS /v1/schools` said `Allow: GET`)."""
    cases = {
        "/v1/schools": "GET, HEAD, POST",
        "/v1/schools/sch_x": "GET, HEAD, PATCH",
        "/v1/webhooks/endpoints": "GET, HEAD, POST",
        "/v1/webhooks/endpoints/whe_x": "DELETE, GET, HEAD, PATCH",
        "/v1/standards/demo/versions/1.0": "GET, HEAD, PUT",
        "/v1/standards/demo/versions/1.0/publish": "POST",
    }
    for path, allow in cases.items():
        r = client.options(path)
        assert_problem(r, 405)
        assert r.headers["allow"] == allow, path
    r = client.delete("/v1/schools")
    assert_problem(r, 405)
    assert r.headers["allow"] == "GET, HEAD, POST"


def test_nul_characters_are_client_errors(client: TestClient, auth: Any) -> None:
    """PostgreSQL text cannot hold U+0000: a NUL in a path, query, form or JSON value is the
    client's error, never a 500 (found by probing after schemathesis; 500 on PostgreSQL), and
    the same 422 on SQLite (found in review: a webhook description with a NUL was stored there)."""
    r = client.get("/v1/schools/sch_%00")
    body = assert_problem(r, 422)
    assert body["detail"] == "Text must not contain the NUL character (U+0000)."
    manager = auth("webhooks:manage")
    r = client.post(
        "/v1/webhooks/endpoints",
        json={"url": "http://127.0.0.1:9/hook", "event_types": [], "description": "a\u0000b"},
        headers=manager,
    )
    assert assert_problem(r, 422)["detail"] == "Text must not contain the NUL character (U+0000)."
    assert client.get("/v1/webhooks/endpoints", headers=manager).json()["data"] == []  # nothing stored
    r = client.get("/v1/events", params={"type": "a\x00"})
    assert_problem(r, 422)  # NUL (PostgreSQL) or, before that, an unknown event type
    r = client.post(
        "/v1/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "cli_\x00", "client_secret": "s"},
    )
    assert r.status_code == 401
    assert r.json() == {"error": "invalid_client", "error_description": "unknown client or wrong secret"}


def test_tampered_cursors_and_huge_positions_are_422(client: TestClient, auth: Any) -> None:
    """Cursors are opaque but decodable: nested values or integers beyond 64 bits used to reach
    the database and fail there (500 on SQLite and PostgreSQL)."""

    def cursor(position: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()

    steward = auth("registry:write", "webhooks:manage")
    school = client.post("/v1/schools", json={"name": "Cursor School", "country": "CH"}, headers=steward)
    endpoint = client.post(
        "/v1/webhooks/endpoints", json={"url": "http://127.0.0.1:9/hook", "event_types": []}, headers=steward
    )
    assert school.status_code == 201 and endpoint.status_code == 201
    big = cursor({"after": 10**20})
    cases = [
        ("/v1/events", {"after": str(10**20)}),
        ("/v1/events", {"after": str(2**63)}),
        (f"/v1/schools/{school.json()['id']}/alignment/history", {"cursor": big}),
        ("/v1/audit", {"cursor": cursor({"before": 2**63})}),
        ("/v1/webhooks/endpoints", {"cursor": cursor({"id": {"nested": 1}})}),
        (f"/v1/webhooks/endpoints/{endpoint.json()['id']}/deliveries", {"cursor": cursor({"id": [1]})}),
        ("/v1/schools", {"cursor": cursor({"n": 1.5, "i": "x"})}),
        # Lone surrogates (found in review: 500 "surrogates not allowed" on both databases).
        ("/v1/schools", {"cursor": cursor({"n": "\ud800", "i": "x"})}),
        ("/v1/webhooks/endpoints", {"cursor": cursor({"id": "\udfff"})}),
        (f"/v1/webhooks/endpoints/{endpoint.json()['id']}/deliveries", {"cursor": cursor({"id": "\ud800"})}),
    ]
    # Decodable cursors without the member a list reads: once a 200 with the first page.
    forged = cursor({"x": 1})
    school_id, endpoint_id = school.json()["id"], endpoint.json()["id"]
    for path in (
        "/v1/webhooks/endpoints",
        f"/v1/webhooks/endpoints/{endpoint_id}/deliveries",
        f"/v1/schools/{school_id}/alignment/history",
        "/v1/audit",
        "/v1/standards",
        "/v1/standards/training-standards/versions",
        "/v1/schools",
    ):
        cases.append((path, {"cursor": forged}))
    # Empty positions are never issued either (they gave the first page).
    cases += [
        ("/v1/webhooks/endpoints", {"cursor": cursor({"id": ""})}),
        (f"/v1/webhooks/endpoints/{endpoint_id}/deliveries", {"cursor": cursor({"id": ""})}),
        ("/v1/standards/training-standards/versions", {"cursor": cursor({"after": ""})}),
    ]
    for path, params in cases:
        assert_problem(client.get(path, params=params, headers=steward), 422)
    last = client.get("/v1/events", params={"after": str(2**63 - 1)})
    assert last.json() == {"data": [], "next_cursor": None}


def test_body_over_one_mebibyte_is_413(client: TestClient) -> None:
    r = client.post(
        "/v1/oauth/token",
        content=b"x" * (1024 * 1024 + 1),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_problem(r, 413)


def test_a_json_body_sent_as_another_media_type_is_415(client: TestClient) -> None:
    """Sent as text or a form, a JSON body is a 415 saying what is read, not a 422 saying the
    body "should be a valid dictionary"; as JSON (or without a media type) it is read."""
    body = b'{"credential": "not.a.jws"}'
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
        "text/json",
        None,
    ):
        headers = {} if content_type is None else {"Content-Type": content_type}
        r = client.post("/v1/credentials/verify", content=body, headers=headers)
        assert assert_problem(r, 415)["accepted"] == ["application/json"], content_type
    for content_type in ("application/json", "Application/JSON; charset=utf-8"):
        r = client.post("/v1/credentials/verify", content=body, headers={"Content-Type": content_type})
        assert r.json() == {"valid": False, "reason": "malformed", "claims": {}}, content_type
    # No body at all is a 422 naming the missing body; a JSON body that does not validate stays
    # a 422; broken JSON is a 400.
    assert assert_problem(client.post("/v1/credentials/verify"), 422)["errors"][0]["loc"] == ["body"]
    assert_problem(client.post("/v1/credentials/verify", json={"credential": 5}), 422)
    bad = client.post("/v1/credentials/verify", content=b"{", headers={"Content-Type": "application/json"})
    assert_problem(bad, 400)
    # The document says so for every operation with a JSON body.
    for path, item in client.get("/openapi.json").json()["paths"].items():
        for method, operation in item.items():
            media = operation.get("requestBody", {}).get("content", {}) if isinstance(operation, dict) else {}
            if any(m.endswith("json") for m in media):
                assert "415" in operation["responses"], (method, path)


def test_head_mirrors_get(client: TestClient) -> None:
    get = client.get("/healthz")
    head = client.head("/healthz")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]


def test_invalid_query_is_problem_422(client: TestClient) -> None:
    body = assert_problem(client.get("/v1/events?after=-1"), 422)
    assert body["errors"][0]["loc"] == ["query", "after"]


def test_chunked_body_over_one_mebibyte_is_413(client: TestClient) -> None:
    """A body without Content-Length was cut off and parsed: 400 instead of 413 (found by a fresh user)."""

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(33):
            yield b"x" * 32768

    r = client.post("/v1/credentials/verify", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in r.request.headers
    assert_problem(r, 413)


def test_chunked_body_under_the_limit_arrives_whole(client: TestClient) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"credential": '
        yield b'"not.a.token"}'

    r = client.post("/v1/credentials/verify", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["valid"] is False


def test_instants_outside_the_years_1_to_9999_in_utc_are_422(client: TestClient, auth: Any) -> None:
    # Valid RFC 3339 text whose UTC instant is in the year 10000 or 0: once a 500 (OverflowError).
    editor, manager = auth("standards:write"), auth("webhooks:manage")
    versions = "/v1/standards/training-standards/versions"
    r = client.post(
        versions, json={"version": "1.0", "document": {"title": "T", "language": "en"}}, headers=editor
    )
    assert r.status_code == 201, r.text
    for instant in ("9999-12-31T23:00:00-01:00", "0001-01-01T00:00:00+01:00"):
        problem = assert_problem(
            client.post(f"{versions}/1.0/publish", json={"effective_from": instant}, headers=editor), 422
        )
        assert "1-9999" in json.dumps(problem)
    r = client.post("/v1/webhooks/endpoints", json={"url": "http://127.0.0.1:9/x"}, headers=manager)
    assert r.status_code == 201, r.text
    endpoint = r.json()["id"]
    for instant in ("9999-12-31T23:00:00-01:00", "0001-01-01T00:00:00+01:00"):
        problem = assert_problem(
            client.post(
                f"/v1/webhooks/endpoints/{endpoint}/recover", params={"since": instant}, headers=manager
            ),
            422,
        )
        assert "1-9999" in json.dumps(problem)
    # Numbers (and digit strings) are not date-times: pydantic read 20261101 as 1970-08-23, and
    # 253402300800 as milliseconds, 1978.
    for number in ("20261101", "0", "-1", "253402300800"):
        assert_problem(
            client.post(
                f"/v1/webhooks/endpoints/{endpoint}/recover", params={"since": number}, headers=manager
            ),
            422,
        )
    for number in (253402300800, 0, 1.5, True):
        assert_problem(
            client.post(f"{versions}/1.0/publish", json={"effective_from": number}, headers=editor), 422
        )
    # A naive time is still refused, and an offset one in range still works.
    assert_problem(
        client.post(
            f"/v1/webhooks/endpoints/{endpoint}/recover",
            params={"since": "2026-01-01T00:00:00"},
            headers=manager,
        ),
        422,
    )
    r = client.post(
        f"/v1/webhooks/endpoints/{endpoint}/recover",
        params={"since": "2026-01-01T00:00:00+01:00"},
        headers=manager,
    )
    assert r.status_code == 202 and r.json()["since"] == "2025-12-31T23:00:00Z", r.text
