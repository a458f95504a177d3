"""Credential status lists (IETF draft-ietf-oauth-status-list): revocation without asking us.

Every school gets, once, an entry ``(list id, index)`` in a status list; every
affiliation credential it is issued carries ``"status": {"status_list": {"idx",
"uri"}}`` pointing there. The entry holds the school's status value, 2 bits:

====== =========== ==========================================================
value  name        when
====== =========== ==========================================================
0      VALID       listed and ``none``, ``aligned`` or ``reaffirmation_due``
1      INVALID     alignment ``withdrawn`` or ``lapsed``, or the school delisted
2      SUSPENDED   alignment ``suspended`` (a steward may lift it)
====== =========== ==========================================================

The value is written by :func:`record` in the same transaction as the status
change (the alignment changes of ``alignment.py`` and delisting). A credential
is thus true while its own claims hold *and* its entry reads 0: an offline
verifier with a recent list refuses a withdrawn or suspended school's credential
although the credential itself has not expired (``IMI_CREDENTIAL_TTL_S``, 30 days).

Lists are fixed-size (:data:`LIST_SIZE` entries) and an index is drawn at random
among a list's free ones, so neither the index nor the list's contents reveal in
what order schools were listed; a list takes schools until half full, then a new
one opens. Assignment runs after the transaction emitted its event, under the
event counter's lock, so concurrent assignments never race for a list.

The token (``GET /v1/status-lists/{id}``, ``application/statuslist+jwt``, ES256,
``typ`` ``statuslist+jwt``) holds ``sub`` (its URI), ``iat``, ``exp``, ``ttl`` and
``status_list: {"bits": 2, "lst": base64url(zlib(bytes))}``; entry ``i`` sits in
byte ``i // 4`` at bits ``2 * (i % 4)`` and up (the least significant first).
"""

from __future__ import annotations

import base64
import secrets
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from service.core.db import transaction, utcnow
from service.core.errors import NotFound
from service.events import service as events
from service.registry.models import School, StatusList, StatusListEntry
from service.security.keys import KeyStore
from service.web import cache
from service.web.http import make_etag

VALID, INVALID, SUSPENDED = 0, 1, 2
BITS = 2
#: Entries per list (2 bits each: 4 KiB before compression).
LIST_SIZE = 16384
#: A list takes new schools until this many entries are assigned (random draws stay cheap).
FILL_LIMIT = LIST_SIZE // 2
MEDIA_TYPE = "application/statuslist+jwt"
TOKEN_TYP = "statuslist+jwt"
#: ``ttl`` claim: how long a verifier may rely on a fetched list before fetching it again (s).
TTL_S = 300
#: ``exp`` claim: a list older than this must not be relied upon at all (s).
EXPIRES_S = 86400
#: A token is re-signed at least this often even when no status changed (s).
RESIGN_S = 3600
#: How often the served token is rebuilt at most (s): a status flip is served within this.
REFRESH_S = 2.0

_entries = StatusListEntry.__table__  # type: ignore[attr-defined]

#: ``GET /v1/status-lists/{id}``: rebuilt at most every :data:`REFRESH_S` seconds, whatever
#: changed; a rebuild re-signs only when a value changed (or the token is an hour old).
RESOURCE = cache.Resource(route="/v1/status-lists/{list_id}", domains=(), max_age_s=REFRESH_S)


def status_value(school: School) -> int:
    """The status list value of ``school``'s credentials (see the module docstring)."""
    return status_value_of(school.listing, school.alignment_status)


def status_value_of(listing: str, alignment_status: str) -> int:
    """The status list value for a school's ``listing`` and ``alignment_status``: 1 (invalid)
    when delisted, withdrawn or lapsed, 2 when suspended, else 0 (valid)."""
    if listing == "delisted" or alignment_status in ("withdrawn", "lapsed"):
        return INVALID
    if alignment_status == "suspended":
        return SUSPENDED
    return VALID


def list_uri(base_url: str, list_id: int) -> str:
    """The status list's URI: the token's ``sub`` and the credentials' ``uri``."""
    return f"{base_url}/v1/status-lists/{list_id}"


def status_claim(base_url: str, list_id: int, idx: int) -> dict[str, Any]:
    """The ``status`` claim of a credential."""
    return {"status_list": {"idx": idx, "uri": list_uri(base_url, list_id)}}


# --- encoding -----------------------------------------------------------------------------------


def pack(values: Mapping[int, int], *, size: int, bits: int = BITS) -> bytes:
    """The byte array of a list of ``size`` entries (``values``: index -> value, others 0)."""
    per_byte = 8 // bits
    out = bytearray((size + per_byte - 1) // per_byte)
    for index, value in values.items():
        out[index // per_byte] |= value << (bits * (index % per_byte))
    return bytes(out)


def encode(values: Mapping[int, int], *, size: int, bits: int = BITS) -> str:
    """``lst``: base64url without padding of the ZLIB (DEFLATE, level 9) byte array."""
    compressed = zlib.compress(pack(values, size=size, bits=bits), 9)
    return base64.urlsafe_b64encode(compressed).rstrip(b"=").decode("ascii")


# --- assignment and values ------------------------------------------------------------------------


def assign(session: Session, school: School) -> StatusListEntry:
    """Give ``school`` its entry: a random free index of the newest list with room (a new list
    when none has). Call after the transaction emitted its event (the counter's lock orders
    assignments); returns the existing entry when the school has one."""
    existing = session.exec(
        select(StatusListEntry).where(col(StatusListEntry.school_id) == school.id)
    ).first()
    if existing is not None:
        return existing
    events.hold_events(session)
    current = session.exec(select(StatusList).order_by(col(StatusList.id).desc()).limit(1)).first()
    if current is None or current.assigned >= FILL_LIMIT:
        current = StatusList(
            id=(current.id + 1) if current else 1, size=LIST_SIZE, bits=BITS, created_at=utcnow()
        )
        session.add(current)
        session.flush()
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    value = status_value(school)
    while True:  # at most half the list is taken: two draws on average
        idx = secrets.randbelow(current.size)
        stmt = insert(_entries).values(list_id=current.id, idx=idx, school_id=school.id, status=value)
        result: Any = session.execute(stmt.on_conflict_do_nothing())
        if result.rowcount:
            break
    current.assigned += 1
    session.add(current)
    session.flush()
    return StatusListEntry(list_id=current.id, idx=idx, school_id=school.id, status=value)


def record(session: Session, school: School) -> None:
    """Write ``school``'s status value into its entry (in the caller's transaction)."""
    value = status_value(school)
    session.execute(
        sa.update(_entries)
        .where(_entries.c.school_id == school.id, _entries.c.status != value)
        .values(status=value)
    )


def assign_missing(session: Session, *, batch: int = 5_000) -> int:
    """Give every school without an entry one (a database from before status lists, or one
    filled in bulk); returns how many. As :func:`assign` does — random free indices of the
    newest list with room, a new list when it is full — but a list's taken indices are read
    once and the entries written ``batch`` at a time (one school at a time took ~1 ms each:
    two minutes for 100,000 schools)."""
    events.hold_events(session)
    missing = [
        (school_id, status_value_of(listing, alignment))
        for school_id, listing, alignment in session.execute(
            sa.select(col(School.id), col(School.listing), col(School.alignment_status))
            .where(~col(School.id).in_(sa.select(_entries.c.school_id)))
            .order_by(col(School.id))
        )
    ]
    done = 0
    while done < len(missing):
        current = session.exec(select(StatusList).order_by(col(StatusList.id).desc()).limit(1)).first()
        if current is None or current.assigned >= FILL_LIMIT:
            current = StatusList(
                id=(current.id + 1) if current else 1, size=LIST_SIZE, bits=BITS, created_at=utcnow()
            )
            session.add(current)
            session.flush()
        in_list = sa.select(_entries.c.idx).where(_entries.c.list_id == current.id)
        taken = set(session.execute(in_list).scalars())
        room = min(FILL_LIMIT - current.assigned, len(missing) - done)
        rows = []
        for school_id, value in missing[done : done + room]:
            idx = secrets.randbelow(current.size)
            while idx in taken:  # at most half the list is taken: two draws on average
                idx = secrets.randbelow(current.size)
            taken.add(idx)
            rows.append({"list_id": current.id, "idx": idx, "school_id": school_id, "status": value})
        for start in range(0, len(rows), batch):
            session.execute(_entries.insert(), rows[start : start + batch])
        current.assigned += len(rows)
        session.add(current)
        session.flush()
        done += len(rows)
    return len(missing)


def entry_of(session: Session, school_id: str) -> tuple[int, int] | None:
    """``(list id, index)`` of a school, or ``None``."""
    row = session.execute(
        sa.select(_entries.c.list_id, _entries.c.idx).where(_entries.c.school_id == school_id)
    ).first()
    return (int(row[0]), int(row[1])) if row else None


def ensure_entry(engine: Engine, school_id: str) -> tuple[int, int]:
    """The school's entry, assigned in a transaction of its own if it has none (a school
    restored from a backup made before status lists)."""
    with transaction(engine) as session:
        school = session.get(School, school_id)
        if school is None:
            raise NotFound(f"There is no school {school_id!r}.")
        entry = assign(session, school)
        return entry.list_id, entry.idx


def value_at(session: Session, list_id: int, idx: int) -> int | None:
    """The current value of entry ``idx`` of list ``list_id`` (``None`` if unassigned)."""
    value = session.execute(
        sa.select(_entries.c.status).where(_entries.c.list_id == list_id, _entries.c.idx == idx)
    ).scalar()
    return None if value is None else int(value)


# --- the token -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signed:
    """What a stored token encodes (``Entry.meta``): the list's non-zero values, when and with
    which key it was signed."""

    values: tuple[tuple[int, int], ...]
    iat: int
    kid: str


def build_token(
    *, engine: Engine, keys: KeyStore, base_url: str, list_id: int, previous: cache.Entry | None
) -> cache.Built | cache.Entry:
    """The status list token of ``list_id`` (blocking); ``previous`` is returned unchanged (same
    bytes, same ETag) when no value changed and it was signed within :data:`RESIGN_S`.
    :class:`NotFound` for a list that does not exist."""
    with transaction(engine, readonly=True) as session:
        found = session.get(StatusList, list_id)
        if found is None:
            raise NotFound(f"There is no status list {list_id}.")
        rows = session.execute(
            sa.select(_entries.c.idx, _entries.c.status)
            .where(_entries.c.list_id == list_id, _entries.c.status != VALID)
            .order_by(_entries.c.idx)
        ).all()
    values = tuple((int(i), int(v)) for i, v in rows)
    now = int(time.time())
    if (
        previous is not None
        and previous.meta.values == values
        and now - previous.meta.iat < RESIGN_S
        and keys.active().kid == previous.meta.kid
    ):
        return previous
    uri = list_uri(base_url, list_id)
    claims = {
        "iss": base_url,
        "sub": uri,
        "iat": now,
        "exp": now + EXPIRES_S,
        "ttl": TTL_S,
        "status_list": {"bits": found.bits, "lst": encode(dict(values), size=found.size, bits=found.bits)},
    }
    token = keys.sign(claims, typ=TOKEN_TYP).encode("ascii")
    return cache.Built(
        body=token,
        media_type=MEDIA_TYPE,
        headers={"ETag": make_etag(token), "Cache-Control": "public, no-cache", "Vary": "Accept-Encoding"},
        meta=Signed(values=values, iat=now, kid=keys.active().kid),
    )
