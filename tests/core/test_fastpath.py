"""Cached public reads answered before routing are byte-identical to the app's answers."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.sample.standards import load

CURRENT = "/v1/standards/training-standards/current"


@pytest.fixture
def sample(engine: Any, settings: Any) -> None:
    load(engine=engine, settings=settings)


def _headers(r: Any) -> dict[str, str]:
    return {
        k: v
        for k, v in r.headers.items()
        if k not in ("date", "x-request-id") and not k.startswith("ratelimit")
    }


@pytest.mark.parametrize(
    ("path", "request_headers"),
    [
        (CURRENT, {}),
        (CURRENT + "?lang=de", {}),
        (CURRENT + "?lang=fr", {}),  # falls back to en: stored once behind an alias
        (CURRENT, {"Accept": "text/html"}),
        ("/v1/standards/training-standards/versions/1.0", {"Accept": "text/markdown"}),
    ],
)
def test_cached_answer_equals_routed_answer(
    client: TestClient, app: Any, sample: None, path: str, request_headers: dict[str, str]
) -> None:
    first = client.get(path, headers=request_headers)  # a miss: routed, then stored
    assert first.status_code == 200
    assert len(app.state.public_cache) >= 1
    second = client.get(path, headers=request_headers)  # a hit: answered before routing
    assert second.content == first.content
    assert _headers(second) == _headers(first)
    etag = first.headers["etag"]
    for inm in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        r = client.get(path, headers={**request_headers, "If-None-Match": inm})
        assert r.status_code == 304, inm
        assert r.content == b""
        assert r.headers["etag"] == etag
    r = client.get(
        path,
        headers={
            **request_headers,
            "If-None-Match": '"other"',
            "If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT",
        },
    )
    assert r.status_code == 200  # If-None-Match wins over If-Modified-Since
    head = client.head(path, headers=request_headers)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(first.content))


def test_publish_elsewhere_clears_the_cache_within_a_poll(
    client: TestClient, app: Any, sample: None, engine: Any
) -> None:
    before = client.get(CURRENT).json()["version"]
    assert before == "2.0"
    client.get(CURRENT)
    assert len(app.state.public_cache) >= 1
    # Another replica withdraws 2.0: only the database knows (no commit hook of this process runs).
    from sqlmodel import Session

    from service.standards import service

    with Session(engine) as s:
        service.withdraw(session=s, slug="training-standards", version="2.0", actor="other-replica")
        s.commit()
    assert client.get(CURRENT).json()["version"] == "2.0"  # until the next poll
    clock = app.state.public_cache.clock
    clock.apply(clock.poll())  # what the 0.5 s poll runs
    assert client.get(CURRENT).json()["version"] == "1.0"
