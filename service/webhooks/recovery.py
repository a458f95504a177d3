"""Recovery: an endpoint gets back what it missed (``POST …/endpoints/{id}/recover``).

:func:`recover` re-queues the endpoint's failed deliveries created since a
time (each gets the whole retry schedule again) and creates deliveries for the
events since then, of its types and passing its filter, that it never received — read from the event
log, older than the endpoint's registration included; at most
:data:`RECOVER_MAX_EVENTS` per call (call again with a later ``since``). The
endpoint must be enabled: after it was disabled (``410 Gone``, failing too
long, its owner), the owner re-enables it first.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Session, col, select

from service.core import audit
from service.core.db import utcnow
from service.core.errors import Conflict
from service.core.jsonutil import isoformat
from service.events import service as events
from service.events.models import Event
from service.webhooks import fanout, filters
from service.webhooks.models import WebhookDelivery
from service.webhooks.service import get_endpoint

#: ``recover`` creates deliveries for at most this many missed events per call.
RECOVER_MAX_EVENTS = 10_000


def recover(*, session: Session, owner: str, endpoint_id: str, since: dt.datetime) -> tuple[int, int]:
    """Re-queue the endpoint's failed deliveries created at or after ``since`` (each gets the
    whole retry schedule again), and create deliveries for events at or after ``since`` of its
    types, passing its filter, that it never received (at most 10,000 per call; call again
    with a later ``since``).

    Returns ``(requeued, created)``. 409 when the endpoint is disabled.
    """
    endpoint = get_endpoint(session=session, owner=owner, endpoint_id=endpoint_id)
    if not endpoint.enabled:
        raise Conflict('The endpoint is disabled: re-enable it (PATCH {"enabled": true}) first.')
    now = utcnow()
    requeued = session.execute(
        sa.update(WebhookDelivery)
        .where(
            col(WebhookDelivery.endpoint_id) == endpoint.id,
            col(WebhookDelivery.status) == "failed",
            col(WebhookDelivery.created_at) >= since,
        )
        .values(
            status="pending",
            schedule_base=WebhookDelivery.attempt_count,
            next_attempt_at=now,
            updated_at=now,
        )
    ).rowcount  # type: ignore[attr-defined]
    have = select(WebhookDelivery.message_id).where(col(WebhookDelivery.endpoint_id) == endpoint.id)
    stmt = select(Event).where(
        col(Event.timestamp) >= since,
        col(Event.id).not_in(have),
        *events.passes(filters.event_filters(endpoint)),
    )
    if endpoint.event_types:
        stmt = stmt.where(col(Event.type).in_(list(endpoint.event_types)))
    missed = list(session.exec(stmt.order_by(col(Event.sequence)).limit(RECOVER_MAX_EVENTS)))
    rows = [
        fanout.delivery_row(
            endpoint_id=endpoint.id, message=fanout.message_for_event(session, e), due=now, now=now
        )
        for e in missed
    ]
    fanout.insert_deliveries(session, rows)
    if requeued:
        session.info[fanout.WAKE_FLAG] = True
    audit.record(
        session,
        actor=owner,
        action="webhook_endpoint.recover",
        target=endpoint.id,
        details={"since": isoformat(since), "requeued": int(requeued or 0), "created": len(rows)},
    )
    return int(requeued or 0), len(rows)
