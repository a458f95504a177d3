"""Claims: which due deliveries a worker takes, and the lease that says it has them.

A worker claims due deliveries (pending, ``next_attempt_at`` passed, no live
lease: :func:`not_leased`) with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (on
SQLite the claim runs under ``BEGIN IMMEDIATE``, which serialises it) and
stamps them with a lease (``IMI_WEBHOOK_LEASE_S``). It claims only as many as
it has free slots, at most a few in flight per endpoint (:data:`PER_ENDPOINT`: five for a
healthy endpoint, one for a failing one), so a claimed delivery starts at once
and its lease (longer than the attempt deadline) cannot run out while it
waits. A worker killed mid-delivery loses nothing: its leases expire and
another worker claims the deliveries again (at-least-once). A worker that
stops gracefully gives its leases back (:meth:`Claims.release`).

A claim carries what sending needs (:class:`Claimed`): the endpoint's URL and
signing keys and the message's bytes, read in the claiming transaction; bodies
and decrypted keys are cached per worker (:class:`Claims`).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from service.core.db import transaction, utcnow
from service.webhooks import signing
from service.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookMessage

#: Deliveries of one endpoint in flight at once in one worker, per lane: a failing endpoint gets
#: one, so receivers that hang (each attempt up to the deadline) hold one slot each.
PER_ENDPOINT = {"healthy": 5, "failing": 1}


def not_leased(now: dt.datetime) -> sa.ColumnElement[bool]:
    """SQL: no worker is sending the delivery (no lease, or its lease ran out by ``now``)."""
    lease = col(WebhookDelivery.lease_expires_at)
    return sa.or_(lease.is_(None), lease < now)


@dataclass
class Claimed:
    """A delivery this worker holds a lease on, with what it needs to send it."""

    delivery_id: str
    endpoint_id: str
    msg_id: str
    attempt_count: int
    schedule_base: int
    url: str
    keys: list[signing.SigningKey]
    body: bytes
    lane: str


class Claims:
    """One worker's claims: takes due deliveries under its lease (:meth:`claim`) and gives
    them back (:meth:`release`). Runs in the worker's database threads.

    ``worker_id`` is written as each delivery's ``lease_owner``; ``lease`` is
    how long a claim holds. Message bodies (the last 2,048) and endpoints'
    decrypted keys (until the endpoint changes) are cached between claims.
    """

    def __init__(self, *, engine: Engine, worker_id: str, lease: dt.timedelta, keys_dir: Path) -> None:
        self.engine = engine
        self.worker_id = worker_id
        self.lease = lease
        self.keys_dir = keys_dir
        self.is_pg = engine.dialect.name == "postgresql"
        self._bodies: OrderedDict[str, bytes] = OrderedDict()
        self._keys: dict[str, tuple[dt.datetime, list[signing.SigningKey], dt.datetime | None]] = {}

    def claim(
        self, free: dict[str, int], busy: dict[str, int], probe: bool, poll_s: float
    ) -> tuple[list[Claimed], float | None]:
        """Claim up to ``free[lane]`` due deliveries per lane; returns them and the seconds until
        the next one is due (``None`` when nothing is scheduled).

        ``busy``: deliveries in flight per endpoint id (they count against
        :data:`PER_ENDPOINT`). ``probe``: look read-only first whether anything
        is due. ``poll_s`` is returned when deliveries are due but none could be
        taken (other workers hold them, or their endpoints are full): look again
        after the caller's poll interval.
        """
        now = utcnow()
        if probe:
            # A read-only look first: idle polls take no write lock (SQLite) and lock no rows.
            with transaction(self.engine, readonly=True) as session:
                next_due = self._next_due(session, now)
            if next_due is None:
                return [], None
            if next_due > now:
                return [], (next_due - now).total_seconds()
        claimed: list[Claimed] = []
        with transaction(self.engine) as session:
            # Shared by both lanes: another worker may flip an endpoint between "healthy" and
            # "failing" between the two lanes' statements, and a row must never be taken twice.
            chosen: dict[str, tuple[str, str, str, int, int, str]] = {}
            taken: Counter[str] = Counter()
            for lane, n in free.items():
                if n > 0:
                    self._pick(session, lane, n, busy, now, chosen, taken)
            rows = list(chosen.values())
            if not rows:
                return [], poll_s
            ids = [r[0] for r in rows]
            session.execute(
                sa.update(WebhookDelivery)
                .where(col(WebhookDelivery.id).in_(ids))
                .values(lease_owner=self.worker_id, lease_expires_at=now + self.lease)
            )
            endpoint_ids = sorted({r[1] for r in rows})
            e = WebhookEndpoint
            # Plain rows, not ORM objects: loading 60-120 endpoint objects per claim was a fifth of it.
            endpoints: dict[str, Any] = {
                r.id: r
                for r in session.execute(
                    sa.select(
                        col(e.id),
                        col(e.url),
                        col(e.updated_at),
                        col(e.secret_enc),
                        col(e.previous_secret_enc),
                        col(e.previous_secret_expires_at),
                    ).where(col(e.id).in_(endpoint_ids))
                )
            }
            wanted = sorted({r[2] for r in rows} - set(self._bodies))
            if wanted:
                for mid, body in session.execute(
                    sa.select(col(WebhookMessage.id), col(WebhookMessage.body)).where(
                        col(WebhookMessage.id).in_(wanted)
                    )
                ).all():
                    self._remember_body(mid, body.encode())
            for delivery_id, endpoint_id, msg_id, attempts, base, lane in rows:
                endpoint = endpoints[endpoint_id]
                claimed.append(
                    Claimed(
                        delivery_id=delivery_id,
                        endpoint_id=endpoint_id,
                        msg_id=msg_id,
                        attempt_count=attempts,
                        schedule_base=base,
                        url=endpoint.url,
                        keys=self._signing_keys(endpoint, now),
                        body=self._bodies[msg_id],
                        lane=lane,
                    )
                )
        return claimed, 0.0

    def _next_due(self, session: Session, now: dt.datetime) -> dt.datetime | None:
        stmt = sa.select(sa.func.min(WebhookDelivery.next_attempt_at)).where(
            col(WebhookDelivery.status) == "pending",
            not_leased(now),
        )
        value: dt.datetime | None = session.execute(stmt).scalar()
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value

    def _pick(
        self,
        session: Session,
        lane: str,
        n: int,
        busy: dict[str, int],
        now: dt.datetime,
        chosen: dict[str, tuple[str, str, str, int, int, str]],
        taken: Counter[str],
    ) -> None:
        """Up to ``n`` due deliveries of ``lane``, at most :data:`PER_ENDPOINT` in flight per
        endpoint. Candidates come oldest-due first from the index; endpoints that reach their
        share are excluded from the next round, so one endpoint's backlog cannot hide the others."""
        cap = PER_ENDPOINT[lane]
        full = {e for e, k in busy.items() if k >= cap}
        start = len(chosen)
        for _round in range(3):
            want = n - (len(chosen) - start)
            if want <= 0:
                break
            # A little more than wanted: most candidates are usable (one delivery per endpoint is
            # the fan-out case); rounds that skipped full endpoints exclude them and look again.
            limit = min(1000, want + want // 4 + 8)
            candidates = session.execute(self._claim_stmt(lane, limit, sorted(full), now)).all()
            for r in candidates:
                delivery_id, endpoint_id = r[0], r[1]
                if delivery_id in chosen:
                    continue
                if busy.get(endpoint_id, 0) + taken[endpoint_id] >= cap:
                    full.add(endpoint_id)
                    continue
                taken[endpoint_id] += 1
                chosen[delivery_id] = (r[0], r[1], r[2], r[3], r[4], lane)
                if len(chosen) - start >= n:
                    break
            if len(candidates) < limit:
                break

    def _claim_stmt(self, lane: str, limit: int, exclude: list[str], now: dt.datetime) -> Any:
        d, e = WebhookDelivery, WebhookEndpoint
        failing = col(e.failing_since).is_not(None) if lane == "failing" else col(e.failing_since).is_(None)
        stmt = (
            sa.select(
                col(d.id), col(d.endpoint_id), col(d.message_id), col(d.attempt_count), col(d.schedule_base)
            )
            .join(e, col(e.id) == col(d.endpoint_id))
            .where(
                col(d.status) == "pending",
                col(d.next_attempt_at) <= now,
                not_leased(now),
                # A ping goes even to a disabled endpoint: `test` checks a receiver before re-enabling.
                sa.or_(col(e.enabled).is_(True), col(d.event_type) == "webhook.ping"),
                failing,
            )
            # Not also by id: the due index is (status, next_attempt_at), and a fan-out's deliveries
            # all share one due time, so a tie-break made SQLite sort all of them on every claim.
            .order_by(col(d.next_attempt_at))
            .limit(limit)
        )
        if exclude:
            stmt = stmt.where(col(d.endpoint_id).not_in(exclude))
        if self.is_pg:
            # Rows another worker holds are skipped, and PostgreSQL re-checks the conditions on
            # a row's newest version after locking it, so a just-leased row is never taken twice.
            stmt = stmt.with_for_update(skip_locked=True, of=WebhookDelivery)
        return stmt

    def _remember_body(self, msg_id: str, body: bytes) -> None:
        self._bodies[msg_id] = body
        self._bodies.move_to_end(msg_id)
        while len(self._bodies) > 2048:
            self._bodies.popitem(last=False)

    def _signing_keys(self, endpoint: Any, now: dt.datetime) -> list[signing.SigningKey]:
        """``endpoint``: a row with ``id``, ``updated_at`` and the secret columns."""
        cached = self._keys.get(endpoint.id)
        if cached is None or cached[0] != endpoint.updated_at:
            keys = signing.signing_keys(
                endpoint, keys_dir=self.keys_dir, now=dt.datetime.min.replace(tzinfo=dt.UTC)
            )
            cached = (endpoint.updated_at, keys, endpoint.previous_secret_expires_at)
            self._keys[endpoint.id] = cached
        _, keys, previous_until = cached
        if len(keys) > 1 and (previous_until is None or previous_until <= now):
            return keys[:1]
        return list(keys)

    def release(self) -> None:
        """Give back the leases of deliveries still pending (a stopping worker): another
        worker may claim them at once instead of after the lease runs out."""
        with transaction(self.engine) as session:
            session.execute(
                sa.update(WebhookDelivery)
                .where(
                    col(WebhookDelivery.lease_owner) == self.worker_id,
                    col(WebhookDelivery.status) == "pending",
                )
                .values(lease_owner=None, lease_expires_at=None)
            )
