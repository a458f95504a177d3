"""Retention jobs: what the service forgets, and when.

Registered with :mod:`service.core.jobs` (the delivery worker runs them):

- ``retention.events`` (hourly): events older than ``IMI_EVENTS_RETENTION_DAYS``;
  raises ``event_counter.pruned_through`` so the feed answers 410 below it.
- ``retention.idempotency_keys`` (hourly): stored ``Idempotency-Key``
  responses older than 24 h.

The webhooks package registers ``retention.webhook_attempts`` itself (its
tables, its rules). Every job is safe when several workers run it at once.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from service.core import changes, jobs
from service.core.config import Settings
from service.events.models import Event, EventCounter
from service.events.router import PRUNED

log = logging.getLogger("service.ops.retention")

EVENTS_JOB = "retention.events"
IDEMPOTENCY_JOB = "retention.idempotency_keys"
INTERVAL_S = 3600.0


def prune_events(session: Session, *, now: dt.datetime, retention_days: int) -> int:
    """Delete events older than ``retention_days`` before ``now``; returns how many.

    Deletes by sequence — everything up to the newest expired event — so the
    retained feed stays gap-free from ``pruned_through + 1``, and raises
    ``event_counter.pruned_through`` to that sequence (never lowers it).
    Idempotent: concurrent runs delete the same rows and agree on the mark.
    """
    cutoff = now - dt.timedelta(days=retention_days)
    through = session.execute(
        sa.select(sa.func.max(col(Event.sequence))).where(col(Event.timestamp) < cutoff)
    ).scalar()
    if through is None:
        return 0
    through = int(through)
    result: Any = session.execute(sa.delete(Event).where(col(Event.sequence) <= through))
    deleted = result.rowcount or 0
    session.execute(
        sa.update(EventCounter)
        .where(col(EventCounter.id) == 1, col(EventCounter.pruned_through) < through)
        .values(pruned_through=through)
    )
    if deleted:
        # Cached feed pages of these events must now answer 410 (service/events/router.py).
        changes.touch(session, PRUNED)
        log.info("pruned %d events through sequence %d", deleted, through)
    return int(deleted)


def register_jobs(settings: Settings) -> None:
    """Register the retention jobs for ``settings`` (replacing earlier registrations)."""
    days = settings.events_retention_days

    def events_job(session: Session, now: dt.datetime) -> int:
        return prune_events(session, now=now, retention_days=days)

    jobs.register(EVENTS_JOB, INTERVAL_S, events_job)

    from service.web import idempotency

    jobs.register(IDEMPOTENCY_JOB, INTERVAL_S, idempotency.prune)
