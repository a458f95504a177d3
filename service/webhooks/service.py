"""Webhook endpoints: register, list, read, update, disable, delete, rotate the secret; the
event-type catalogue they subscribe from.

Plain functions with keyword-only arguments; the caller owns the transaction.
URL address checks are asynchronous (they may resolve names) and happen in
the caller before :func:`create_endpoint`/:func:`update_endpoint`
(``urlguard.check_url``); the worker checks again at every attempt.

The rest of the domain, by noun: events become deliveries in ``fanout.py``;
the delivery log, test pings, retries and the queue gauges are in
``deliveries.py``; catching up after an outage is ``recovery.py``; the worker
(``worker.py``) claims (``claims.py``), sends (``attempt.py``) and records
(``outcomes.py``); the keys that sign are chosen in ``signing.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlmodel import Session, col, select

from service.core import audit
from service.core.db import utcnow
from service.core.errors import NotFound, Unprocessable
from service.core.ids import new_id
from service.core.jsonutil import isoformat
from service.events import service as events
from service.security import secretbox
from service.webhooks import filters, signing
from service.webhooks.claims import not_leased
from service.webhooks.endpoint_schemas import EndpointFilter, EndpointUpdate, SignatureScheme
from service.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from service.webhooks.schemas import EVENT_CATALOGUE

#: At most this many endpoints per association.
MAX_ENDPOINTS_PER_OWNER = 1000


# --- representations ------------------------------------------------------------------


def endpoint_public(endpoint: WebhookEndpoint, *, secret: str | None = None) -> dict[str, Any]:
    """The owner's view of an endpoint; ``secret`` only when just created or rotated."""
    body: dict[str, Any] = {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types),
        "filter": filters.filter_public(endpoint),
        "signature_scheme": endpoint.signature_scheme,
        "public_key": endpoint.public_key,
        "previous_public_key": _previous_public_key(endpoint),
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


def _previous_public_key(endpoint: WebhookEndpoint) -> str | None:
    """The public key that still signs beside the current one (a rotation's overlap), if any."""
    until = endpoint.previous_secret_expires_at
    if endpoint.previous_public_key and until is not None and until > utcnow():
        return endpoint.previous_public_key
    return None


def _new_signing_key(scheme: str, keys_dir: Path) -> tuple[str, str | None, str | None]:
    """A new key for ``scheme``: ``(encrypted key, secret shown once or None, public key or None)``.

    An ``ed25519`` private key is encrypted like secrets and never shown; its
    ``whpk_`` public key is.
    """
    if scheme == "ed25519":
        private, public = signing.new_key_pair()
        return secretbox.encrypt(keys_dir, private), None, public
    secret = signing.new_secret()
    return secretbox.encrypt(keys_dir, secret), secret, None


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
    filter: EndpointFilter | None = None,
    signature_scheme: SignatureScheme = "hmac-sha256",
) -> tuple[WebhookEndpoint, str | None]:
    """Register an endpoint for ``owner``; returns it and its secret (shown once; ``None`` for
    an ``ed25519`` endpoint, whose ``public_key`` is on the endpoint).

    The URL must already have passed ``urlguard.check_url``. Registering sends
    nothing; the endpoint receives events created from now on (of its types,
    through its ``filter``). Raises :class:`Unprocessable` for unknown event
    types, unknown filter codes or documents, or too many endpoints.
    """
    types = _check_types(event_types)
    stored_filter = filters.read_endpoint_filter(session, filter)
    count = session.execute(
        sa.select(sa.func.count()).where(col(WebhookEndpoint.owner) == owner)
    ).scalar_one()
    if count >= MAX_ENDPOINTS_PER_OWNER:
        raise Unprocessable(f"an association may register at most {MAX_ENDPOINTS_PER_OWNER} endpoints")
    secret_enc, secret, public_key = _new_signing_key(signature_scheme, keys_dir)
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
        secret_enc=secret_enc,
        signature_scheme=signature_scheme,
        public_key=public_key,
        created_at=now,
        updated_at=now,
    )
    filters.apply(endpoint, stored_filter)
    session.add(endpoint)
    session.flush()
    audit.record(
        session,
        actor=owner,
        action="webhook_endpoint.create",
        target=endpoint.id,
        details={
            "url": _audit_url(url),
            "event_types": types,
            "filter": filters.filter_public(endpoint),
            "signature_scheme": signature_scheme,
        },
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
    """Apply a PATCH. ``enabled: true`` clears the failure state; ``enabled: false`` disables;
    ``filter`` replaces the filter (``{}`` removes it; 422 for unknown codes).

    A new ``url`` must already have passed ``urlguard.check_url``.
    """
    fields = changes.model_dump(exclude_unset=True)
    if not fields:  # nothing to change: not even updated_at
        return _owned(session, owner, endpoint_id)
    new_filter = filters.read_endpoint_filter(session, changes.filter) if "filter" in fields else None
    if fields.get("enabled") is True or fields.get("event_types") is not None or new_filter is not None:
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
    if new_filter is not None:
        filters.apply(endpoint, new_filter)
        details["filter"] = filters.filter_public(endpoint)
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
) -> tuple[WebhookEndpoint, str | None]:
    """Give the endpoint a new signing key; the current one keeps signing beside it for
    ``overlap_s`` seconds. A key older than that is dropped: at most two sign.

    Returns the endpoint and, for ``hmac-sha256``, the new secret (shown once); an
    ``ed25519`` endpoint gets a new key pair: ``public_key`` is the new one,
    ``previous_public_key`` the one still signing during the overlap.
    """
    endpoint = _owned(session, owner, endpoint_id, lock=True)
    secret_enc, secret, public_key = _new_signing_key(endpoint.signature_scheme, keys_dir)
    now = utcnow()
    endpoint.previous_secret_enc = endpoint.secret_enc
    endpoint.previous_secret_expires_at = now + dt.timedelta(seconds=overlap_s)
    endpoint.previous_public_key = endpoint.public_key
    endpoint.secret_enc = secret_enc
    endpoint.public_key = public_key
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
