"""The log's public answers: checkpoints, inclusion and consistency proofs, leaves, its key.

Plain functions over a session (the routes run them in one read transaction, so a
checkpoint's size, root and cosignatures belong together). Hashes and leaf bytes
are standard base64, as in checkpoints. Sizes and indices out of range are a 422
naming the log's size; nothing here writes.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from service.core.errors import Unprocessable
from service.transparency import log, merkle, notes, witnesses
from service.transparency.signer import LogSigner

#: Most leaves one ``/v1/log/leaves`` answer holds (a C2SP tile's width).
MAX_LEAVES = 256


def _check_size(session: Session, size: int) -> int:
    """The log's size, once ``size`` is within it (422 otherwise)."""
    have = log.tree_size(session)
    if size > have:
        raise Unprocessable(
            f"The log has {have} leaves; there is no tree of size {size} yet.", extra={"tree_size": have}
        )
    return have


def checkpoint_note(*, session: Session, signer: LogSigner, size: int | None = None) -> tuple[int, str]:
    """``(size, note)``: the signed checkpoint of ``size`` (default: the log's size) followed by
    the cosignature line of every registered witness that cosigned that size."""
    have = log.tree_size(session)
    if size is None:
        size = have
    elif size > have:
        _check_size(session, size)
    body = notes.checkpoint_body(signer.origin, size, log.root_at(session, size))
    return size, signer.sign_note(body) + "".join(witnesses.cosignature_lines(session, size))


def signed_checkpoint(*, session: Session, signer: LogSigner, size: int) -> str:
    """The log-signed checkpoint of ``size`` without cosignatures (deterministic: Ed25519)."""
    return signer.sign_note(notes.checkpoint_body(signer.origin, size, log.root_at(session, size)))


def inclusion(*, session: Session, sequence: int, size: int) -> dict[str, Any]:
    """``{"index", "tree_size", "leaf_hash", "proof"}`` for event ``sequence`` in the tree of ``size``.

    422 unless ``1 <= sequence <= size <= `` the log's size.
    """
    if sequence > size:
        raise Unprocessable(
            f"Event {sequence} is not in a tree of {size} leaves: `size` must be ≥ `sequence`."
        )
    _check_size(session, size)
    index = sequence - 1
    ranges = merkle.inclusion_ranges(index, size)
    # The leaf and the proof's nodes in one read.
    found = log.reader(session)({(0, index), *merkle.nodes_of(ranges)})
    return {
        "index": index,
        "tree_size": size,
        "leaf_hash": notes.b64(found[(0, index)]),
        "proof": [notes.b64(h) for h in merkle.range_hashes(ranges, lambda _nodes: found)],
    }


def consistency(*, session: Session, first: int, second: int) -> dict[str, Any]:
    """``{"from", "to", "proof"}``: RFC 9162 consistency proof (422 unless ``1 <= from <= to <=``
    the log's size; equal sizes have an empty proof)."""
    if first > second:
        raise Unprocessable("`from` must not be larger than `to`.")
    _check_size(session, second)
    proof = merkle.consistency_proof(first, second, log.reader(session))
    return {"from": first, "to": second, "proof": [notes.b64(h) for h in proof]}


def leaves_page(*, session: Session, start: int, end: int) -> dict[str, Any]:
    """``{"data": [{"index", "leaf_hash", "leaf"}]}`` for leaves ``[start, end)``; ``leaf`` is
    ``null`` once retention pruned the event. 422 for an empty or inverted range, one of
    more than :data:`MAX_LEAVES`, or one past the log's size."""
    if end <= start:
        raise Unprocessable("`end` must be larger than `start` (leaves [start, end)).")
    if end - start > MAX_LEAVES:
        raise Unprocessable(f"At most {MAX_LEAVES} leaves per request.", extra={"max_leaves": MAX_LEAVES})
    _check_size(session, end)
    return {
        "data": [
            {"index": index, "leaf_hash": notes.b64(h), "leaf": notes.b64(data) if data is not None else None}
            for index, h, data in log.leaf_range(session, start, end)
        ]
    }


def key_document(*, session: Session, signer: LogSigner) -> dict[str, Any]:
    """The log's public key (raw, as a C2SP vkey) and the registered witnesses."""
    latest = witnesses.latest_cosigned_sizes(session)
    return {
        "origin": signer.origin,
        "algorithm": "Ed25519",
        "key_name": signer.origin,
        "key_id": signer.key_id.hex(),
        "public_key": notes.b64(signer.public),
        "vkey": signer.vkey,
        "witnesses": [
            witnesses.witness_dict(w, latest_cosigned_size=latest.get(w.id))
            for w in witnesses.list_witnesses(session=session)
        ],
    }
