"""Retention of the event feed, and the audit log endpoint."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from service.core import audit, jobs
from service.core.db import utcnow
from service.events.models import Event
from service.events.service import emit, pruned_through
from service.ops import retention
from tests.conftest import assert_problem


def test_retention_prunes_old_events_and_the_feed_answers_410(
    client: TestClient, engine: Any, session_factory: Any
) -> None:
    assert retention.EVENTS_JOB in jobs.registered()
    assert retention.IDEMPOTENCY_JOB in jobs.registered()
    with session_factory() as s:
        for n in range(4):
            emit(s, "school.listed", {"id": f"sch_{n}"})
    long_ago = utcnow() - dt.timedelta(days=401)
    with session_factory() as s:
        s.execute(sa.update(Event).where(Event.sequence <= 2).values(timestamp=long_ago))  # type: ignore[arg-type]

    assert jobs.run_job(engine, retention.EVENTS_JOB) == 2
    assert jobs.run_job(engine, retention.EVENTS_JOB) == 0  # idempotent
    with session_factory() as s:
        assert pruned_through(s) == 2
        assert sorted(s.execute(sa.select(Event.sequence)).scalars()) == [3, 4]

    for after in (0, 1):
        gone = client.get(f"/v1/events?after={after}")
        body = assert_problem(gone, 410)
        assert body["snapshot"] == "/v1/snapshot"
        assert body["oldest_available_after"] == 2
    feed = client.get("/v1/events?after=2").json()
    assert [e["sequence"] for e in feed["data"]] == [3, 4]


def test_retention_keeps_events_inside_the_window(session_factory: Any) -> None:
    with session_factory() as s:
        emit(s, "school.listed", {"id": "sch_new"})
    with session_factory() as s:
        assert retention.prune_events(s, now=utcnow(), retention_days=400) == 0
        # Moving the clock past the window expires it.
        later = utcnow() + dt.timedelta(days=401)
        assert retention.prune_events(s, now=later, retention_days=400) == 1
        assert pruned_through(s) == 1


def test_audit_log_is_for_stewards_and_editors_newest_first(
    client: TestClient, auth: Callable[..., dict[str, str]], session_factory: Any
) -> None:
    with session_factory() as s:
        for n in range(5):
            audit.record(
                s, actor="cli", action="school.create" if n % 2 else "version.publish", target=f"t{n}"
            )
    assert_problem(client.get("/v1/audit"), 401)
    assert_problem(client.get("/v1/audit", headers=auth("webhooks:manage")), 403)
    assert client.get("/v1/audit", headers=auth("standards:write")).status_code == 200
    steward = auth("registry:write")
    first = client.get("/v1/audit?limit=2", headers=steward)
    assert first.status_code == 200
    assert first.headers["cache-control"] == "private, no-cache"
    page = first.json()
    assert [e["target"] for e in page["data"]] == ["t4", "t3"]
    assert set(page["data"][0]) == {"id", "at", "actor", "action", "target", "details"}
    assert page["data"][0]["at"].endswith("Z")
    assert first.headers["link"].endswith('>; rel="next"')
    targets = [e["target"] for e in page["data"]]
    cursor = page["next_cursor"]
    while cursor:
        nxt = client.get("/v1/audit", params={"limit": 2, "cursor": cursor}, headers=steward).json()
        targets += [e["target"] for e in nxt["data"]]
        cursor = nxt["next_cursor"]
    assert targets == ["t4", "t3", "t2", "t1", "t0"]
    creates = client.get("/v1/audit?action=school.create", headers=steward).json()
    assert [e["target"] for e in creates["data"]] == ["t3", "t1"]
    assert creates["next_cursor"] is None
    assert_problem(client.get("/v1/audit?cursor=bm90LWEtY3Vyc29y", headers=steward), 422)
