"""Registering endpoints while events are emitted: every endpoint gets exactly the events
stamped after its registration, on both databases (PostgreSQL runs them side by side)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col

from service.events import service as events
from service.events.models import Event
from service.webhooks import service as wh
from service.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookMessage
from tests.webhooks.conftest import sample_data


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"in_process_worker": False}  # deliveries stay in the table, where the test reads them


def test_endpoints_registered_during_events_get_exactly_the_later_events(
    settings: Any, session_factory: Callable[[], Any]
) -> None:
    errors: list[BaseException] = []

    def register(k: int) -> None:
        try:
            for i in range(15):
                with session_factory() as session:
                    wh.create_endpoint(
                        session=session,
                        owner=f"race{k}",
                        url=f"http://127.0.0.1:9/race/{k}/{i}",
                        event_types=[],
                        description="",
                        keys_dir=settings.keys_dir,
                    )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def emit(k: int) -> None:
        try:
            for i in range(15):
                with session_factory() as session:
                    events.emit(session, "standards.version.published", sample_data(k * 100 + i + 1))
                    time.sleep(0.003)  # work after the fan-out, before the commit (as a publish has)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(k,)) for k in range(3)]
    threads += [threading.Thread(target=emit, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with session_factory() as session:
        stamped = session.execute(sa.select(col(Event.id), col(Event.timestamp))).all()
        endpoints = session.execute(sa.select(col(WebhookEndpoint.id), col(WebhookEndpoint.created_at))).all()
        got: dict[str, set[str]] = {e.id: set() for e in endpoints}
        for endpoint_id, message_id in session.execute(
            sa.select(col(WebhookDelivery.endpoint_id), col(WebhookDelivery.message_id))
        ):
            got[endpoint_id].add(message_id)
    assert len(endpoints) == 45 and len(stamped) == 45
    wrong = {
        e.id: (e.created_at, sorted({ev.id for ev in stamped if ev.timestamp >= e.created_at} ^ got[e.id]))
        for e in endpoints
        if got[e.id] != {ev.id for ev in stamped if ev.timestamp >= e.created_at}
    }
    assert wrong == {}


def test_an_event_nobody_subscribed_to_stores_no_payload(
    settings: Any, session_factory: Callable[[], Any]
) -> None:
    with session_factory() as session:
        for types in (["school.listed"], ["school.listed", "school.updated"]):
            wh.create_endpoint(
                session=session,
                owner="typed",
                url="http://127.0.0.1:9/typed",
                event_types=types,
                description="",
                keys_dir=settings.keys_dir,
            )
        wh.update_endpoint(  # disabled: subscribed, but gets nothing
            session=session,
            owner="typed",
            endpoint_id=wh.create_endpoint(
                session=session,
                owner="typed",
                url="http://127.0.0.1:9/off",
                event_types=[],
                description="",
                keys_dir=settings.keys_dir,
            )[0].id,
            changes=wh.EndpointUpdate(enabled=False),
        )
    with session_factory() as session:
        unseen = events.emit(session, "standards.version.published", sample_data(1))
        seen = events.emit(session, "school.updated", {"school": {"id": "sch_x"}})
    with session_factory() as session:
        stored = set(session.execute(sa.select(col(WebhookMessage.id))).scalars())
        delivered = session.execute(sa.select(col(WebhookDelivery.message_id))).scalars().all()
    assert stored == {seen.id} and unseen.id not in stored
    assert delivered == [seen.id]  # the second typed endpoint only
