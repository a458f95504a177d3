"""Fan-out: events become webhook deliveries, in the transaction that writes the event.

:func:`fan_out` is an in-transaction listener of every event (registered when
this module is imported; :func:`configure` sets when first attempts are due):
it writes the payload once (a :class:`WebhookMessage`) and one delivery per
matching endpoint, in the transaction that writes the event — an event that
commits is delivered, one that rolls back never is. Matching: the endpoint is
enabled, was created at or before the event, lists the event's type in
``event_types`` (an empty list means every type), and its filter lets the event
through (``filters.py``: countries, documents, languages).

Whatever creates or re-queues deliveries sets :data:`WAKE_FLAG` on the
session, so the in-process worker is woken as soon as the transaction commits. The message
and delivery-row builders here are shared by the test ping and ``recover``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from service.core.db import utcnow
from service.core.ids import new_id
from service.core.jsonutil import dumps
from service.events import service as events
from service.events.models import Event
from service.webhooks import filters
from service.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookMessage

#: ``session.info`` flag: wake in-process workers after this transaction commits.
WAKE_FLAG = "imi_webhooks_wake"


def delivery_row(
    *, endpoint_id: str, message: WebhookMessage, due: dt.datetime, now: dt.datetime
) -> dict[str, Any]:
    """A new pending delivery of ``message`` to ``endpoint_id``, first attempt due at ``due``:
    every column by name, for :func:`insert_deliveries` (fan-out, test pings and ``recover``
    all write their deliveries from it)."""
    return {
        "id": new_id("whd"),
        "endpoint_id": endpoint_id,
        "message_id": message.id,
        "event_type": message.event_type,
        "sequence": message.sequence,
        "status": "pending",
        "attempt_count": 0,
        "schedule_base": 0,
        "next_attempt_at": due,
        "lease_owner": None,
        "lease_expires_at": None,
        "created_at": now,
        "updated_at": now,
        "delivered_at": None,
        "last_status_code": None,
        "last_error": None,
    }


def insert_deliveries(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert :func:`delivery_row` rows in one statement; in-process workers wake after commit."""
    if rows:
        session.execute(sa.insert(WebhookDelivery.__table__), rows)  # type: ignore[attr-defined]
        session.info[WAKE_FLAG] = True


def message_for_event(session: Session, event: Event) -> WebhookMessage:
    """The message of ``event`` (its payload serialised once), created on first need."""
    message = session.get(WebhookMessage, event.id)
    if message is None:
        message = _new_message(event)
        session.add(message)
        session.flush()
    return message


def _new_message(event: Event) -> WebhookMessage:
    """``event``'s message, not yet stored: its payload serialised once."""
    return WebhookMessage(
        id=event.id,
        event_type=event.type,
        sequence=event.sequence,
        body=dumps(events.event_payload(event)).decode(),
        created_at=event.timestamp,
    )


def _delivery_ids(event: Event, dialect: str) -> sa.ColumnElement[str]:
    """SQL: a new delivery id per row, shaped like :func:`new_id`'s: ``whd_`` + the event's
    ULID time part (so ids sort by time) + 16 random hex digits (64 bits, valid ULID text)."""
    prefix = "whd_" + event.id.split("_", 1)[1][:10]
    if dialect == "postgresql":
        random_hex = sa.func.substr(sa.func.md5(sa.cast(sa.func.gen_random_uuid(), sa.Text)), 1, 16)
    else:
        random_hex = sa.func.lower(sa.func.hex(sa.func.randomblob(8)))
    return sa.literal(prefix, sa.String) + random_hex


def fan_out(session: Session, event: Event, *, first_delay_s: float = 0.0) -> int:
    """Create one delivery per endpoint that subscribed to ``event``, in the event's transaction.

    Subscribed: enabled, created at or before the event, ``event_types`` empty or
    listing the event's type, and a filter that admits it (``filters.admits``). The
    payload is written once (a
    :class:`WebhookMessage`); the deliveries are one ``INSERT … SELECT``, so no
    endpoint row travels through Python and a publish costs about the same
    with 10 or 10,000 endpoints. The first attempt is due ``first_delay_s``
    (the schedule's first entry) after the event. Returns the number of deliveries.
    """
    dialect = session.get_bind().dialect.name
    endpoint = WebhookEndpoint
    subscribed = sa.and_(
        col(endpoint.enabled).is_(True),
        col(endpoint.created_at) <= event.timestamp,
        filters.empty_or_lists(col(endpoint.event_types), event.type, dialect),
        *filters.admits(event, dialect),
    )
    message = _new_message(event)
    messages = WebhookMessage.__table__  # type: ignore[attr-defined]
    # The payload is stored only when some endpoint subscribed (then the deliveries refer to it).
    stored = session.execute(
        sa.insert(messages).from_select(
            [c.name for c in messages.columns],
            sa.select(*(sa.literal(getattr(message, c.name), c.type) for c in messages.columns)).where(
                sa.exists().where(subscribed)
            ),
        )
    ).rowcount  # type: ignore[attr-defined]
    if not stored:
        return 0
    # One row per subscribed endpoint, as send_test and recover write them, with the id made in SQL.
    row = delivery_row(
        endpoint_id="",
        message=message,
        due=event.timestamp + dt.timedelta(seconds=first_delay_s),
        now=utcnow(),
    )
    deliveries = WebhookDelivery.__table__  # type: ignore[attr-defined]
    values: dict[str, Any] = {
        name: sa.literal(value, deliveries.c[name].type) for name, value in row.items() if value is not None
    }
    values["id"] = _delivery_ids(event, dialect)
    values["endpoint_id"] = col(endpoint.id)
    created = int(
        session.execute(
            sa.insert(deliveries).from_select(list(values), sa.select(*values.values()).where(subscribed))
        ).rowcount  # type: ignore[attr-defined]
    )
    session.info[WAKE_FLAG] = True
    return created


#: The first entry of the retry schedule, set by whoever wires the app or the worker.
_first_delay = {"s": 0.0}


def configure(*, first_delay_s: float) -> None:
    """Set the delay before the first attempt (``retry_schedule[0]``) used by the fan-out listener."""
    _first_delay["s"] = first_delay_s


def _listener(session: Session, event: Event) -> None:
    fan_out(session, event, first_delay_s=_first_delay["s"])


events.subscribe(None, _listener)
