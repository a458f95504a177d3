"""Failure handling: isolation from dead receivers, Retry-After, auto-disable, retry and recover."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from service.core.audit import AuditEntry
from tests.helpers import wait_for
from tests.webhooks.conftest import Receiver, sample_data
from tests.webhooks.test_delivery import deliveries, finished


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "in_process_worker": True,
        "webhook_retry_schedule": "0,0.2,0.2",
        "webhook_timeout_s": 3.0,
        "webhook_disable_after_s": 1.0,
    }


def test_a_receiver_that_never_answers_does_not_delay_50_healthy_ones(
    client: Any, receiver: Receiver, make_endpoint: Callable[..., Any], emit: Callable[..., Any]
) -> None:
    dead = receiver.url("dead")
    receiver.hang(dead)
    make_endpoint(dead)
    healthy = [receiver.url() for _ in range(50)]
    for url in healthy:
        make_endpoint(url)
    start = time.time()
    [payload] = emit()
    wait_for(lambda: all(receiver.received(u) for u in healthy), timeout=10)
    last = max(receiver.received(u)[0].at for u in healthy)
    assert last - start < 2.0  # well inside the 3 s the dead one holds its attempt
    assert len(receiver.received(dead)) == 1
    assert {json.loads(receiver.received(u)[0].body)["id"] for u in healthy} == {payload["id"]}


def test_retry_after_is_honoured(
    client: Any,
    manager: dict[str, str],
    receiver: Receiver,
    make_endpoint: Callable[..., Any],
    emit: Callable[..., Any],
) -> None:
    url = receiver.url()
    receiver.script(url, [503, 200], headers={"Retry-After": "1"})
    ep = make_endpoint(url)
    emit()
    reqs = wait_for(lambda: len(receiver.received(url)) == 2 and receiver.received(url), timeout=10)
    assert reqs[1].at - reqs[0].at >= 1.0
    [d] = wait_for(lambda: finished(client, manager, ep["id"]))
    assert [a["status_code"] for a in d["attempts"]] == [503, 200]


def test_an_endpoint_failing_too_long_is_disabled_with_an_audit_entry(
    client: Any,
    manager: dict[str, str],
    receiver: Receiver,
    make_endpoint: Callable[..., Any],
    emit: Callable[..., Any],
    session_factory: Callable[[], Any],
) -> None:
    url = receiver.url()
    receiver.script(url, [500])
    ep = make_endpoint(url)
    emit()
    wait_for(lambda: finished(client, manager, ep["id"]))
    time.sleep(1.1)
    emit(data=sample_data(2))  # fails again, more than 1 s after the run of failures began
    got = wait_for(
        lambda: (
            (e := client.get(f"/v1/webhooks/endpoints/{ep['id']}", headers=manager).json())["enabled"]
            is False
            and e
        )
    )
    assert got["disabled_reason"].startswith("failing continuously since")
    with session_factory() as s:
        entries = (
            s.execute(
                sa.select(AuditEntry).where(
                    AuditEntry.target == ep["id"], AuditEntry.action == "webhook_endpoint.disable"
                )
            )
            .scalars()
            .all()
        )
    assert [(e.actor, e.action) for e in entries] == [("system", "webhook_endpoint.disable")]
    assert (
        client.get("/v1/events").json()["data"][-1]["type"] == "standards.version.published"
    )  # not an event
    statuses = {d["status"] for d in deliveries(client, manager, ep["id"])}
    assert statuses == {"failed"}


def test_retry_and_recover(
    client: Any,
    manager: dict[str, str],
    receiver: Receiver,
    make_endpoint: Callable[..., Any],
    emit: Callable[..., Any],
) -> None:
    [before] = emit()  # older than the endpoint: only recover can bring it
    url = receiver.url()
    receiver.script(url, [403])
    ep = make_endpoint(url, ["standards.version.published"])
    emit(data=sample_data(2), count=1)
    emit("school.listed", {"school_id": "sch_1", "name": "A", "country": "NL", "listing": "listed"})
    # Three attempts 0.2 s apart, each recorded in the worker's batches: generous waits, because
    # a loaded machine (a parallel test run) once took more than the default 10 s here.
    [d] = wait_for(lambda: finished(client, manager, ep["id"]), timeout=30)
    assert d["status"] == "failed" and d["attempt_count"] == 3
    receiver.script(url, [200])
    r = client.post(f"/v1/webhooks/endpoints/{ep['id']}/deliveries/{d['id']}/retry", headers=manager)
    assert r.status_code == 202, r.text
    [d] = wait_for(lambda: finished(client, manager, ep["id"]), timeout=30)
    assert d["status"] == "succeeded" and d["attempt_count"] == 4
    r = client.post(
        f"/v1/webhooks/endpoints/{ep['id']}/recover",
        params={"since": "2000-01-01T00:00:00Z"},
        headers=manager,
    )
    assert r.status_code == 202, r.text
    assert r.json()["requeued"] == 0 and r.json()["created"] == 1  # the older event, not the school one
    got = wait_for(lambda: finished(client, manager, ep["id"], 2), timeout=30)
    assert {x["event_id"] for x in got} >= {before["id"]}
    assert all(x["status"] == "succeeded" for x in got)
    r = client.post(
        f"/v1/webhooks/endpoints/{ep['id']}/recover", params={"since": "2000-01-01"}, headers=manager
    )
    assert r.status_code == 422
