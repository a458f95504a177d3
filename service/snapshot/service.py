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
change on every build, and tie a 30-day credential to a sync document. Each
school's ``links.affiliation`` serves its signed credential (cached there).

The serialised document is a public read of the public-representation cache
(``service/web/cache.py``, :data:`RESOURCE`): it is reused until a standards or
school event commits, or a school row changes without one (erasing contact
details touches the public ``updated_at``: the ``school.record`` domain).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from service.core import changes
from service.core.db import transaction
from service.core.jsonutil import dumps
from service.events.models import EventCounter
from service.registry import service as registry
from service.registry.models import School
from service.security.keys import SNAPSHOT_TYP, KeyStore
from service.standards import service as standards
from service.transparency import log
from service.transparency import service as transparency
from service.transparency.signer import LogSigner
from service.web import cache
from service.web.http import make_etag

#: PostgreSQL transaction characteristics of the snapshot's queries.
SNAPSHOT_OPTIONS = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}

#: ``GET /v1/snapshot`` in the public-representation cache.
RESOURCE = cache.Resource(route="/v1/snapshot", domains=("standards", "school", changes.SCHOOL_RECORD))


#: Schools per chunk of the streamed document (about 0.7 KB each).
CHUNK_SCHOOLS = 500


@dataclass
class Stream:
    """A snapshot being read: its strong ``etag`` (known before the first byte) and its
    ``chunks``, read from a cursor inside one database snapshot (the transaction ends when the
    chunks are exhausted or closed). Their concatenation is the document."""

    etag: str
    sequence: int
    chunks: Iterator[bytes]
    #: When a version takes effect and the document would say another one is in force
    #: (Unix seconds), or ``None``: a copy is good until then.
    expires_at: float | None = None

    def close(self) -> None:
        """End the read early (the transaction is rolled back)."""
        close = getattr(self.chunks, "close", None)
        if close is not None:
            close()


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


def state_etag(*, session: Session, base_url: str) -> tuple[str, int, float | None]:
    """``(strong ETag, sequence, expires_at)`` of the document ``session`` would read.

    The document is a function of the event counter (every public change is an event), of
    the schools' rows (a write without an event, like erasing contact details, still bumps
    a school's ``revision``: their sum and count move), of which versions are in force now
    (that moves with the clock, at the next ``effective_from``: ``expires_at``, Unix
    seconds) and of the base URL; the ETag is a hash of those, so it is known before the
    first byte is streamed.
    """
    sequence = session.execute(sa.select(col(EventCounter.value)).where(col(EventCounter.id) == 1)).scalar()
    revisions, count = session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(col(School.revision)), 0), sa.func.count()).select_from(School)
    ).one()
    changes_at = standards.representations_change_at(session=session)
    expires_at = changes_at.timestamp() if changes_at is not None else None
    seq = int(sequence or 0)
    parts = ("snapshot/2", base_url, str(seq), str(int(revisions)), str(int(count)), str(expires_at))
    return make_etag(*parts), seq, expires_at


def snapshot_dict(*, session: Session, base_url: str, sequence: int) -> dict[str, Any]:
    """The whole snapshot document as one dict (for small registries and tests; the service
    streams it with :func:`open_stream`, byte for byte the same)."""
    return {
        "sequence": sequence,
        "standards": standards.current_versions_for_snapshot(session=session, base_url=base_url),
        "schools": list(registry.listed_schools_for_snapshot(session=session, base_url=base_url)),
    }


@dataclass(frozen=True)
class Built:
    """A whole serialised snapshot: ``body`` (UTF-8 JSON), its strong ``etag`` and ``sequence``."""

    sequence: int
    body: bytes
    etag: str


def _read(session: Session, base_url: str) -> Iterator[bytes | tuple[str, int, float | None]]:
    """First ``(etag, sequence, expires_at)``, then the document's bytes in chunks, all read by ``session``
    in one database snapshot (:func:`begin_snapshot` is called here)."""
    begin_snapshot(session)
    etag, sequence, expires_at = state_etag(session=session, base_url=base_url)
    yield etag, sequence, expires_at
    head = dumps(
        {
            "sequence": sequence,
            "standards": standards.current_versions_for_snapshot(session=session, base_url=base_url),
        }
    )
    # '{"sequence":N,"standards":[…]}' -> '{"sequence":N,"standards":[…],"schools":[' + … + ']}'
    parts: list[bytes] = [head[:-1], b',"schools":[']
    first = True
    for school in registry.listed_schools_for_snapshot(
        session=session, base_url=base_url, batch=CHUNK_SCHOOLS
    ):
        parts.append(dumps(school) if first else b"," + dumps(school))
        first = False
        if len(parts) >= CHUNK_SCHOOLS:
            yield b"".join(parts)
            parts = []
    parts.append(b"]}")
    yield b"".join(parts)


def build_snapshot(*, session: Session, base_url: str) -> Built:
    """The whole snapshot in memory, read in one consistent database snapshot (small
    registries, tests, signed copies). ``session`` must not have run a query yet on
    PostgreSQL (see :func:`begin_snapshot`)."""
    reading = _read(session, base_url)
    etag, sequence, _expires_at = next(reading)  # type: ignore[misc]
    return Built(sequence=sequence, body=b"".join(reading), etag=etag)  # type: ignore[arg-type]


def _chunks(engine: Engine, base_url: str) -> Iterator[bytes | tuple[str, int, float | None]]:
    with transaction(engine, readonly=True) as session:
        yield from _read(session, base_url)


def open_stream(*, engine: Engine, base_url: str) -> Stream:
    """Begin reading the snapshot (blocking: its first queries run here); see :class:`Stream`.

    The bytes equal ``dumps(snapshot_dict(...))`` of the same state (compact JSON, keys in
    that order), so a streamed document is the one a single serialisation would give.
    """
    chunks = _chunks(engine, base_url)
    etag, sequence, expires_at = next(chunks)  # type: ignore[misc]
    return Stream(etag=etag, sequence=sequence, chunks=chunks, expires_at=expires_at)  # type: ignore[arg-type]


def sign_snapshot(
    *, session: Session, keys: KeyStore, signer: LogSigner, body: bytes, sequence: int
) -> bytes:
    """The compact JWS of a serialised snapshot: ES256 over exactly ``body``, with the log's
    signed checkpoint at ``sequence`` in the protected header (``checkpoint``), left out only
    when the log does not reach ``sequence`` (it was switched off, for a benchmark)."""
    headers: dict[str, Any] = {"cty": "application/json"}
    if log.tree_size(session) >= sequence:
        headers["checkpoint"] = transparency.signed_checkpoint(session=session, signer=signer, size=sequence)
    return keys.sign_document(body, typ=SNAPSHOT_TYP, headers=headers).encode("ascii")
