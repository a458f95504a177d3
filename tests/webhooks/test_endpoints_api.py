"""Endpoint management over HTTP: ownership, validation, pagination, audit, secrets at rest."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from service.core.audit import AuditEntry
from service.webhooks.models import WebhookEndpoint
from tests.conftest import assert_problem


def token(client: Any, make_client: Callable[..., tuple[str, str]], *scopes: str) -> dict[str, str]:
    cid, secret = make_client(*scopes)
    r = client.post("/v1/oauth/token", data={"grant_type": "client_credentials"}, auth=(cid, secret))
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_create_shows_the_secret_once_and_stores_it_encrypted(
    client: Any,
    manager: dict[str, str],
    make_endpoint: Callable[..., Any],
    session_factory: Callable[[], Any],
) -> None:
    ep = make_endpoint("http://127.0.0.1:9/a", ["school.listed"], description="Dutch association")
    assert ep["id"].startswith("whe_") and ep["secret"].startswith("whsec_")
    assert ep["event_types"] == ["school.listed"] and ep["enabled"] is True
    assert ep["description"] == "Dutch association"
    got = client.get(f"/v1/webhooks/endpoints/{ep['id']}", headers=manager)
    assert got.status_code == 200 and "secret" not in got.json()
    assert got.json()["url"] == "http://127.0.0.1:9/a"
    with session_factory() as s:
        row = s.get(WebhookEndpoint, ep["id"])
        assert ep["secret"] not in row.secret_enc and ep["secret"][6:] not in row.secret_enc
        entries = s.execute(sa.select(AuditEntry).where(AuditEntry.target == ep["id"])).scalars().all()
        assert [e.action for e in entries] == ["webhook_endpoint.create"]
        assert ep["secret"] not in str(entries[0].details)


def test_validation(client: Any, manager: dict[str, str], make_endpoint: Callable[..., Any]) -> None:
    r = client.post("/v1/webhooks/endpoints", json={"url": "http://127.0.0.1:9/", "x": 1}, headers=manager)
    assert_problem(r, 422)
    r = client.post(
        "/v1/webhooks/endpoints",
        json={"url": "http://127.0.0.1:9/", "event_types": ["nope"]},
        headers=manager,
    )
    assert "nope" in assert_problem(r, 422)["detail"]
    r = client.post(
        "/v1/webhooks/endpoints",
        json={"url": "http://127.0.0.1:9/", "event_types": ["webhook.ping"]},
        headers=manager,
    )
    assert_problem(r, 422)
    for port in ("99999", "65536", "0"):  # ports out of range were a 500 (found by a fresh user)
        r = client.post("/v1/webhooks/endpoints", json={"url": f"http://127.0.0.1:{port}/"}, headers=manager)
        assert "port" in assert_problem(r, 422)["detail"]
    ep = make_endpoint("http://127.0.0.1:9/b")
    r = client.patch(
        f"/v1/webhooks/endpoints/{ep['id']}", json={"url": "http://127.0.0.1:99999/"}, headers=manager
    )
    assert_problem(r, 422)
    r = client.patch(f"/v1/webhooks/endpoints/{ep['id']}", json={"secret": "whsec_x"}, headers=manager)
    assert_problem(r, 422)
    r = client.patch(f"/v1/webhooks/endpoints/{ep['id']}", json={"url": "http://10.0.0.1/"}, headers=manager)
    assert_problem(r, 422)
    r = client.patch(
        f"/v1/webhooks/endpoints/{ep['id']}",
        json={"url": "http://127.0.0.1:10/c", "event_types": ["school.updated"], "description": "d"},
        headers=manager,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["url"], r.json()["event_types"], r.json()["description"]) == (
        "http://127.0.0.1:10/c",
        ["school.updated"],
        "d",
    )


def test_auth_and_ownership(
    client: Any, manager: dict[str, str], make_client: Callable[..., Any], make_endpoint: Callable[..., Any]
) -> None:
    assert_problem(client.get("/v1/webhooks/endpoints"), 401)
    other_scope = token(client, make_client, "standards:write")
    assert_problem(client.get("/v1/webhooks/endpoints", headers=other_scope), 403)
    ep = make_endpoint("http://127.0.0.1:9/mine")
    other = token(client, make_client, "webhooks:manage")
    base = f"/v1/webhooks/endpoints/{ep['id']}"
    assert_problem(client.get(base, headers=other), 404)
    assert_problem(client.patch(base, json={"description": "x"}, headers=other), 404)
    assert_problem(client.delete(base, headers=other), 404)
    assert_problem(client.post(base + "/rotate-secret", headers=other), 404)
    assert_problem(client.post(base + "/test", headers=other), 404)
    assert_problem(client.get(base + "/deliveries", headers=other), 404)
    assert client.get("/v1/webhooks/endpoints", headers=other).json() == {"data": [], "next_cursor": None}
    assert client.delete(base, headers=manager).status_code == 204
    assert_problem(client.get(base, headers=manager), 404)


def test_list_is_paginated_with_link(
    client: Any, manager: dict[str, str], make_endpoint: Callable[..., Any]
) -> None:
    ids = [make_endpoint(f"http://127.0.0.1:9/p{i}")["id"] for i in range(5)]
    seen: list[str] = []
    r = client.get("/v1/webhooks/endpoints", params={"limit": 2}, headers=manager)
    pages = 0
    while True:
        pages += 1
        body = r.json()
        seen += [e["id"] for e in body["data"]]
        if body["next_cursor"] is None:
            assert "link" not in r.headers
            break
        assert r.headers["link"].endswith('>; rel="next"')
        nxt = r.headers["link"][1:].split(">", 1)[0].replace("http://testserver", "")
        r = client.get(nxt, headers=manager)
    assert seen == ids and pages == 3


def test_event_type_catalogue_and_openapi(client: Any) -> None:
    r = client.get("/v1/webhooks/event-types")
    assert r.status_code == 200
    types = {t["type"]: t for t in r.json()["data"]}
    assert set(types) == {
        "standards.version.published",
        "standards.version.withdrawn",
        "standards.translation.published",
        "standards.review.opened",
        "standards.review.closed",
        "standards.comment.created",
        "standards.comment.disposed",
        "school.listed",
        "school.updated",
        "school.delisted",
        "school.alignment.changed",
        "webhook.ping",
    }
    published = types["standards.version.published"]["schema"]
    assert {"document", "version", "title", "reaffirmation_required"} <= set(published["required"])
    assert "changes" in published["properties"] and "links" in published["properties"]
    assert types["webhook.ping"]["sequenced"] is False
    doc = client.get("/openapi.json").json()
    assert set(doc["webhooks"]) == set(types)
    op = doc["webhooks"]["school.alignment.changed"]["post"]
    assert "requestBody" in op


def test_hostile_endpoint_fields_are_short_clear_422s(
    client: Any, manager: dict[str, str], make_endpoint: Callable[..., Any]
) -> None:
    ep = make_endpoint("http://127.0.0.1:9/hostile")
    path = f"/v1/webhooks/endpoints/{ep['id']}"
    # A 500 KB "event type" once came back in full inside the 422.
    r = client.post(
        "/v1/webhooks/endpoints",
        json={"url": "http://127.0.0.1:9/h", "event_types": ["x" * 500_000]},
        headers=manager,
    )
    assert_problem(r, 422)
    assert len(r.content) < 5_000
    # webhook.ping is in the catalogue but only `test` sends it.
    problem = assert_problem(
        client.post(
            "/v1/webhooks/endpoints",
            json={"url": "http://127.0.0.1:9/h", "event_types": ["webhook.ping"]},
            headers=manager,
        ),
        422,
    )
    assert "test" in problem["detail"]
    # "yes" is not a boolean, and null does not mean "keep it".
    for body in (
        {"enabled": "yes"},
        {"enabled": 1},
        {"url": None},
        {"event_types": None},
        {"description": None},
    ):
        assert_problem(client.patch(path, json=body, headers=manager), 422)
    after = client.get(path, headers=manager).json()
    assert after["url"] == ep["url"] and after["enabled"] is True
    # An empty PATCH changes nothing, not even updated_at.
    r = client.patch(path, json={}, headers=manager)
    assert r.status_code == 200 and r.json()["updated_at"] == after["updated_at"]
