"""The change feed GET /v1/events: public, gap-free, ordered, paginated, filterable; catch-up after a gap."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from service.events.models import EventCounter
from tests.conftest import assert_problem

SCHOOL = {"school_id": "sch_1", "name": "Ōtautahi Mindfulness", "country": "NZ", "listing": "listed"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


def test_feed_is_gap_free_ordered_and_paginated(client: Any, emit: Callable[..., Any]) -> None:
    made = emit(count=5) + emit("school.listed", SCHOOL, count=2)
    r = client.get("/v1/events", params={"limit": 3})
    assert r.status_code == 200
    seen: list[dict[str, Any]] = []
    while True:
        body = r.json()
        seen += body["data"]
        if body["next_cursor"] is None:
            assert "link" not in r.headers
            break
        assert r.headers["link"] == (
            f'<http://testserver/v1/events?after={body["next_cursor"]}&limit=3>; rel="next"'
        )
        r = client.get("/v1/events", params={"after": body["next_cursor"], "limit": 3})
    assert [e["sequence"] for e in seen] == [1, 2, 3, 4, 5, 6, 7]
    assert [e["id"] for e in seen] == [e["id"] for e in made]
    assert set(seen[0]) == {"id", "type", "sequence", "timestamp", "data", "log_index"}  # issue 12
    assert [e["log_index"] for e in seen] == [0, 1, 2, 3, 4, 5, 6]
    assert seen[0]["timestamp"].endswith("Z")
    assert "Ōtautahi".encode() in client.get("/v1/events", params={"after": 5}).content


def test_a_receiver_that_sees_a_jump_catches_up_with_after_and_type(
    client: Any, emit: Callable[..., Any]
) -> None:
    emit(count=2)  # sequences 1, 2: the receiver saw 2 last
    emit("school.listed", SCHOOL)  # 3: not its type
    [missed] = emit()  # 4: lost
    emit("school.updated", SCHOOL)  # 5
    [jump] = emit()  # 6 arrives by webhook: 6 > 2 + 1, so it asks the feed
    r = client.get(
        "/v1/events",
        params=[
            ("after", 2),
            ("type", "standards.version.published"),
            ("type", "standards.version.withdrawn"),
        ],
    )
    got = r.json()["data"]
    assert [(e["sequence"], e["id"]) for e in got] == [(4, missed["id"]), (6, jump["id"])]
    both = client.get(
        "/v1/events", params=[("after", 0), ("type", "school.listed"), ("type", "school.updated")]
    )
    assert [e["sequence"] for e in both.json()["data"]] == [3, 5]


def test_feed_answers_410_below_the_retained_window(
    client: Any, emit: Callable[..., Any], session_factory: Callable[[], Any]
) -> None:
    emit(count=3)
    with session_factory() as s:
        s.execute(sa.update(EventCounter).values(pruned_through=2))
    body = assert_problem(client.get("/v1/events", params={"after": 1}), 410)
    assert body["snapshot"] == "/v1/snapshot" and body["oldest_available_after"] == 2
    assert [e["sequence"] for e in client.get("/v1/events", params={"after": 2}).json()["data"]] == [3]
    assert_problem(client.get("/v1/events", params={"after": -1}), 422)


def test_unknown_type_or_bad_limit_is_422(client: Any) -> None:
    """Found by a fresh user: `type=bogus` answered an empty page; `/v1/schools?limit=0` one item."""
    body = assert_problem(client.get("/v1/events?type=school.listed&type=bogus"), 422)
    assert "bogus" in body["detail"]
    for limit in ("0", "-1", "201"):
        assert_problem(client.get(f"/v1/schools?limit={limit}"), 422)
