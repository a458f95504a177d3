"""An independent verifier, written for the tests from the specs, sharing no code with
``service/``: RFC 9162 tree hashes and proof verification, RFC 8785-style canonical JSON
for the shapes events have, C2SP signed notes, and the status list byte array.

Sources: RFC 9162 §2.1.1 (MTH), §2.1.3.2 (verifying an inclusion proof), §2.1.4.2
(verifying a consistency proof); c2sp.org/signed-note, tlog-checkpoint, tlog-cosignature;
draft-ietf-oauth-status-list §4.1 (the byte array).
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import zlib
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH over leaf *inputs*, by the recursive definition."""
    n = len(leaves)
    if n == 0:
        return sha(b"")
    if n == 1:
        return sha(b"\x00" + leaves[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return sha(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def verify_inclusion(index: int, size: int, leaf_hash: bytes, proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2, step by step."""
    if index >= size:
        return False
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = sha(b"\x01" + p + r)
            while not (fn & 1 or fn == 0):
                fn >>= 1
                sn >>= 1
        else:
            r = sha(b"\x01" + r + p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, root1: bytes, root2: bytes, proof: list[bytes]) -> bool:
    """RFC 9162 §2.1.4.2, step by step (``first == second`` needs an empty proof and equal roots)."""
    if first == second:
        return not proof and root1 == root2
    if first == 0 or first > second or not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: prepend first_hash
        path.insert(0, root1)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = sha(b"\x01" + c + fr)
            sr = sha(b"\x01" + c + sr)
            while not (fn & 1 or fn == 0):
                fn >>= 1
                sn >>= 1
        else:
            sr = sha(b"\x01" + sr + c)
        fn >>= 1
        sn >>= 1
    return fr == root1 and sr == root2 and sn == 0


def canonical(value: Any) -> bytes:
    """Canonical JSON for objects with ASCII member names, strings, integers, booleans, null."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def leaf_of_feed_item(item: dict[str, Any]) -> bytes:
    """The leaf bytes of a feed item or webhook body: the item without ``log_index``."""
    return canonical({k: v for k, v in item.items() if k != "log_index"})


def b64d(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


# --- C2SP notes -----------------------------------------------------------------------------------


def parse_vkey(vkey: str) -> tuple[str, bytes, int, bytes]:
    name, key_id, material = vkey.split("+", 2)
    raw = base64.b64decode(material)
    return name, bytes.fromhex(key_id), raw[0], raw[1:]


def split_note(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    """``(text, [(key name, decoded signature)])``."""
    cut = note.rindex("\n\n")
    lines = note[cut + 2 :].rstrip("\n").split("\n")
    out = []
    for line in lines:
        assert line.startswith("\u2014 "), line
        name, encoded = line[2:].split(" ")
        out.append((name, base64.b64decode(encoded)))
    return note[: cut + 1], out


def checkpoint_fields(text: str) -> tuple[str, int, bytes]:
    origin, size, root, rest = text.split("\n")
    assert rest == ""
    return origin, int(size), b64d(root)


def log_signature_ok(note: str, log_vkey: str) -> bool:
    name, key_id, sig_type, public = parse_vkey(log_vkey)
    assert sig_type == 0x01
    assert key_id == sha(name.encode() + b"\n\x01" + public)[:4]
    text, signatures = split_note(note)
    for line_name, raw in signatures:
        if line_name == name and raw[:4] == key_id:
            try:
                Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], text.encode())
            except InvalidSignature:
                return False
            return True
    return False


def cosignatures_ok(note: str, witness_vkey: str) -> int | None:
    """The timestamp of the witness's valid cosignature on ``note``, or ``None``."""
    name, key_id, sig_type, public = parse_vkey(witness_vkey)
    assert sig_type == 0x04
    text, signatures = split_note(note)
    for line_name, raw in signatures:
        if line_name == name and raw[:4] == key_id:
            (timestamp,) = struct.unpack(">Q", raw[4:12])
            message = f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode()
            try:
                Ed25519PublicKey.from_public_bytes(public).verify(raw[12:], message)
            except InvalidSignature:
                return None
            return int(timestamp)
    return None


# --- status lists ----------------------------------------------------------------------------------


def decode_status_list(lst: str, bits: int) -> list[int]:
    """Every entry of a status list's ``lst`` (base64url, zlib), the least significant bits first."""
    raw = zlib.decompress(base64.urlsafe_b64decode(lst + "=" * (-len(lst) % 4)))
    per_byte = 8 // bits
    mask = (1 << bits) - 1
    return [(raw[i // per_byte] >> (bits * (i % per_byte))) & mask for i in range(len(raw) * per_byte)]
