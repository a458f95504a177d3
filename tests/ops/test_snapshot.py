"""``GET /v1/snapshot``: shape and exact values, privacy, caching, and the list-then-watch
proof while writes go on (DESIGN §3 "Webhooks and sync")."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.snapshot import service as snapshot
from tests.conftest import minted_auth
from tests.helpers import SLUG, publish_version

EMAIL = "office@alpha-private.example"
PHONE = "+41 44 555 01 99"


@pytest.fixture
def auth(app: Any, session_factory: Callable[[], Any]) -> Callable[..., dict[str, str]]:
    """Bearer headers for a new client, inserted directly (no argon2 hashing: tests/core covers tokens)."""
    return minted_auth(app, session_factory, name="snapshot test")


@pytest.fixture
def steward(auth: Callable[..., dict[str, str]]) -> dict[str, str]:
    return auth("registry:write")


def _publish(client: TestClient, editor: dict[str, str], version: str) -> None:
    publish_version(client, f"/v1/standards/{SLUG}/versions", editor, version, new_document=True)


def _school(client: TestClient, steward: dict[str, str], **body: Any) -> str:
    r = client.post("/v1/schools", json=body, headers=steward)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _feed(client: TestClient, after: int, *, upto: int | None = None) -> list[dict[str, Any]]:
    """Every event after ``after`` (up to ``upto`` when given), following the pages."""
    out: list[dict[str, Any]] = []
    while True:
        r = client.get("/v1/events", params={"after": after, "limit": 200})
        assert r.status_code == 200, r.text
        page = r.json()
        for event in page["data"]:
            if upto is not None and event["sequence"] > upto:
                return out
            out.append(event)
        if page["next_cursor"] is None:
            return out
        after = int(page["next_cursor"])


def test_snapshot_shape_and_values(client: TestClient, auth: Callable[..., dict[str, str]]) -> None:
    steward = auth("registry:write")
    editor = auth("standards:write")
    empty = client.get("/v1/snapshot")
    assert empty.status_code == 200
    assert empty.json() == {"sequence": 0, "standards": [], "schools": []}

    _publish(client, editor, "1.0")
    beta = _school(client, steward, name="Beta Institut", country="DE", city="Köln")
    alpha = _school(
        client,
        steward,
        name="Alpha Centre",
        country="CH",
        city="Zürich",
        website="https://alpha.example.ch",
        programmes=["MBSR"],
        languages=["de", "en"],
        alternate_names=[{"value": "Zentrum Alpha", "lang": "de"}],
        contact={"email": EMAIL, "phone": PHONE},
    )
    gone = _school(client, steward, name="Gamma School", country="NL")
    r = client.post(
        f"/v1/schools/{beta}/alignment",
        json={"version": "1.0", "evidence_url": "https://beta.example/evidence", "stated_by": "Ana, lead"},
        headers=steward,
    )
    assert r.status_code == 200, r.text
    assert client.post(f"/v1/schools/{gone}/delist", headers=steward).status_code == 200

    r = client.get("/v1/snapshot")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "public, max-age=60"
    # A strong ETag known before the first byte is streamed: over the state the document reflects.
    assert r.headers["etag"] == client.get("/v1/snapshot").headers["etag"]
    body = r.json()
    assert list(body) == ["sequence", "standards", "schools"]
    events = _feed(client, 0)
    assert body["sequence"] == events[-1]["sequence"] == 6
    assert [e["type"] for e in events] == [
        "standards.version.published",
        "school.listed",
        "school.listed",
        "school.listed",
        "school.alignment.changed",
        "school.delisted",
    ]
    assert body["standards"] == [client.get(f"/v1/standards/{SLUG}/current").json()]
    assert body["standards"][0]["version"] == "1.0"
    assert [s["id"] for s in body["schools"]] == [alpha, beta]  # listed only, by name
    for school in body["schools"]:
        public = client.get(f"/v1/schools/{school['id']}").json()
        assert {k: v for k, v in school.items() if k != "affiliation"} == public
    assert body["schools"][0]["affiliation"] == {
        "affiliated": False,
        "status": "none",
        "aligned_version": None,
        "reaffirmation_due_by": None,
    }
    assert body["schools"][1]["affiliation"] == {
        "affiliated": True,
        "status": "aligned",
        "aligned_version": "1.0",
        "reaffirmation_due_by": None,
    }
    assert body["schools"][0]["alternate_names"] == [{"value": "Zentrum Alpha", "lang": "de"}]
    # No private data, no credentials.
    assert EMAIL not in r.text and PHONE not in r.text and "alpha-private" not in r.text
    assert all("contact" not in s and "credential" not in s for s in body["schools"])
    assert "credential" not in r.text

    # Conditional GET and HEAD.
    tag = r.headers["etag"]
    for header in (tag, f"W/{tag}", f'"x", {tag}', "*"):
        not_modified = client.get("/v1/snapshot", headers={"If-None-Match": header})
        assert not_modified.status_code == 304, header
        assert not_modified.content == b""
        assert not_modified.headers["etag"] == tag
    assert client.get("/v1/snapshot", headers={"If-None-Match": '"other"'}).status_code == 200
    head = client.head("/v1/snapshot")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == tag and head.headers["content-length"] == str(len(r.content))

    # A change moves the sequence and the ETag; so does one without an event (erasing the
    # contact touches the public `updated_at`), which the cached document must not hide.
    r = client.patch(
        f"/v1/schools/{alpha}",
        json={"city": "Bern"},
        headers={**steward, "If-Match": "*", "Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 200, r.text
    after_patch = client.get("/v1/snapshot")
    assert after_patch.headers["etag"] != tag
    assert after_patch.json()["sequence"] == 7
    assert after_patch.json()["schools"][0]["city"] == "Bern"
    assert client.delete(f"/v1/schools/{alpha}/contact", headers=steward).status_code == 204
    after_erase = client.get("/v1/snapshot")
    assert after_erase.json()["sequence"] == 7
    assert after_erase.headers["etag"] != after_patch.headers["etag"]
    assert after_erase.json()["schools"][0] == {
        **client.get(f"/v1/schools/{alpha}").json(),
        "affiliation": after_patch.json()["schools"][0]["affiliation"],
    }


def test_snapshot_needs_a_fresh_session_on_postgresql(client: TestClient, engine: Any) -> None:
    """A session that already read at READ COMMITTED cannot be turned into a snapshot."""
    from service.core.db import transaction

    with transaction(engine, readonly=True) as session:
        session.execute(__import__("sqlalchemy").text("SELECT 1"))
        if engine.dialect.name == "postgresql":
            with pytest.raises(RuntimeError, match="fresh session"):
                snapshot.build_snapshot(session=session, base_url="http://testserver")
        else:
            assert snapshot.build_snapshot(session=session, base_url="http://testserver").sequence == 0
    with transaction(engine, readonly=True) as session:
        built = snapshot.build_snapshot(session=session, base_url="http://testserver")
        if engine.dialect.name == "postgresql":
            assert session.connection().get_isolation_level() == "REPEATABLE READ"
    assert json.loads(built.body) == {"sequence": 0, "standards": [], "schools": []}


# --- list-then-watch while writes go on -------------------------------------------------------


def _public(school: dict[str, Any]) -> dict[str, Any]:
    """A snapshot school without the snapshot-only ``affiliation`` (events carry the rest)."""
    assert school["affiliation"]["status"] == school["alignment"]["status"]
    return {k: v for k, v in school.items() if k != "affiliation"}


def _apply(state: dict[str, dict[str, Any]], event: dict[str, Any]) -> None:
    """Apply one feed event to a school set, asserting its effect is not already there."""
    data = event["data"]
    if event["type"] == "school.listed":
        assert data["id"] not in state, f"event {event['sequence']} already in the snapshot"
        state[data["id"]] = data
    elif event["type"] == "school.updated":
        assert state[data["id"]] != data, f"event {event['sequence']} already in the snapshot"
        state[data["id"]] = data
    elif event["type"] == "school.delisted":
        assert data["id"] in state, f"event {event['sequence']} already in the snapshot"
        del state[data["id"]]
    else:  # the writer only lists, edits and delists
        raise AssertionError(f"unexpected event {event['type']}")


class Writer(threading.Thread):
    """Creates, renames (every name unique) and delists schools through the API until stopped."""

    def __init__(self, client: TestClient, steward: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.client, self.steward = client, steward
        self.stop = threading.Event()
        self.writes = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        rng = random.Random(7)
        listed: list[str] = []
        patch_headers = {**self.steward, "If-Match": "*", "Content-Type": "application/merge-patch+json"}
        try:
            while not self.stop.is_set():
                n = self.writes
                roll = rng.random()
                if roll < 0.4 or len(listed) < 3:
                    r = self.client.post(
                        "/v1/schools",
                        json={"name": f"Sync School {n}", "country": "NL"},
                        headers=self.steward,
                    )
                    assert r.status_code == 201, r.text
                    listed.append(r.json()["id"])
                elif roll < 0.9:
                    target = rng.choice(listed)
                    r = self.client.patch(
                        f"/v1/schools/{target}", json={"name": f"Renamed {n}"}, headers=patch_headers
                    )
                    assert r.status_code == 200, r.text
                else:
                    target = listed.pop(rng.randrange(len(listed)))
                    r = self.client.post(f"/v1/schools/{target}/delist", headers=self.steward)
                    assert r.status_code == 200, r.text
                self.writes += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            self.error = exc


@pytest.mark.timeout(60)
def test_list_then_watch_while_writes_go_on(client: TestClient, steward: dict[str, str]) -> None:
    writer = Writer(client, steward)
    writer.start()
    rounds = moved = applied = 0
    started = time.monotonic()

    def go_on() -> bool:
        # At least 4 s, and until writes really interleaved with the reads (bounded: 15 s).
        elapsed = time.monotonic() - started
        return elapsed < 4.0 or ((moved < 5 or applied < 20) and elapsed < 15.0)

    try:
        while go_on():
            assert writer.error is None, writer.error
            first = client.get("/v1/snapshot").json()
            state = {s["id"]: _public(s) for s in first["schools"]}
            seq = first["sequence"]
            # Follow the feed from the snapshot's sequence, then load a later snapshot and
            # bring the state exactly to its sequence: both must agree.
            for event in _feed(client, seq):
                assert event["sequence"] == seq + 1  # gap-free, strictly increasing
                _apply(state, event)
                seq = event["sequence"]
                applied += 1
            later = client.get("/v1/snapshot").json()
            assert later["sequence"] >= seq
            for event in _feed(client, seq, upto=later["sequence"]):
                assert event["sequence"] == seq + 1
                _apply(state, event)
                seq = event["sequence"]
                applied += 1
            assert seq == later["sequence"]
            assert state == {s["id"]: _public(s) for s in later["schools"]}
            assert later["standards"] == first["standards"]
            moved += later["sequence"] > first["sequence"]
            rounds += 1
    finally:
        writer.stop.set()
        writer.join(10)
    assert writer.error is None, writer.error
    # The proof only counts if writes really interleaved with the reads.
    assert applied >= 20 and moved >= 5, (writer.writes, applied, moved, rounds)
    final = client.get("/v1/snapshot").json()
    assert final["sequence"] == _feed(client, 0)[-1]["sequence"]
    assert len(final["schools"]) == len({s["id"] for s in final["schools"]})
