"""Witnesses: regional associations' Ed25519 cosigner keys, and the cosignatures they post.

A steward registers a witness (``imi-api witnesses add --name … --region DE --key
<vkey>``). The witness fetches ``/v1/log/checkpoint``, checks that it is consistent
with the last checkpoint it cosigned (``/v1/log/proof/consistency``) and posts the
checkpoint back with its C2SP ``cosignature/v1`` line to ``POST /v1/log/cosignatures``.
:func:`accept_cosignatures` keeps a cosignature only when the checkpoint is one this
log signed (same origin, a size the log has, the root the log has at that size) and
the signature of a registered, not removed witness verifies; anything else is a 422
that stores nothing. The checkpoint is then served with every cosignature of its size.

Registering, removing and cosigning change what ``/v1/log/key`` and
``/v1/log/checkpoint`` answer: each touches the change domain :data:`DOMAIN`.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from service.core import audit, changes
from service.core.db import utcnow
from service.core.errors import Conflict, NotFound, Unprocessable
from service.core.ids import new_id
from service.standards.schemas import normalise_region
from service.transparency import log, notes
from service.transparency.models import LogCosignature, LogWitness

#: The change domain of witnesses and their cosignatures.
DOMAIN = "log.witness"
#: How far in the future a cosignature's timestamp may be (clock skew, seconds).
MAX_FUTURE_S = 300

_cosignatures = LogCosignature.__table__  # type: ignore[attr-defined]


def witness_dict(witness: LogWitness, *, latest_cosigned_size: int | None = None) -> dict[str, Any]:
    """The public description of a witness (what ``/v1/log/key`` lists)."""
    public = notes.unb64(witness.public_key, "public key")
    return {
        "id": witness.id,
        "name": witness.name,
        "region": witness.region,
        "key_name": witness.key_name,
        "key_id": witness.key_id,
        "vkey": notes.vkey(witness.key_name, notes.COSIGNATURE_V1, public),
        "latest_cosigned_size": latest_cosigned_size,
    }


def add_witness(*, session: Session, name: str, region: str, key: str, actor: str = "cli") -> LogWitness:
    """Register a witness; ``key`` is its vkey with signature type ``0x04`` (tlog-cosignature).

    422 for a malformed name, region or key; 409 when the key, or its name and
    key ID, belong to a registered witness already.
    """
    try:
        vkey = notes.parse_vkey(key, expect_type=notes.COSIGNATURE_V1)
    except notes.NoteError as exc:
        raise Unprocessable(f"`key`: {exc}") from None
    try:
        code = normalise_region(region)
    except ValueError as exc:
        raise Unprocessable(f"`region`: {exc}") from None
    display = " ".join(name.split())
    if not display or len(display) > 200:
        raise Unprocessable("`name`: 1-200 characters.")
    public = notes.b64(vkey.public)
    for other in session.exec(select(LogWitness).where(col(LogWitness.removed_at).is_(None))):
        if other.public_key == public or (other.key_name, other.key_id) == (vkey.name, vkey.key_id.hex()):
            raise Conflict(f"This key is registered already (witness {other.id}, {other.name}).")
    if session.exec(select(LogWitness).where(col(LogWitness.public_key) == public)).first() is not None:
        raise Conflict("This key belonged to a removed witness: give the association a new key.")
    witness = LogWitness(
        id=new_id("wit"),
        name=display,
        region=code,
        key_name=vkey.name,
        key_id=vkey.key_id.hex(),
        public_key=public,
        created_at=utcnow(),
    )
    session.add(witness)
    session.flush()
    changes.touch(session, DOMAIN)
    audit.record(session, actor=actor, action="log.witness.add", target=witness.id, details={"name": display})
    return witness


def list_witnesses(*, session: Session, include_removed: bool = False) -> list[LogWitness]:
    """Witnesses by name (removed ones only when asked)."""
    stmt = select(LogWitness)
    if not include_removed:
        stmt = stmt.where(col(LogWitness.removed_at).is_(None))
    return list(session.exec(stmt.order_by(col(LogWitness.name), col(LogWitness.id))))


def remove_witness(*, session: Session, witness_id: str, actor: str = "cli") -> LogWitness:
    """Stop trusting a witness: its cosignatures are no longer served. 404 when unknown."""
    witness = session.get(LogWitness, witness_id) if len(witness_id) <= 40 else None
    if witness is None or witness.removed_at is not None:
        raise NotFound(f"There is no registered witness {witness_id!r}.")
    witness.removed_at = utcnow()
    session.add(witness)
    changes.touch(session, DOMAIN)
    audit.record(session, actor=actor, action="log.witness.remove", target=witness.id, details={})
    return witness


def latest_cosigned_sizes(session: Session) -> dict[str, int]:
    """``{witness id: the largest tree size it cosigned}``."""
    rows = session.execute(
        sa.select(_cosignatures.c.witness_id, sa.func.max(_cosignatures.c.tree_size)).group_by(
            _cosignatures.c.witness_id
        )
    )
    return {str(w): int(size) for w, size in rows}


def cosignature_lines(session: Session, size: int) -> list[str]:
    """The signature lines of every registered witness that cosigned the checkpoint of ``size``."""
    rows = session.execute(
        sa.select(LogWitness.key_name, _cosignatures.c.signature)  # type: ignore[call-overload]
        .join(_cosignatures, _cosignatures.c.witness_id == LogWitness.id)
        .where(_cosignatures.c.tree_size == size, col(LogWitness.removed_at).is_(None))
        .order_by(LogWitness.key_name, LogWitness.id)
    )
    return [f"{notes.SIGNATURE_PREFIX}{name} {signature}\n" for name, signature in rows]


def accept_cosignatures(
    *, session: Session, note: str, origin: str, now: float | None = None
) -> list[dict[str, Any]]:
    """Verify and store the witness cosignatures on a checkpoint note.

    ``note`` is the checkpoint as the log served it with the witness's signature line
    added (other lines — the log's own, unknown keys — are ignored, as signed-note
    asks). Returns ``[{"witness", "name", "tree_size", "timestamp"}]``. Raises
    :class:`Unprocessable` when the note is malformed, names another origin, a size
    the log never had or a root the log does not have, when a registered witness's
    signature does not verify or is dated in the future, or when no line is a
    registered witness's.
    """
    try:
        body, signatures = notes.parse_note(note)
        checkpoint = notes.parse_checkpoint(body)
    except notes.NoteError as exc:
        raise Unprocessable(f"Not a checkpoint note: {exc}.") from None
    if checkpoint.origin != origin:
        raise Unprocessable(
            f"This checkpoint is of the log {checkpoint.origin!r}; this log is {origin!r}.",
            extra={"origin": origin},
        )
    size = log.tree_size(session)
    if checkpoint.size > size:
        raise Unprocessable(
            f"This log has never had {checkpoint.size} leaves (it has {size}).", extra={"tree_size": size}
        )
    if log.root_at(session, checkpoint.size) != checkpoint.root:
        raise Unprocessable(f"The root hash is not this log's root at size {checkpoint.size}.")
    known = {(w.key_name, bytes.fromhex(w.key_id)): w for w in list_witnesses(session=session)}
    clock = time.time() if now is None else now
    accepted: list[dict[str, Any]] = []
    for name, raw in signatures:
        witness = known.get((name, raw[:4]))
        if witness is None:
            continue
        try:
            _kid, timestamp, signature = notes.split_cosignature(raw)
        except notes.NoteError as exc:
            raise Unprocessable(f"The cosignature of {witness.name}: {exc}.") from None
        if timestamp > clock + MAX_FUTURE_S:
            raise Unprocessable(f"The cosignature of {witness.name} is dated in the future.")
        public = notes.unb64(witness.public_key, "public key")
        if not notes.verify_ed25519(public, signature, notes.cosignature_message(body, timestamp)):
            raise Unprocessable(f"The cosignature of {witness.name} does not verify.")
        accepted.append(
            {
                "witness": witness.id,
                "name": witness.name,
                "tree_size": checkpoint.size,
                "timestamp": timestamp,
            }
        )
        _store(session, witness.id, checkpoint.size, timestamp, notes.b64(raw))
    if not accepted:
        raise Unprocessable("The note carries no cosignature by a registered witness (key name and key ID).")
    changes.touch(session, DOMAIN)
    return accepted


def _store(session: Session, witness_id: str, size: int, timestamp: int, signature: str) -> None:
    """Keep the newest cosignature per witness and size (concurrent posts: one statement)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(_cosignatures).values(
        witness_id=witness_id, tree_size=size, timestamp=timestamp, signature=signature, received_at=utcnow()
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[_cosignatures.c.witness_id, _cosignatures.c.tree_size],
        set_={
            "timestamp": stmt.excluded.timestamp,
            "signature": stmt.excluded.signature,
            "received_at": stmt.excluded.received_at,
        },
        where=_cosignatures.c.timestamp < stmt.excluded.timestamp,
    )
    session.execute(stmt)
