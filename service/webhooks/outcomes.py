"""Outcomes: what a finished attempt does to its delivery and its endpoint, written in batches.

- **The next state** (:func:`next_state`): a ``2xx`` ends the delivery
  ``succeeded``; ``410 Gone`` ends it ``failed`` (and disables the endpoint);
  any other failure schedules the next attempt on the retry schedule (with
  jitter, honouring ``Retry-After``) until the schedule is used up.
- **Recording** (:meth:`Recorder.record`): outcomes are written in batches
  (one transaction for many attempts), only for deliveries whose lease this
  worker still holds. Each batch inserts the attempts, updates the deliveries
  (releasing their leases) and the endpoints' failure state
  (``failing_since``, ``last_success_at``/``last_failure_at``), and disables
  endpoints that answered ``410`` or have failed for longer than
  ``IMI_WEBHOOK_DISABLE_AFTER_S``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from service.core.db import transaction, utcnow
from service.webhooks import service as webhook_service
from service.webhooks.attempt import Outcome
from service.webhooks.claims import Claimed
from service.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

#: ``Retry-After`` is honoured up to this many seconds (or the schedule's longest delay).
RETRY_AFTER_MAX_S = 3600.0
#: Jitter added to a scheduled delay: up to this fraction of it (never less than scheduled).
JITTER = 0.1


@dataclass
class Result:
    """A finished attempt waiting to be recorded."""

    claimed: Claimed
    outcome: Outcome
    at: dt.datetime
    finished: dt.datetime
    status: str
    next_attempt_at: dt.datetime | None


def next_state(
    item: Claimed, outcome: Outcome, finished: dt.datetime, schedule: Sequence[float]
) -> tuple[str, dt.datetime | None]:
    """The delivery's state after ``outcome``: ``("succeeded", None)``, ``("failed", None)``
    (410 Gone, or the retry ``schedule`` (seconds) is used up), or ``("pending", when)``
    with the next attempt due the schedule's next delay after ``finished``, plus up to
    :data:`JITTER` of it, and at least a ``Retry-After`` (up to :data:`RETRY_AFTER_MAX_S`
    or the schedule's longest delay)."""
    if outcome.kind == "success":
        return "succeeded", None
    if outcome.kind == "gone":
        return "failed", None
    index = item.attempt_count + 1 - item.schedule_base
    if index >= len(schedule) or index < 0:
        return "failed", None
    delay = schedule[index]
    delay += random.uniform(0.0, delay * JITTER)
    if outcome.retry_after is not None:
        # Honour Retry-After, bounded by the longest scheduled delay (or an hour if longer).
        delay = max(delay, min(outcome.retry_after, max(max(schedule), RETRY_AFTER_MAX_S)))
    return "pending", finished + dt.timedelta(seconds=delay)


class Recorder:
    """Writes one worker's outcomes (:meth:`record`); runs in the worker's database threads.

    ``worker_id`` is the ``lease_owner`` the worker claimed with: a result is
    written only while its delivery's lease is still this worker's.
    ``disable_after_s``: an endpoint failing continuously for longer is disabled.
    """

    def __init__(self, *, engine: Engine, worker_id: str, disable_after_s: float) -> None:
        self.engine = engine
        self.worker_id = worker_id
        self.disable_after_s = disable_after_s
        self.is_pg = engine.dialect.name == "postgresql"

    def record(self, batch: list[Result]) -> None:
        """Write a batch of outcomes: attempts, delivery states, endpoint failure state."""
        now = utcnow()
        with transaction(self.engine) as session:
            ids = [r.claimed.delivery_id for r in batch]
            # The deliveries whose lease this worker still holds, and whether their endpoint is
            # still enabled (one statement: this runs for every batch).
            owned_stmt = (
                sa.select(col(WebhookDelivery.id), col(WebhookEndpoint.enabled))
                .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id))
                .where(col(WebhookDelivery.id).in_(ids), col(WebhookDelivery.lease_owner) == self.worker_id)
            )
            if self.is_pg:
                owned_stmt = owned_stmt.with_for_update(of=WebhookDelivery)
            enabled: dict[str, bool] = {d: e for d, e in session.execute(owned_stmt).all()}
            # An endpoint disabled while its attempts were in flight: they are recorded as they
            # went, and one that did not succeed ends failed (no retry), as disabling ended the rest.
            rows = [
                r
                if enabled[r.claimed.delivery_id] or r.status != "pending"
                else dataclasses.replace(r, status="failed", next_attempt_at=None)
                for r in batch
                if r.claimed.delivery_id in enabled
            ]
            if not rows:
                return
            session.execute(
                sa.insert(WebhookAttempt.__table__),  # type: ignore[attr-defined]  # Core: no ORM bookkeeping
                [
                    {
                        "delivery_id": r.claimed.delivery_id,
                        "number": r.claimed.attempt_count + 1,
                        "at": r.at,
                        "status_code": r.outcome.status_code,
                        "duration_ms": r.outcome.duration_ms,
                        "response_excerpt": r.outcome.excerpt,
                        "error": r.outcome.error,
                        "next_attempt_at": r.next_attempt_at,
                    }
                    for r in rows
                ],
            )
            table = WebhookDelivery.__table__  # type: ignore[attr-defined]
            session.execute(
                sa.update(table)
                .where(table.c.id == sa.bindparam("b_id"))
                .values(
                    status=sa.bindparam("b_status"),
                    attempt_count=sa.bindparam("b_count"),
                    next_attempt_at=sa.bindparam("b_next"),
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=sa.bindparam("b_now"),
                    delivered_at=sa.case(
                        (sa.bindparam("b_ok"), sa.bindparam("b_at")), else_=table.c.delivered_at
                    ),
                    last_status_code=sa.bindparam("b_code"),
                    last_error=sa.bindparam("b_error"),
                ),
                [
                    {
                        "b_id": r.claimed.delivery_id,
                        "b_status": r.status,
                        "b_count": r.claimed.attempt_count + 1,
                        "b_next": r.next_attempt_at,
                        "b_now": now,
                        "b_ok": r.outcome.kind == "success",
                        "b_at": r.finished,
                        "b_code": r.outcome.status_code,
                        "b_error": r.outcome.error,
                    }
                    for r in sorted(rows, key=lambda r: r.claimed.delivery_id)
                ],
            )
            self._record_endpoints(session, rows, now)

    def _record_endpoints(self, session: Session, rows: list[Result], now: dt.datetime) -> None:
        by_endpoint: dict[str, list[Result]] = {}
        for r in sorted(rows, key=lambda r: r.finished):
            by_endpoint.setdefault(r.claimed.endpoint_id, []).append(r)
        ok: list[dict[str, Any]] = []
        bad: list[dict[str, Any]] = []
        gone: list[str] = []
        for endpoint_id, results in sorted(by_endpoint.items()):
            last = results[-1]
            if any(r.outcome.kind == "gone" for r in results):
                gone.append(endpoint_id)
            if last.outcome.kind == "success":
                ok.append({"b_id": endpoint_id, "b_at": last.finished})
            else:
                successes = [i for i, r in enumerate(results) if r.outcome.kind == "success"]
                first_fail = results[successes[-1] + 1 if successes else 0].at
                bad.append(
                    {
                        "b_id": endpoint_id,
                        "b_first": first_fail,
                        "b_at": last.finished,
                        "b_reset": bool(successes),
                    }
                )
        table = WebhookEndpoint.__table__  # type: ignore[attr-defined]
        if ok:
            session.execute(
                sa.update(table)
                .where(table.c.id == sa.bindparam("b_id"))
                .values(failing_since=None, last_success_at=sa.bindparam("b_at")),
                ok,
            )
        if bad:
            session.execute(
                sa.update(table)
                .where(table.c.id == sa.bindparam("b_id"))
                .values(
                    failing_since=sa.case(
                        (sa.bindparam("b_reset"), sa.bindparam("b_first")),
                        else_=sa.func.coalesce(table.c.failing_since, sa.bindparam("b_first")),
                    ),
                    last_failure_at=sa.bindparam("b_at"),
                ),
                bad,
            )
        limit = now - dt.timedelta(seconds=self.disable_after_s)
        too_long = [
            e
            for e in session.execute(
                sa.select(WebhookEndpoint).where(
                    col(WebhookEndpoint.id).in_([b["b_id"] for b in bad] or [""]),
                    col(WebhookEndpoint.enabled).is_(True),
                    col(WebhookEndpoint.failing_since) <= limit,
                )
            ).scalars()
            if e.id not in gone
        ]
        for endpoint in too_long:
            since = endpoint.failing_since
            webhook_service.disable_endpoint(
                session,
                endpoint=endpoint,
                reason=f"failing continuously since {since.isoformat() if since else '?'}",
                actor="system",
            )
        if gone:
            for endpoint in session.execute(
                sa.select(WebhookEndpoint).where(
                    col(WebhookEndpoint.id).in_(gone), col(WebhookEndpoint.enabled).is_(True)
                )
            ).scalars():
                webhook_service.disable_endpoint(
                    session, endpoint=endpoint, reason="the receiver answered 410 Gone", actor="system"
                )
