"""The change feed from the public-representation cache: a full page is kept while events
are added after it, the newest page shows the next event at once, pruning turns kept pages
into 410s, and an answer from memory is the answer the database gives."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from service.core.db import transaction
from service.events import service as events
from service.ops.retention import prune_events
from tests.conftest import assert_problem


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The ``after`` of every feed page read from the database."""
    seen: list[int] = []
    real = events.list_events

    def counting(session: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["after"])
        return real(session, **kwargs)

    monkeypatch.setattr(events, "list_events", counting)
    yield seen


def _sequences(client: Any, **params: Any) -> tuple[list[int], Any]:
    r = client.get("/v1/events", params=params)
    assert r.status_code == 200, r.text
    return [e["sequence"] for e in r.json()["data"]], r


def test_a_full_page_is_kept_and_the_newest_follows_every_event(
    client: Any, emit: Callable[..., Any], reads: list[int]
) -> None:
    emit(count=5)
    full, first = _sequences(client, after=0, limit=3)
    assert full == [1, 2, 3] and first.json()["next_cursor"] == "3"
    tail, _ = _sequences(client, after=3, limit=3)
    assert tail == [4, 5]
    assert reads == [0, 3]
    emit(count=2)  # through this process: the newest page must show them at once
    again, second = _sequences(client, after=0, limit=3)
    assert again == full and second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]
    assert _sequences(client, after=3, limit=3)[0] == [4, 5, 6]
    assert reads == [0, 3, 3]  # the full page came from memory, the newest from the database
    conditional = {"If-None-Match": first.headers["etag"]}
    r = client.get("/v1/events", params={"after": 0, "limit": 3}, headers=conditional)
    assert r.status_code == 304 and r.content == b""


def test_pruning_turns_kept_pages_into_410(
    client: Any, emit: Callable[..., Any], engine: Any, reads: list[int]
) -> None:
    emit(count=4)
    assert _sequences(client, after=0, limit=2)[0] == [1, 2]
    assert _sequences(client, after=0, limit=2)[0] == [1, 2]
    assert reads == [0]
    with transaction(engine) as session:
        # Everything is older than -1 days: the whole feed goes.
        assert prune_events(session, now=dt.datetime.now(dt.UTC), retention_days=-1) == 4
    body = assert_problem(client.get("/v1/events", params={"after": 0, "limit": 2}), 410)
    assert body["oldest_available_after"] == 4


def test_spellings_of_filters_answer_the_same_events(client: Any, emit: Callable[..., Any]) -> None:
    emit("school.listed", {"id": "sch_1", "name": "A", "country": "DE", "listing": "listed"})
    emit("school.listed", {"id": "sch_2", "name": "B", "country": "FR", "listing": "listed"})
    lower, _ = _sequences(client, country="de")
    upper, _ = _sequences(client, country="DE")
    assert lower == upper == [1]
    assert_problem(client.get("/v1/events", params={"country": "Germany"}), 422)
