"""Webhook endpoints, test pings, retries, recovery, and the delivery log.

Plain functions with keyword-only arguments; the caller owns the transaction.
URL address checks are asynchronous (they may resolve names) and happen in
the caller before :func:`create_endpoint`/:func:`update_endpoint`
(``urlguard.check_url``); the worker checks again at every attempt.

The fan-out of events into deliveries is :mod:`service.webhooks.fanout`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from service.core import audit, metrics
from service.core.db import transaction, utcnow
from service.core.errors import Conflict, NotFound, Unprocessable
from service.core.ids import new_id
from service.core.jsonutil import dumps, isoformat
from service.events import service as events
from service.events.models import Event
from service.security import secretbox
from service.webhooks import fanout, signing
from service.webhooks.claims import not_leased
from service.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
from service.webhooks.schemas import EVENT_CATALOGUE, EndpointUpdate

#: At most this many endpoints per association.
MAX_ENDPOINTS_PER_OWNER = 1000
#: ``recover`` creates deliveries for at most this many missed events per call.
RECOVER_MAX_EVENTS = 10_000
EXCERPT_BYTES = 1024


# --- representations ------------------------------------------------------------------


def endpoint_public(endpoint: WebhookEndpoint, *, secret: str | None = None) -> dict[str, Any]:
    """The owner's view of an endpoint; ``secret`` only when just created or rotated."""
    body: dict[str, Any] = {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types),
        "enabled": endpoint.enabled,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
        "failing_since": endpoint.failing_since,
        "last_success_at": endpoint.last_success_at,
        "last_failure_at": endpoint.last_failure_at,
        "disabled_at": endpoint.disabled_at,
        "disabled_reason": endpoint.disabled_reason,
        "previous_secret_expires_at": endpoint.previous_secret_expires_at,
    }
    if secret is not None:
        body["secret"] = secret
    return body


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


def _audit_url(url: str) -> str:
    """The URL without query or fragment: receivers sometimes put tokens there, and audits hold no secrets."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}{parts.path}"


def catalogue() -> list[dict[str, Any]]:
    """Every event type with its description and the JSON Schema of its ``data``."""
    return [
        {
            "type": name,
            "description": description,
            "sequenced": name != "webhook.ping",
            "schema": model.model_json_schema(),
        }
        for name, (model, description) in EVENT_CATALOGUE.items()
    ]


# --- endpoints ----------------------------------------------------------------------------


def _check_types(event_types: Sequence[str]) -> list[str]:
    if "webhook.ping" in event_types:
        raise Unprocessable(
            "webhook.ping cannot be subscribed to: POST …/test sends it to one endpoint",
            extra={"known_types": list(events.EVENT_TYPES)},
        )
    unknown = sorted(set(event_types) - set(events.EVENT_TYPES))
    if unknown:
        raise Unprocessable(
            f"unknown event type(s) {unknown[:10]}; see GET /v1/webhooks/event-types",
            extra={"known_types": list(events.EVENT_TYPES)},
        )
    return list(dict.fromkeys(event_types))


def _owned(session: Session, owner: str, endpoint_id: str, *, lock: bool = False) -> WebhookEndpoint:
    stmt = select(WebhookEndpoint).where(
        col(WebhookEndpoint.id) == endpoint_id, col(WebhookEndpoint.owner) == owner
    )
    if lock:
        stmt = stmt.with_for_update()
    endpoint = session.exec(stmt).first()
    if endpoint is None:
        raise NotFound(f"No webhook endpoint {endpoint_id!r} of yours.")
    return endpoint


def create_endpoint(
    *,
    session: Session,
    owner: str,
    url: str,
    event_types: Sequence[str],
    description: str,
    keys_dir: Path,
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint for ``owner``; returns it and its secret (shown once).

    The URL must already have passed ``urlguard.check_url``. Registering sends
    nothing; the endpoint receives events created from now on. Raises
    :class:`Unprocessable` for unknown event types or too many endpoints.
    """
    types = _check_types(event_types)
    count = session.execute(
        sa.select(sa.func.count()).where(col(WebhookEndpoint.owner) == owner)
    ).scalar_one()
    if count >= MAX_ENDPOINTS_PER_OWNER:
        raise Unprocessable(f"an association may register at most {MAX_ENDPOINTS_PER_OWNER} endpoints")
    secret = signing.new_secret()
    # Concurrent events: each one either committed already (and is not for this endpoint) or
    # waits for this registration to commit and then sees it. Without this, on PostgreSQL an
    # event stamped after ``created_at`` could fan out before the endpoint was visible and
    # commit after the registration answered, and the endpoint never got it.
    events.hold_events(session)
    now = utcnow()
    endpoint = WebhookEndpoint(
        id=new_id("whe"),
        owner=owner,
        url=url,
        description=description,
        event_types=types,
        enabled=True,
        secret_enc=secretbox.encrypt(keys_dir, secret),
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    session.flush()
    audit.record(
        session,
        actor=owner,
        action="webhook_endpoint.create",
        target=endpoint.id,
        details={"url": _audit_url(url), "event_types": types},
    )
    return endpoint, secret


def list_endpoints(
    *, session: Session, owner: str, after_id: str | None, limit: int
) -> list[WebhookEndpoint]:
    """``owner``'s endpoints, oldest first, after ``after_id`` (keyset), at most ``limit``."""
    stmt = select(WebhookEndpoint).where(col(WebhookEndpoint.owner) == owner)
    if after_id:
        stmt = stmt.where(col(WebhookEndpoint.id) > after_id)
    return list(session.exec(stmt.order_by(col(WebhookEndpoint.id)).limit(limit)))


def get_endpoint(*, session: Session, owner: str, endpoint_id: str) -> WebhookEndpoint:
    """One of ``owner``'s endpoints; :class:`NotFound` for any other id (others' included)."""
    return _owned(session, owner, endpoint_id)


def disable_endpoint(session: Session, *, endpoint: WebhookEndpoint, reason: str, actor: str) -> None:
    """Stop delivering to ``endpoint``: its pending deliveries end ``failed`` (``recover`` brings
    them back after re-enabling). Written to the audit log, not the event feed.

    A delivery being sent right now (its lease is live) finishes its attempt
    first: the worker records what the receiver answered, and a delivery that
    did not succeed then ends ``failed`` too.
    """
    now = utcnow()
    endpoint.enabled = False
    endpoint.disabled_at = now
    endpoint.disabled_reason = reason[:200]
    endpoint.updated_at = now
    session.add(endpoint)
    session.execute(
        sa.update(WebhookDelivery)
        .where(
            col(WebhookDelivery.endpoint_id) == endpoint.id,
            col(WebhookDelivery.status) == "pending",
            not_leased(now),
        )
        .values(
            status="failed",
            next_attempt_at=None,
            lease_owner=None,
            lease_expires_at=None,
            last_error=f"endpoint disabled: {reason}"[:500],
            updated_at=now,
        )
    )
    audit.record(
        session,
        actor=actor,
        action="webhook_endpoint.disable",
        target=endpoint.id,
        details={"reason": reason},
    )


def update_endpoint(
    *, session: Session, owner: str, endpoint_id: str, changes: EndpointUpdate
) -> WebhookEndpoint:
    """Apply a PATCH. ``enabled: true`` clears the failure state; ``enabled: false`` disables.

    A new ``url`` must already have passed ``urlguard.check_url``.
    """
    fields = changes.model_dump(exclude_unset=True)
    if not fields:  # nothing to change: not even updated_at
        return _owned(session, owner, endpoint_id)
    if fields.get("enabled") is True or fields.get("event_types") is not None:
        events.hold_events(session)  # which events it gets changes: see create_endpoint
    endpoint = _owned(session, owner, endpoint_id, lock=True)
    details: dict[str, Any] = {}
    if fields.get("url") is not None:
        endpoint.url = fields["url"]
        details["url"] = _audit_url(endpoint.url)
    if fields.get("event_types") is not None:
        endpoint.event_types = _check_types(fields["event_types"])
        details["event_types"] = endpoint.event_types
    if fields.get("description") is not None:
        endpoint.description = fields["description"]
        details["description"] = True
    endpoint.updated_at = utcnow()
    enabled = fields.get("enabled")
    if enabled is True:
        endpoint.enabled = True
        endpoint.disabled_at = None
        endpoint.disabled_reason = None
        endpoint.failing_since = None
        details["enabled"] = True
    session.add(endpoint)
    audit.record(session, actor=owner, action="webhook_endpoint.update", target=endpoint.id, details=details)
    if enabled is False and endpoint.enabled:
        disable_endpoint(session, endpoint=endpoint, reason="disabled by its owner", actor=owner)
    session.flush()
    return endpoint


def delete_endpoint(*, session: Session, owner: str, endpoint_id: str) -> None:
    """Delete an endpoint with its deliveries and attempts."""
    endpoint = _owned(session, owner, endpoint_id, lock=True)
    delivery_ids = select(WebhookDelivery.id).where(col(WebhookDelivery.endpoint_id) == endpoint.id)
    session.execute(sa.delete(WebhookAttempt).where(col(WebhookAttempt.delivery_id).in_(delivery_ids)))
    session.execute(sa.delete(WebhookDelivery).where(col(WebhookDelivery.endpoint_id) == endpoint.id))
    session.delete(endpoint)
    audit.record(session, actor=owner, action="webhook_endpoint.delete", target=endpoint_id)
    session.flush()


def rotate_secret(
    *, session: Session, owner: str, endpoint_id: str, keys_dir: Path, overlap_s: float
) -> tuple[WebhookEndpoint, str]:
    """Give the endpoint a new secret (returned once); the current one keeps signing beside
    it for ``overlap_s`` seconds. A secret older than that is dropped: at most two sign."""
    endpoint = _owned(session, owner, endpoint_id, lock=True)
    secret = signing.new_secret()
    now = utcnow()
    endpoint.previous_secret_enc = endpoint.secret_enc
    endpoint.previous_secret_expires_at = now + dt.timedelta(seconds=overlap_s)
    endpoint.secret_enc = secretbox.encrypt(keys_dir, secret)
    endpoint.updated_at = now
    session.add(endpoint)
    audit.record(
        session,
        actor=owner,
        action="webhook_endpoint.rotate_secret",
        target=endpoint.id,
        details={"previous_secret_expires_at": isoformat(endpoint.previous_secret_expires_at)},
    )
    session.flush()
    return endpoint, secret


# --- test, retry, recover ------------------------------------------------------------------------


def send_test(*, session: Session, owner: str, endpoint_id: str) -> WebhookDelivery:
    """Queue an unsequenced ``webhook.ping`` to the endpoint (even a disabled one: it is a test)."""
    endpoint = _owned(session, owner, endpoint_id)
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
    endpoint = _owned(session, owner, endpoint_id)
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
    endpoint = _owned(session, owner, endpoint_id)
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


def recover(*, session: Session, owner: str, endpoint_id: str, since: dt.datetime) -> tuple[int, int]:
    """Re-queue the endpoint's failed deliveries created at or after ``since`` (each gets the
    whole retry schedule again), and create deliveries for events at or after ``since`` of its
    types that it never received (at most 10,000 per call; call again with a later ``since``).

    Returns ``(requeued, created)``. 409 when the endpoint is disabled.
    """
    endpoint = _owned(session, owner, endpoint_id)
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
    stmt = select(Event).where(col(Event.timestamp) >= since, col(Event.id).not_in(have))
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
    endpoint = _owned(session, owner, endpoint_id)
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


def excerpt(data: bytes) -> str:
    """At most 1 KiB of a response body as text (invalid UTF-8 replaced)."""
    return data[:EXCERPT_BYTES].decode("utf-8", errors="replace")


# --- counters for metrics -------------------------------------------------------------------------


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
