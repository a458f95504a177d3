"""The full-state sync document ``GET /v1/snapshot`` (DESIGN §3 "Webhooks and sync").

``{"sequence": N, "standards": [...], "schools": [...]}``: the current version
of every standards document (its full representation in the source language,
as ``GET /v1/standards/{slug}/current`` sends it) and every *listed* school
(its public representation, never ``contact``) with an ``affiliation`` summary
``{"affiliated", "status", "aligned_version", "reaffirmation_due_by"}``, plus
the ``sequence`` of the newest event the content reflects.

Consistency (the list-then-watch pattern): the sequence and the content are
read in ONE database snapshot, so a subscriber that loads the snapshot and
then follows ``/v1/events?after=<sequence>`` misses nothing and sees nothing
twice. Event sequences are handed out under the counter row's lock and
committed in sequence order (``events/models.py``), so every database
snapshot holds exactly the events ``1..N`` for the counter value ``N`` it
sees.

- PostgreSQL: the queries run in one ``REPEATABLE READ READ ONLY``
  transaction; its snapshot is taken at the first statement.
- SQLite: one read transaction (plain ``BEGIN`` for read-only sessions, see
  ``db.py``) is already a snapshot in WAL mode, fixed at its first read.

No credentials: the snapshot carries no signed affiliation credentials. A
credential is signed per school (ES256) with a fresh ``jti``/``iat`` and, for
schools nobody asked about, is not in the registry's cache, so including them
would cost one signature per listed school, make the bytes (and the ETag)
change on every build, and tie a 24-hour credential to a sync document. Each
school's ``links.affiliation`` serves its signed credential (cached there).

The serialised document is a public read of the public-representation cache
(``service/web/cache.py``, :data:`RESOURCE`): it is reused until a standards or
school event commits, or a school row changes without one (erasing contact
details touches the public ``updated_at``: the ``school.record`` domain).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from service.core import changes
from service.core.jsonutil import dumps
from service.events.models import EventCounter
from service.registry import service as registry
from service.standards import service as standards
from service.web import cache
from service.web.http import make_etag

#: PostgreSQL transaction characteristics of the snapshot's queries.
SNAPSHOT_OPTIONS = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}

#: ``GET /v1/snapshot`` in the public-representation cache.
RESOURCE = cache.Resource(route="/v1/snapshot", domains=("standards", "school", changes.SCHOOL_RECORD))


@dataclass(frozen=True)
class Built:
    """A serialised snapshot: ``body`` (UTF-8 JSON), its strong ``etag`` and ``sequence``;
    ``expires_at`` (Unix seconds): when a version takes effect and the standards in it say
    another version is in force, or ``None``."""

    sequence: int
    body: bytes
    etag: str
    expires_at: float | None = None


def begin_snapshot(session: Session) -> None:
    """Make ``session``'s transaction a consistent read snapshot (call before its first query).

    On PostgreSQL the transaction becomes ``REPEATABLE READ`` and read-only.
    Raises ``RuntimeError`` when the session already started a transaction
    with a weaker isolation (its statements would each see a different state).
    On SQLite nothing is needed: one transaction reads one WAL snapshot.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    if session.in_transaction():
        level = session.connection().get_isolation_level()
        if level not in ("REPEATABLE READ", "SERIALIZABLE"):
            raise RuntimeError(f"snapshot reads need a fresh session, this one is at {level}")
        return
    session.connection(execution_options=SNAPSHOT_OPTIONS)


def snapshot_dict(*, session: Session, base_url: str, sequence: int) -> dict[str, Any]:
    """The snapshot document for the state ``session`` sees (whose event counter is ``sequence``)."""
    return {
        "sequence": sequence,
        "standards": standards.current_versions_for_snapshot(session=session, base_url=base_url),
        "schools": registry.listed_schools_for_snapshot(session=session, base_url=base_url),
    }


def build_snapshot(*, session: Session, base_url: str) -> Built:
    """The serialised snapshot, read in one consistent database snapshot.

    ``session`` must not have run a query yet on PostgreSQL (see :func:`begin_snapshot`).
    """
    begin_snapshot(session)
    sequence = session.execute(sa.select(col(EventCounter.value)).where(col(EventCounter.id) == 1)).scalar()
    body = dumps(snapshot_dict(session=session, base_url=base_url, sequence=int(sequence or 0)))
    changes_at = standards.representations_change_at(session=session)
    return Built(
        sequence=int(sequence or 0),
        body=body,
        etag=make_etag(body),
        expires_at=changes_at.timestamp() if changes_at is not None else None,
    )
