"""Deliveries: the delivery log, the test pings and retries an owner asks for, and the queue's gauges.

A delivery is one message to one endpoint (:class:`WebhookDelivery`); the
fan-out creates them (:mod:`service.webhooks.fanout`), the worker sends them
and records each attempt. Here: an owner's view of them (newest first, with
their attempts), a ``webhook.ping`` to one endpoint (:func:`send_test`), one
more attempt of any delivery (:func:`retry_delivery`), the periodic pruning of
finished ones (:func:`prune`), and the queue as ``/metrics`` shows it: by
status, due, in flight, and the lag (registered when this module is imported).

Plain functions with keyword-only arguments; the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from service.core import audit, metrics
from service.core.db import transaction, utcnow
from service.core.errors import Conflict, NotFound
from service.core.ids import new_id
from service.core.jsonutil import dumps
from service.webhooks import fanout
from service.webhooks.claims import not_leased
from service.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookMessage
from service.webhooks.service import get_endpoint

# --- representations ------------------------------------------------------------------------------


def _attempt_public(a: WebhookAttempt) -> dict[str, Any]:
    return {
        "number": a.number,
        "at": a.at,
        "status_code": a.status_code,
        "duration_ms": a.duration_ms,
        "response_excerpt": a.response_excerpt,
        "error": a.error,
        "next_attempt_at": a.next_attempt_at,
    }


def delivery_public(d: WebhookDelivery, attempts: Sequence[WebhookAttempt]) -> dict[str, Any]:
    """A delivery with its attempts (oldest first); ``event_id`` is the ``webhook-id``."""
    return {
        "id": d.id,
        "endpoint_id": d.endpoint_id,
        "event_id": d.message_id,
        "event_type": d.event_type,
        "sequence": d.sequence,
        "status": d.status,
        "attempt_count": d.attempt_count,
        "next_attempt_at": d.next_attempt_at,
        "created_at": d.created_at,
        "delivered_at": d.delivered_at,
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
        "attempts": [_attempt_public(a) for a in attempts],
    }


# --- test pings and retries -----------------------------------------------------------------------


def send_test(*, session: Session, owner: str, endpoint_id: str) -> WebhookDelivery:
    """Queue an unsequenced ``webhook.ping`` to the endpoint (even a disabled one: it is a test)."""
    endpoint = get_endpoint(session=session, owner=owner, endpoint_id=endpoint_id)
    now = utcnow()
    msg_id = new_id("msg")
    payload = {
        "id": msg_id,
        "type": "webhook.ping",
        "sequence": None,
        "timestamp": now,
        "data": {"endpoint_id": endpoint.id, "message": "This is a test message from the IMI Standards API."},
    }
    message = WebhookMessage(
        id=msg_id, event_type="webhook.ping", sequence=None, body=dumps(payload).decode(), created_at=now
    )
    session.add(message)
    session.flush()
    row = fanout.delivery_row(endpoint_id=endpoint.id, message=message, due=now, now=now)
    fanout.insert_deliveries(session, [row])
    audit.record(session, actor=owner, action="webhook_endpoint.test", target=endpoint.id)
    delivery = session.get(WebhookDelivery, row["id"])
    assert delivery is not None
    return delivery


def _owned_delivery(session: Session, owner: str, endpoint_id: str, delivery_id: str) -> WebhookDelivery:
    endpoint = get_endpoint(session=session, owner=owner, endpoint_id=endpoint_id)
    delivery = session.exec(
        select(WebhookDelivery)
        .where(col(WebhookDelivery.id) == delivery_id, col(WebhookDelivery.endpoint_id) == endpoint.id)
        .with_for_update()
    ).first()
    if delivery is None:
        raise NotFound(f"No delivery {delivery_id!r} on this endpoint.")
    return delivery


def retry_delivery(
    *, session: Session, owner: str, endpoint_id: str, delivery_id: str, schedule_len: int
) -> WebhookDelivery:
    """Send a delivery once more, now, whatever its state (one attempt; a failure ends it
    ``failed`` again). 409 while a worker is sending it, or when the endpoint is disabled."""
    endpoint = get_endpoint(session=session, owner=owner, endpoint_id=endpoint_id)
    if not endpoint.enabled:
        raise Conflict('The endpoint is disabled: re-enable it (PATCH {"enabled": true}) first.')
    delivery = _owned_delivery(session, owner, endpoint_id, delivery_id)
    now = utcnow()
    if delivery.lease_expires_at is not None and delivery.lease_expires_at > now:
        raise Conflict("This delivery is being sent right now; look again in a moment.")
    delivery.status = "pending"
    delivery.schedule_base = delivery.attempt_count - (schedule_len - 1)
    delivery.next_attempt_at = now
    delivery.updated_at = now
    session.add(delivery)
    session.info[fanout.WAKE_FLAG] = True
    audit.record(session, actor=owner, action="webhook_delivery.retry", target=delivery.id)
    session.flush()
    return delivery


# --- the delivery log ----------------------------------------------------------------------------


def list_deliveries(
    *,
    session: Session,
    owner: str,
    endpoint_id: str,
    before_id: str | None,
    limit: int,
    status: str | None = None,
) -> list[tuple[WebhookDelivery, list[WebhookAttempt]]]:
    """The endpoint's deliveries, newest first (keyset ``before_id``), each with its attempts."""
    endpoint = get_endpoint(session=session, owner=owner, endpoint_id=endpoint_id)
    stmt = select(WebhookDelivery).where(col(WebhookDelivery.endpoint_id) == endpoint.id)
    if status:
        stmt = stmt.where(col(WebhookDelivery.status) == status)
    if before_id:
        stmt = stmt.where(col(WebhookDelivery.id) < before_id)
    deliveries = list(session.exec(stmt.order_by(col(WebhookDelivery.id).desc()).limit(limit)))
    by_id: dict[str, list[WebhookAttempt]] = {d.id: [] for d in deliveries}
    if by_id:
        attempts = session.exec(
            select(WebhookAttempt)
            .where(col(WebhookAttempt.delivery_id).in_(list(by_id)))
            .order_by(col(WebhookAttempt.delivery_id), col(WebhookAttempt.number), col(WebhookAttempt.id))
        )
        for a in attempts:
            by_id[a.delivery_id].append(a)
    return [(d, by_id[d.id]) for d in deliveries]


def prune(session: Session, now: dt.datetime, *, keep_days: int = 30) -> int:
    """Delete finished deliveries (and their attempts) older than ``keep_days``, and messages no
    delivery references any more (a periodic job); returns the deliveries removed."""
    cutoff = now - dt.timedelta(days=keep_days)
    old = select(WebhookDelivery.id).where(
        col(WebhookDelivery.status) != "pending", col(WebhookDelivery.updated_at) < cutoff
    )
    session.execute(sa.delete(WebhookAttempt).where(col(WebhookAttempt.delivery_id).in_(old)))
    removed = session.execute(
        sa.delete(WebhookDelivery).where(
            col(WebhookDelivery.status) != "pending", col(WebhookDelivery.updated_at) < cutoff
        )
    ).rowcount  # type: ignore[attr-defined]
    used = select(WebhookDelivery.message_id)
    session.execute(
        sa.delete(WebhookMessage).where(
            col(WebhookMessage.created_at) < cutoff, col(WebhookMessage.id).not_in(used)
        )
    )
    return int(removed or 0)


# --- the queue, for /metrics ----------------------------------------------------------------------


def delivery_counts(session: Session) -> dict[str, int]:
    """Deliveries by status: ``{"pending": n, "succeeded": n, "failed": n}``."""
    counts = {s: 0 for s in ("pending", "succeeded", "failed")}
    rows = session.execute(
        sa.select(col(WebhookDelivery.status), sa.func.count()).group_by(col(WebhookDelivery.status))
    ).all()
    for status, n in rows:
        counts[str(status)] = int(n)
    return counts


def _due_filter(now: dt.datetime) -> Any:
    return sa.and_(
        col(WebhookDelivery.status) == "pending",
        col(WebhookDelivery.next_attempt_at) <= now,
        not_leased(now),
    )


def due_count(session: Session, *, now: dt.datetime | None = None) -> int:
    """Pending deliveries whose attempt is due and that no worker holds."""
    now = now or utcnow()
    return int(session.execute(sa.select(sa.func.count()).where(_due_filter(now))).scalar_one())


def leased_count(session: Session, *, now: dt.datetime | None = None) -> int:
    """Deliveries a worker is sending right now (lease not expired)."""
    now = now or utcnow()
    stmt = sa.select(sa.func.count()).where(
        col(WebhookDelivery.status) == "pending", col(WebhookDelivery.lease_expires_at) >= now
    )
    return int(session.execute(stmt).scalar_one())


def oldest_due_age_s(session: Session, *, now: dt.datetime | None = None) -> float:
    """Seconds the longest-waiting due delivery has been due (0 when none is): the queue's lag."""
    now = now or utcnow()
    oldest = session.execute(sa.select(sa.func.min(WebhookDelivery.next_attempt_at)).where(_due_filter(now)))
    value = oldest.scalar()
    if value is None:
        return 0.0
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return max(0.0, (now - value).total_seconds())


def _metrics(engine: Engine) -> Iterable[GaugeMetricFamily]:
    """The delivery queue for ``/metrics``: deliveries by status, due, in flight, and the lag."""
    now = utcnow()
    with transaction(engine, readonly=True) as session:
        counts = delivery_counts(session)
        due, in_flight = due_count(session, now=now), leased_count(session, now=now)
        lag = oldest_due_age_s(session, now=now)
    by_status = GaugeMetricFamily(
        "imi_webhook_deliveries", "Webhook deliveries by status.", labels=["status"]
    )
    for status, n in counts.items():
        by_status.add_metric([status], n)
    yield by_status
    yield GaugeMetricFamily(
        "imi_webhook_deliveries_due", "Pending deliveries due now that no worker holds.", value=due
    )
    yield GaugeMetricFamily(
        "imi_webhook_deliveries_in_flight", "Deliveries a worker is sending (live lease).", value=in_flight
    )
    yield GaugeMetricFamily(
        "imi_webhook_oldest_due_age_seconds",
        "Seconds the longest-waiting due delivery has waited (0 when none): the queue's lag.",
        value=lag,
    )


metrics.register_collector("webhooks", _metrics)
