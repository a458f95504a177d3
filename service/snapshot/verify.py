"""Checking a signed snapshot offline (``imi-api verify-snapshot FILE --jwks URL-or-FILE``).

A signed snapshot is a compact JWS (ES256, ``typ`` ``imi-snapshot+jws``) whose payload is
the exact bytes of ``GET /v1/snapshot`` and whose protected header carries
``checkpoint``: the transparency log's signed checkpoint at the snapshot's ``sequence``.
:func:`verify_snapshot` checks the signature against a JWKS, the payload's shape, that
the checkpoint's size is the snapshot's sequence and, given the log's vkey, the
checkpoint's own signature: a mirror can then be checked as a whole, without
trusting whoever served it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from service.security.keys import SNAPSHOT_TYP, TokenError, verify_with_jwks
from service.transparency import notes

#: Seconds to wait for a JWKS fetched by URL.
JWKS_TIMEOUT_S = 10.0


class SnapshotInvalid(Exception):
    """The snapshot must not be trusted; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def load_jwks(source: str) -> Any:
    """A JWKS from an ``http(s)://`` URL (fetched with httpx) or a file."""
    try:
        if source.startswith(("http://", "https://")):
            response = httpx.get(source, timeout=JWKS_TIMEOUT_S, follow_redirects=False)
            response.raise_for_status()
            return response.json()
        return json.loads(Path(source).read_text(encoding="utf-8"))
    except (httpx.HTTPError, OSError, ValueError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]  # not httpx's MDN link
        raise SnapshotInvalid("jwks_unavailable", f"cannot read the JWKS from {source}: {reason}") from exc


def verify_snapshot(data: bytes, jwks: Any, *, log_key: str | None = None) -> dict[str, Any]:
    """What a valid signed snapshot holds: ``{"kid", "sequence", "standards", "schools",
    "checkpoint", "checkpoint_verified"}`` (counts for the lists). Raises
    :class:`SnapshotInvalid` with the first failing check: ``malformed``,
    ``alg_not_allowed``, ``unknown_kid``, ``bad_signature``, ``wrong_type``,
    ``malformed_snapshot``, ``malformed_checkpoint``, ``checkpoint_mismatch``,
    ``no_checkpoint``, ``bad_log_key``, ``bad_checkpoint_signature``."""
    if data.lstrip().startswith(b"{"):
        # The first thing a reader tries: `curl …/v1/snapshot > file` saves the unsigned JSON.
        raise SnapshotInvalid(
            "malformed",
            "this is the snapshot's JSON, not the signed snapshot: "
            "fetch GET /v1/snapshot with Accept: application/jose",
        )
    try:
        token = data.decode("ascii").strip()
        header, payload = verify_with_jwks(token, jwks, typ=SNAPSHOT_TYP)
    except UnicodeDecodeError as exc:
        raise SnapshotInvalid("malformed", "a compact JWS is ASCII text") from exc
    except TokenError as exc:
        raise SnapshotInvalid(exc.reason, exc.message) from exc
    try:
        snapshot = json.loads(payload)
    except ValueError as exc:
        raise SnapshotInvalid("malformed_snapshot", "the payload is not JSON") from exc
    if (
        not isinstance(snapshot, dict)
        or not isinstance(snapshot.get("sequence"), int)
        or not isinstance(snapshot.get("standards"), list)
        or not isinstance(snapshot.get("schools"), list)
    ):
        raise SnapshotInvalid("malformed_snapshot", "the payload is not a snapshot")
    result: dict[str, Any] = {
        "kid": header.get("kid"),
        "sequence": snapshot["sequence"],
        "standards": len(snapshot["standards"]),
        "schools": len(snapshot["schools"]),
        "checkpoint": None,
        "checkpoint_verified": False,
    }
    text = header.get("checkpoint")
    if text is None:
        if log_key is not None:
            raise SnapshotInvalid("no_checkpoint", "the snapshot names no log checkpoint")
        return result
    try:
        body, signatures = notes.parse_note(str(text))
        checkpoint = notes.parse_checkpoint(body)
    except notes.NoteError as exc:
        raise SnapshotInvalid("malformed_checkpoint", f"the checkpoint: {exc}") from exc
    if checkpoint.size != snapshot["sequence"]:
        raise SnapshotInvalid(
            "checkpoint_mismatch",
            f"the checkpoint is of size {checkpoint.size}, the snapshot of sequence {snapshot['sequence']}",
        )
    result["checkpoint"] = {
        "origin": checkpoint.origin,
        "tree_size": checkpoint.size,
        "root_hash": notes.b64(checkpoint.root),
    }
    if log_key is not None:
        try:
            key = notes.parse_vkey(log_key, expect_type=notes.ED25519)
        except notes.NoteError as exc:
            raise SnapshotInvalid("bad_log_key", f"the log key: {exc}") from exc
        signed = any(
            name == key.name
            and raw[:4] == key.key_id
            and notes.verify_ed25519(key.public, raw[4:], body.encode("utf-8"))
            for name, raw in signatures
        )
        if not signed:
            raise SnapshotInvalid("bad_checkpoint_signature", "the checkpoint is not signed by this log key")
        result["checkpoint_verified"] = True
    return result
