"""Idempotency-Key on creating POSTs (DESIGN §4)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from service.web.idempotency import IdempotencyKey
from tests.conftest import assert_problem

ENDPOINTS = "/v1/webhooks/endpoints"


def test_same_key_same_body_replays_the_first_response(
    client: TestClient, auth: Callable[..., dict[str, str]], engine: Any
) -> None:
    headers = {**auth("webhooks:manage"), "Idempotency-Key": "create-hook-1"}
    body = {"url": "http://127.0.0.1:9/hook", "event_types": ["school.listed"]}
    first = client.post(ENDPOINTS, json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = client.post(ENDPOINTS, json=body, headers=headers)
    assert again.status_code == 201
    assert again.json() == first.json()  # the same endpoint and the same secret, shown again
    assert again.headers["idempotent-replayed"] == "true"
    listed = client.get(ENDPOINTS, headers=headers).json()["data"]
    assert [e["id"] for e in listed] == [first.json()["id"]]
    # The stored body carries the secret shown once: it is encrypted at rest.
    with engine.connect() as conn:
        stored = conn.execute(sa.select(IdempotencyKey.body)).scalar_one()  # type: ignore[call-overload]
    assert first.json()["secret"].encode() not in stored


def test_same_key_other_body_is_422_and_other_client_is_independent(
    client: TestClient, auth: Callable[..., dict[str, str]]
) -> None:
    headers = {**auth("webhooks:manage"), "Idempotency-Key": "k"}
    r = client.post(ENDPOINTS, json={"url": "http://127.0.0.1:9/a"}, headers=headers)
    assert r.status_code == 201, r.text
    assert_problem(client.post(ENDPOINTS, json={"url": "http://127.0.0.1:9/b"}, headers=headers), 422)
    other = {**auth("webhooks:manage", "standards:write"), "Idempotency-Key": "k"}
    r2 = client.post(ENDPOINTS, json={"url": "http://127.0.0.1:9/a"}, headers=other)
    assert r2.status_code == 201
    assert r2.json()["id"] != r.json()["id"]


def test_overlong_key_is_422(client: TestClient, auth: Callable[..., dict[str, str]]) -> None:
    headers = {**auth("webhooks:manage"), "Idempotency-Key": "x" * 256}
    assert_problem(client.post(ENDPOINTS, json={"url": "http://127.0.0.1:9/a"}, headers=headers), 422)
