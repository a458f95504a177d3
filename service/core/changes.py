"""What public data changed, counted per domain, for the in-memory caches of public reads.

A *domain* names one kind of public data. Every write that changes public data
calls :func:`touch` with its domain inside its own transaction; the events outbox
does it for every event (the domain is the event type's first segment:
``standards``, ``school``), and a write that changes a public field without an
event touches a domain of its own (erasing a school's contact details changes its
public ``updated_at``: ``school.record``).

Two clocks follow the touches:

- the database: one row per domain in ``change_generations`` whose ``generation``
  grows by one per touching transaction (committed with the change, so a reader
  that sees the new generation sees the change); :func:`read_generations` reads
  them all in one small query — how other processes' writes are noticed;
- this process: the domain's local epoch moves when a touching commit begins
  and again when it has ended (the core's
  :func:`~service.core.db.guard_session_commit`), so a client that wrote through
  this process — or saw that write anywhere — never gets a representation read
  before it.

Nothing here knows what the domains hold: the caches ask for the domains their
representations depend on (``service.web.cache``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlmodel import Field, Session, SQLModel

from service.core.db import guard_session_commit

#: Writes to a school row that carry no event (they still touch public fields).
SCHOOL_RECORD = "school.record"


class ChangeGeneration(SQLModel, table=True):
    """How many committed transactions changed ``domain`` (only ever grows)."""

    __tablename__ = "change_generations"

    domain: str = Field(primary_key=True, max_length=40)
    generation: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, default=0))


_table = ChangeGeneration.__table__  # type: ignore[attr-defined]
_SESSION_KEY = "imi_touched_domains"

_lock = threading.Lock()
#: domain -> how often a commit of this process that touched it began or ended.
_local_epochs: dict[str, int] = {}
#: domain -> commits of this process touching it that are under way right now.
_in_flight: dict[str, int] = {}
#: Grows with every local epoch: one integer that says "something changed here".
_local_version = 0


def touch(session: Session, domain: str) -> None:
    """Count a change of ``domain`` in ``session``'s transaction (once per transaction).

    Upserts ``change_generations`` (``INSERT … ON CONFLICT DO UPDATE``, on SQLite and
    PostgreSQL alike); on PostgreSQL the row stays locked until the transaction ends,
    which orders the generations like the commits.
    """
    touched: set[str] = session.info.setdefault(_SESSION_KEY, set())
    if domain in touched:
        return
    touched.add(domain)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(_table).values(domain=domain, generation=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[_table.c.domain], set_={"generation": _table.c.generation + 1}
    )
    session.execute(stmt)


def move_past(conn: Connection, before: dict[str, int]) -> None:
    """After a restore replaced the data under running processes: set every domain's
    generation past both what the processes may have read (``before``, read before the
    restore) and what the restored rows say, so every process sees every domain change
    (a restored counter equal to the one a process last read would otherwise look unchanged).
    Nothing to do when ``before`` is empty: no process can have read a generation then, and
    the restored ones stay as exported (a re-export is byte-identical)."""
    if not before:
        return
    after = read_generations(conn)
    for domain in sorted(set(before) | set(after)):
        value = max(before.get(domain, 0), after.get(domain, 0)) + 1
        if domain in after:
            conn.execute(_table.update().where(_table.c.domain == domain).values(generation=value))
        else:
            conn.execute(_table.insert().values(domain=domain, generation=value))


def _bump(domains: set[str], flight: int) -> None:
    global _local_version
    with _lock:
        for domain in domains:
            _local_epochs[domain] = _local_epochs.get(domain, 0) + 1
            _in_flight[domain] = _in_flight.get(domain, 0) + flight
        _local_version += 1


@contextmanager
def _commit_window(session: Session) -> Iterator[None]:
    # The epoch moves when the commit begins and again when it has ended: a representation
    # read before the commit is stale from its start (a reader that sees the committed rows
    # must not get it), and one read while it was under way cannot be trusted afterwards.
    domains: set[str] | None = session.info.get(_SESSION_KEY)
    if not domains:
        yield
        return
    _bump(domains, +1)
    try:
        yield
    finally:
        session.info.pop(_SESSION_KEY, None)
        _bump(domains, -1)


guard_session_commit(_commit_window)


def local_version() -> int:
    """A number that grows whenever a touching transaction of this process commits."""
    return _local_version


def local_epoch(domain: str) -> int:
    """How often a commit of this process touching ``domain`` began or ended; ``-1`` while
    one is under way (nothing read now may be kept as current)."""
    if _in_flight.get(domain):
        return -1
    return _local_epochs.get(domain, 0)


def read_generations(conn: Connection) -> dict[str, int]:
    """``{domain: generation}`` as the database has them (domains never touched are absent)."""
    rows = conn.execute(sa.select(_table.c.domain, _table.c.generation))
    return {str(domain): int(generation) for domain, generation in rows}
