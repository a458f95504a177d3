"""``GET /v1/snapshot`` streamed from a cursor: the same bytes as one serialisation of the
same state, conditional before any body is read, kept in memory only when small."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.core.db import transaction
from service.core.jsonutil import dumps
from service.snapshot import service as snapshot
from tests.helpers import SLUG, publish_version
from tests.ops.test_snapshot import auth, steward  # noqa: F401 - fixtures


@pytest.fixture
def registry(client: TestClient, auth: Callable[..., dict[str, str]], steward: dict[str, str]) -> int:  # noqa: F811
    """A published document and 23 listed schools (one delisted), names in several scripts."""
    publish_version(
        client, f"/v1/standards/{SLUG}/versions", auth("standards:write"), "1.0", new_document=True
    )
    names = [
        "Zürcher Achtsamkeit",
        "東京マインドフルネス",
        "İstanbul Farkındalık",
        "Ålesund Nærvær",
        "O'Brien & Sons",
    ]
    ids = []
    for n in range(23):
        body = {
            "name": f"{names[n % len(names)]} {n}",
            "country": "CH",
            "contact": {"email": f"s{n}@x.example"},
        }
        r = client.post("/v1/schools", json=body, headers=steward)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    assert client.post(f"/v1/schools/{ids[3]}/delist", headers=steward).status_code == 200
    return 22


def _serialised_at_once(engine: Any, base_url: str) -> bytes:
    """Today's serialisation: the whole document as one dict, dumped once."""
    with transaction(engine, readonly=True) as session:
        snapshot.begin_snapshot(session)
        _etag, sequence, _expires_at = snapshot.state_etag(session=session, base_url=base_url)
        return dumps(snapshot.snapshot_dict(session=session, base_url=base_url, sequence=sequence))


def test_streamed_bytes_equal_one_serialisation(
    client: TestClient, app: Any, engine: Any, registry: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot, "CHUNK_SCHOOLS", 4)  # 22 schools: six chunks and a tail
    app.state.public_cache.max_bytes = 1000  # nothing this large is kept: every read streams
    expected = _serialised_at_once(engine, app.state.settings.public_base_url)
    for _ in range(2):
        r = client.get("/v1/snapshot")
        assert r.status_code == 200
        assert "content-length" not in r.headers  # chunked: never one buffer
        assert r.content == expected
        body = r.json()
        assert len(body["schools"]) == registry
        assert [s["name"] for s in body["schools"]] == sorted(
            (s["name"] for s in body["schools"]), key=lambda name: snapshot.registry.folding.sort_key(name)
        )
    assert len(app.state.public_cache) == 0


def test_a_streamed_miss_answers_304_before_reading_and_small_documents_are_kept(
    client: TestClient, app: Any, engine: Any, registry: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot, "CHUNK_SCHOOLS", 4)
    first = client.get("/v1/snapshot")  # read to its end, small: kept
    etag = first.headers["etag"]
    assert "content-length" not in first.headers
    again = client.get("/v1/snapshot")  # from memory now: the same bytes, with their length
    assert again.content == first.content and again.headers["content-length"] == str(len(first.content))
    assert again.headers["etag"] == etag
    app.state.public_cache.clear()
    read: list[int] = []
    real = snapshot.registry.listed_schools_for_snapshot

    def counting(**kwargs: Any) -> Any:
        read.append(1)
        return real(**kwargs)

    monkeypatch.setattr(snapshot.registry, "listed_schools_for_snapshot", counting)
    r = client.get("/v1/snapshot", headers={"If-None-Match": f'"other", W/{etag}'})
    assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == etag
    assert read == []  # the state told it: no school was read
