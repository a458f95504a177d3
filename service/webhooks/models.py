"""Webhook endpoints, messages (the signed bytes), deliveries and attempts.

- :class:`WebhookEndpoint` — an association's receiver: URL, event types,
  encrypted secret(s), failure state.
- :class:`WebhookMessage` — one payload serialised once (``webhook-id`` = its
  id = the event id; pings get a ``msg_`` id). Every endpoint and every retry
  sends these exact bytes.
- :class:`WebhookDelivery` — one message × one endpoint: status, schedule
  position, lease (which worker owns it until when).
- :class:`WebhookAttempt` — one HTTP try of a delivery.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import JSON, Column, Field, SQLModel

from service.core.db import UTCDateTime

#: A JSON array column, ``jsonb`` on PostgreSQL (the fan-out tests membership on every row).
FilterList = sa.JSON().with_variant(JSONB(), "postgresql")

#: Delivery states: ``pending`` (waiting or being sent), ``succeeded``, ``failed`` (final).
DELIVERY_STATUSES = ("pending", "succeeded", "failed")


class WebhookEndpoint(SQLModel, table=True):
    """A receiver owned by an API client (``owner`` = client id).

    ``secret_enc`` is the Fernet-encrypted signing key: the ``whsec_`` secret
    (``signature_scheme`` ``hmac-sha256``) or the ``whsk_`` Ed25519 private key
    (``ed25519``, whose ``whpk_`` public key is ``public_key``); after a rotation
    ``previous_secret_enc`` (and ``previous_public_key``) keeps signing until
    ``previous_secret_expires_at``. ``filter_countries``/``filter_documents``/
    ``filter_languages`` (JSON arrays, empty: no restriction) narrow which events
    of its ``event_types`` it gets (``service/webhooks/filters.py``).
    ``failing_since`` is the start of the current run of failed attempts
    (``None`` after a success); ``disabled_at``/``disabled_reason`` say why an
    endpoint stopped receiving (``410 Gone``, failing too long, or its owner).
    """

    __tablename__ = "webhook_endpoints"

    id: str = Field(primary_key=True, max_length=40)
    owner: str = Field(max_length=40, index=True)
    url: str = Field(max_length=2000)
    description: str = Field(default="", max_length=500)
    event_types: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    filter_countries: list[str] = Field(
        default_factory=list, sa_column=Column(FilterList, nullable=False, server_default=sa.text("'[]'"))
    )
    filter_documents: list[str] = Field(
        default_factory=list, sa_column=Column(FilterList, nullable=False, server_default=sa.text("'[]'"))
    )
    filter_languages: list[str] = Field(
        default_factory=list, sa_column=Column(FilterList, nullable=False, server_default=sa.text("'[]'"))
    )
    signature_scheme: str = Field(
        default="hmac-sha256",
        sa_column=Column(sa.String(16), nullable=False, server_default="hmac-sha256"),
    )
    public_key: str | None = Field(default=None, max_length=80)
    previous_public_key: str | None = Field(default=None, max_length=80)
    enabled: bool = True
    secret_enc: str = Field(sa_column=Column(sa.Text, nullable=False))
    previous_secret_enc: str | None = Field(default=None, sa_column=Column(sa.Text, nullable=True))
    previous_secret_expires_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    failing_since: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_success_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_failure_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    disabled_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    disabled_reason: str | None = Field(default=None, max_length=200)


class WebhookMessage(SQLModel, table=True):
    """A payload as sent: ``body`` is the UTF-8 JSON text, serialised once."""

    __tablename__ = "webhook_messages"

    id: str = Field(primary_key=True, max_length=40)
    event_type: str = Field(max_length=64)
    sequence: int | None = Field(default=None, sa_column=Column(sa.BigInteger, nullable=True))
    body: str = Field(sa_column=Column(sa.Text, nullable=False))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))


class WebhookDelivery(SQLModel, table=True):
    """One message to one endpoint.

    ``attempt_count`` counts every attempt ever made; the next attempt's delay
    is ``retry_schedule[attempt_count - schedule_base]`` and the delivery is
    ``failed`` once that index passes the schedule's end (``retry`` and
    ``recover`` move ``schedule_base`` to grant more attempts). A worker owns
    a pending delivery while ``lease_expires_at`` is in the future.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("endpoint_id", "message_id", name="uq_webhook_deliveries_endpoint_message"),
        sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    endpoint_id: str = Field(
        sa_column=Column(
            sa.String(40), sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False
        )
    )
    message_id: str = Field(
        sa_column=Column(sa.String(40), sa.ForeignKey("webhook_messages.id"), nullable=False, index=True)
    )
    event_type: str = Field(max_length=64)
    sequence: int | None = Field(default=None, sa_column=Column(sa.BigInteger, nullable=True))
    status: str = Field(default="pending", max_length=16)
    attempt_count: int = 0
    schedule_base: int = 0
    next_attempt_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    lease_owner: str | None = Field(default=None, max_length=80)
    lease_expires_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    delivered_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)


class WebhookAttempt(SQLModel, table=True):
    """One HTTP attempt: when, status code (``None`` when no response), duration,
    a response excerpt (at most 1 KiB), the error, and when the next attempt is due."""

    __tablename__ = "webhook_attempts"

    id: int | None = Field(
        default=None,
        sa_column=Column(
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    delivery_id: str = Field(
        sa_column=Column(
            sa.String(40),
            sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    number: int
    at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    status_code: int | None = None
    duration_ms: int = 0
    response_excerpt: str | None = Field(default=None, sa_column=Column(sa.Text, nullable=True))
    error: str | None = Field(default=None, max_length=500)
    next_attempt_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
