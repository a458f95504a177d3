"""C2SP signed notes, checkpoints and cosignatures: formatting, parsing, verifying.

- signed-note (c2sp.org/signed-note): a text ending in a newline, a blank line,
  then signature lines ``— <key name> base64(key ID || signature)``. Key IDs are
  ``SHA-256(name || 0x0A || type || public key)[:4]``; type ``0x01`` is Ed25519 over
  the text, ``0x04`` a timestamped Ed25519 cosignature. Verifier keys (vkeys) are
  ``<name>+<hex key ID>+base64(type || public key)``.
- tlog-checkpoint (c2sp.org/tlog-checkpoint): the text is the origin, the tree
  size in decimal and the base64 root hash, one per line.
- tlog-cosignature (c2sp.org/tlog-cosignature): the signature is
  ``timestamp (u64, big-endian) || Ed25519 signature`` over
  ``"cosignature/v1\\ntime <timestamp>\\n" || checkpoint text``.

Parsing refuses what the specs forbid (control characters, spaces or ``+`` in key
names, leading zeros in sizes, …) with :class:`NoteError`, whose message says what.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
#: Signature lines a note may carry (signed-note asks verifiers to accept at least 16).
MAX_SIGNATURES = 64
#: The largest note accepted (bytes).
MAX_NOTE_BYTES = 64 * 1024
SIGNATURE_PREFIX = "\u2014 "
_KEY_NAME = re.compile(r"^[^\s+]+$")
_DECIMAL = re.compile(r"^(0|[1-9][0-9]{0,18})$")


class NoteError(ValueError):
    """A note, checkpoint, vkey or signature that does not follow its spec."""


@dataclass(frozen=True)
class VerifierKey:
    """A parsed vkey: ``name``, 4-byte ``key_id``, signature ``type`` and 32-byte ``public``."""

    name: str
    key_id: bytes
    type: int
    public: bytes

    def text(self) -> str:
        """The vkey string."""
        return vkey(self.name, self.type, self.public)


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint's text: ``origin``, ``size``, ``root`` (32 bytes)."""

    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        """The note text, three lines each ending in a newline."""
        return checkpoint_body(self.origin, self.size, self.root)


def b64(data: bytes) -> str:
    """Standard base64 (RFC 4648 §4, with padding)."""
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, what: str) -> bytes:
    """Strict standard base64; :class:`NoteError` naming ``what`` otherwise."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise NoteError(f"{what} is not standard base64") from exc


def key_id(name: str, sig_type: int, public: bytes) -> bytes:
    """``SHA-256(name || 0x0A || type || public)[:4]``."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([sig_type]) + public).digest()[:4]


def vkey(name: str, sig_type: int, public: bytes) -> str:
    """``<name>+<hex key ID>+base64(type || public)``."""
    return f"{name}+{key_id(name, sig_type, public).hex()}+{b64(bytes([sig_type]) + public)}"


def check_key_name(name: str) -> str:
    """``name`` when it is a valid key name (non-empty, no spaces, no ``+``)."""
    if not name or not _KEY_NAME.match(name) or len(name) > 200:
        raise NoteError("a key name must be 1-200 characters without spaces or '+'")
    return name


def parse_vkey(text: str, *, expect_type: int | None = None) -> VerifierKey:
    """Parse a vkey; the key ID must be the one its name, type and key give."""
    parts = text.strip().split("+", 2)  # base64 may hold "+" too
    if len(parts) != 3:
        raise NoteError("a verifier key is <name>+<hex key id>+<base64 type||key>")
    name, hex_id, material = parts
    check_key_name(name)
    if not re.fullmatch(r"[0-9a-f]{8}", hex_id):
        raise NoteError("the key ID of a verifier key is 8 lower-case hex digits")
    raw = unb64(material, "the key material")
    if len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE_V1):
        raise NoteError("only Ed25519 keys (type 0x01 or 0x04, 32 bytes) are supported")
    if expect_type is not None and raw[0] != expect_type:
        raise NoteError(f"expected a key of signature type 0x{expect_type:02x}, got 0x{raw[0]:02x}")
    found = VerifierKey(name=name, key_id=bytes.fromhex(hex_id), type=raw[0], public=raw[1:])
    if key_id(name, found.type, found.public) != found.key_id:
        raise NoteError("the key ID does not match the key's name, type and public key")
    try:
        Ed25519PublicKey.from_public_bytes(found.public)
    except ValueError as exc:
        raise NoteError("the public key is not an Ed25519 key") from exc
    return found


# --- notes ------------------------------------------------------------------------------------


def signature_line(name: str, kid: bytes, signature: bytes) -> str:
    """``— <name> base64(key ID || signature)`` with its newline."""
    return f"{SIGNATURE_PREFIX}{name} {b64(kid + signature)}\n"


def parse_note(text: str) -> tuple[str, list[tuple[str, bytes]]]:
    """``(note text, [(key name, key ID || signature), ...])`` of a signed note."""
    if len(text.encode("utf-8")) > MAX_NOTE_BYTES:
        raise NoteError(f"a note is at most {MAX_NOTE_BYTES} bytes")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("a note must not contain control characters other than newline")
    if not text.endswith("\n"):
        raise NoteError("a note ends with a newline")
    cut = text.rfind("\n\n")
    if cut < 0:
        raise NoteError("a note has a text, a blank line and signature lines")
    body, block = text[: cut + 1], text[cut + 2 :]
    lines = block[:-1].split("\n") if block else []
    if not lines:
        raise NoteError("the note has no signature lines")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"a note may carry at most {MAX_SIGNATURES} signatures")
    signatures: list[tuple[str, bytes]] = []
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError("a signature line starts with an em dash and a space")
        name, sep, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        if not sep:
            raise NoteError("a signature line is '— <key name> <base64 signature>'")
        check_key_name(name)
        raw = unb64(encoded, "a signature")
        if len(raw) < 5:
            raise NoteError("a signature holds a 4-byte key ID and the signature")
        signatures.append((name, raw))
    return body, signatures


def verify_ed25519(public: bytes, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` is ``public``'s Ed25519 signature of ``message``."""
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


# --- checkpoints and cosignatures -------------------------------------------------------------


def checkpoint_body(origin: str, size: int, root: bytes) -> str:
    """``<origin>\\n<size>\\n<base64 root>\\n``."""
    return f"{origin}\n{size}\n{b64(root)}\n"


def parse_checkpoint(body: str) -> Checkpoint:
    """A checkpoint's text; extension lines are refused (this log writes none)."""
    lines = body.split("\n")
    if lines[-1] != "" or len(lines) < 4:
        raise NoteError("a checkpoint is an origin, a tree size and a root hash, one per line")
    if len(lines) > 4:
        raise NoteError("this log's checkpoints have no extension lines")
    origin, size_text, root_text = lines[:3]
    if not origin:
        raise NoteError("the origin line is empty")
    if not _DECIMAL.match(size_text):
        raise NoteError("the tree size is a decimal number without leading zeros")
    root = unb64(root_text, "the root hash")
    if len(root) != 32:
        raise NoteError("the root hash is 32 bytes")
    return Checkpoint(origin=origin, size=int(size_text), root=root)


def cosignature_message(body: str, timestamp: int) -> bytes:
    """What an Ed25519 ``cosignature/v1`` signs."""
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode()


def split_cosignature(raw: bytes) -> tuple[bytes, int, bytes]:
    """``(key ID, timestamp, signature)`` of a ``cosignature/v1`` signature payload."""
    if len(raw) != 4 + 8 + 64:
        raise NoteError("an Ed25519 cosignature is a key ID, an 8-byte timestamp and 64 bytes")
    (timestamp,) = struct.unpack(">Q", raw[4:12])
    if timestamp >= 2**63:
        raise NoteError("the cosignature timestamp exceeds 2^63 - 1")
    return raw[:4], timestamp, raw[12:]


def cosignature_payload(kid: bytes, timestamp: int, signature: bytes) -> bytes:
    """``key ID || u64 timestamp || signature``."""
    return kid + struct.pack(">Q", timestamp) + signature
