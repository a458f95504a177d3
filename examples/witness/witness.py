"""A witness for the IMI transparency log: cosigns checkpoints only if the history is consistent.

A regional association runs it to state, with its own key, "I have seen this log, and
every checkpoint I saw extends the previous one". Verifiers who trust k associations
then know the log showed everyone the same history. What it does, each round:

1. fetches ``GET /v1/log/checkpoint`` and checks the log's Ed25519 signature with the
   log's vkey you configured (never the key the server hands out now: pin it once);
2. compares it with the last checkpoint it cosigned (kept in ``state.json``):
   - a smaller size: the log went back in time → refuse;
   - the same size with another root: a fork → refuse;
   - a larger size: fetches ``GET /v1/log/proof/consistency?from=<old>&to=<new>``
     and verifies it (RFC 9162 §2.1.4.2) → refuse when it fails;
3. signs a C2SP ``cosignature/v1`` (timestamped Ed25519) over the checkpoint text and
   posts the checkpoint with its signature line to ``POST /v1/log/cosignatures``;
4. records the checkpoint as the last one cosigned.

A refusal is printed and the state is left alone: the evidence (both checkpoints) is
appended to ``refused-<size>.txt`` beside the state file for the association to publish: both
signed notes, as the log served them, which anyone can check with the log's vkey.
The first checkpoint ever seen is trusted as it is (trust on first use).

Usage::

    pip install cryptography httpx
    python witness.py keygen --name witness.example-association.de/imi --key witness.pem
    # give the printed vkey to an IMI steward: imi-api witnesses add --name … --region DE --key <vkey>
    python witness.py run --log http://127.0.0.1:8000 --log-key "<GET /v1/log/key: vkey>" \\
        --name witness.example-association.de/imi --key witness.pem --state state.json --interval 60

Only the standard library, ``cryptography`` and ``httpx``. Sources: c2sp.org/signed-note,
c2sp.org/tlog-checkpoint, c2sp.org/tlog-cosignature, RFC 9162 §2.1.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
DASH = "\u2014 "


class Refused(Exception):
    """The log showed a history this witness will not cosign."""


@dataclass(frozen=True)
class Checkpoint:
    text: str  # origin, size, root hash: three lines with their newlines
    origin: str
    size: int
    root: bytes
    note: str = ""  # the signed note as served: the evidence, should the witness refuse it


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def key_id(name: str, sig_type: int, public: bytes) -> bytes:
    return sha256(name.encode() + b"\n" + bytes([sig_type]) + public)[:4]


def raw_public(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def vkey(name: str, sig_type: int, public: bytes) -> str:
    material = base64.b64encode(bytes([sig_type]) + public).decode()
    return f"{name}+{key_id(name, sig_type, public).hex()}+{material}"


def parse_vkey(text: str) -> tuple[str, bytes, int, bytes]:
    name, hex_id, material = text.strip().split("+", 2)
    raw = base64.b64decode(material, validate=True)
    if len(raw) != 33 or key_id(name, raw[0], raw[1:]) != bytes.fromhex(hex_id):
        raise ValueError("not a valid Ed25519 vkey")
    return name, bytes.fromhex(hex_id), raw[0], raw[1:]


# --- reading and checking a checkpoint ----------------------------------------------------------


def parse_checkpoint(note: str, log_vkey: str) -> Checkpoint:
    """The checkpoint of a signed note, once the log's signature on it verifies."""
    name, kid, sig_type, public = parse_vkey(log_vkey)
    if sig_type != ED25519:
        raise Refused("the log key must be an Ed25519 (type 0x01) vkey")
    cut = note.rfind("\n\n")
    if cut < 0:
        raise Refused("not a signed note")
    text, signatures = note[: cut + 1], note[cut + 2 :].splitlines()
    lines = text.split("\n")
    # ASCII digits without leading zeros (tlog-checkpoint); str.isdigit() would take "٣" too.
    if len(lines) != 4 or lines[3] != "" or not re.fullmatch(r"0|[1-9][0-9]*", lines[1]):
        raise Refused("not a checkpoint")
    verified = False
    for line in signatures:
        if not line.startswith(DASH):
            raise Refused("malformed signature line")
        line_name, _, encoded = line[len(DASH) :].partition(" ")
        raw = _b64(encoded, "a signature")
        if line_name == name and raw[:4] == kid:
            try:
                Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], text.encode())
            except InvalidSignature as exc:
                raise Refused("the log's signature on the checkpoint does not verify") from exc
            verified = True
    if not verified:
        raise Refused("the checkpoint is not signed by the log key")
    if lines[0] != name:
        raise Refused(f"the checkpoint is of the log {lines[0]!r}, not {name!r}")
    root = _b64(lines[2], "the root hash")
    if len(root) != 32:
        raise Refused("the root hash is not 32 bytes")
    return Checkpoint(text=text, origin=lines[0], size=int(lines[1]), root=root, note=note)


def _b64(text: str, what: str) -> bytes:
    """Standard base64 from the log; anything else is the log misbehaving: a refusal, not a
    crash that would stop a witness running with ``--interval``."""
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise Refused(f"{what} is not standard base64") from None


def verify_consistency(first: int, second: int, root1: bytes, root2: bytes, proof: list[bytes]) -> bool:
    """RFC 9162 §2.1.4.2."""
    if first == second:
        return not proof and root1 == root2
    if first == 0 or first > second or not proof:
        return False
    path = ([root1] if first & (first - 1) == 0 else []) + proof
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = sha256(b"\x01" + c + fr)
            sr = sha256(b"\x01" + c + sr)
            while not (fn & 1 or fn == 0):
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = sha256(b"\x01" + sr + c)
        fn, sn = fn >> 1, sn >> 1
    return fr == root1 and sr == root2 and sn == 0


# --- the witness ---------------------------------------------------------------------------------


class Witness:
    """One witness: its key and name, the log it watches, and what it last cosigned."""

    def __init__(self, *, name: str, private: Ed25519PrivateKey, log_vkey: str, state: Path) -> None:
        self.name = name
        self.private = private
        self.log_vkey = log_vkey
        self.state_path = state
        self.kid = key_id(name, COSIGNATURE_V1, raw_public(private))

    @property
    def vkey(self) -> str:
        return vkey(self.name, COSIGNATURE_V1, raw_public(self.private))

    def last(self) -> dict[str, Any] | None:
        if not self.state_path.exists():
            return None
        return dict(json.loads(self.state_path.read_text()))

    def check(self, checkpoint: Checkpoint, proof_for: Any) -> None:
        """Raise :class:`Refused` unless ``checkpoint`` extends the last one cosigned;
        ``proof_for(old_size, new_size)`` fetches a consistency proof."""
        last = self.last()
        if last is None:
            return  # trust on first use
        old_size, old_root = int(last["size"]), base64.b64decode(last["root"])
        old_text = last.get("checkpoint", "")
        if checkpoint.size < old_size:
            self._evidence(checkpoint, old_text)
            raise Refused(f"the log went back from size {old_size} to {checkpoint.size}")
        if checkpoint.size == old_size:
            if checkpoint.root != old_root:
                self._evidence(checkpoint, old_text)
                raise Refused(f"two different checkpoints of size {old_size}: a forked history")
            return
        if old_size > 0:
            proof = proof_for(old_size, checkpoint.size)
            if not verify_consistency(old_size, checkpoint.size, old_root, checkpoint.root, proof):
                self._evidence(checkpoint, old_text)
                raise Refused(f"size {checkpoint.size} is not consistent with size {old_size}")

    def cosign(self, checkpoint: Checkpoint, now: int | None = None) -> str:
        """The signature line of a ``cosignature/v1`` over the checkpoint."""
        timestamp = int(time.time()) if now is None else now
        message = f"cosignature/v1\ntime {timestamp}\n".encode() + checkpoint.text.encode()
        signature = self.private.sign(message)
        payload = self.kid + struct.pack(">Q", timestamp) + signature
        return f"{DASH}{self.name} {base64.b64encode(payload).decode()}\n"

    def remember(self, checkpoint: Checkpoint, note: str) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        record = {
            "size": checkpoint.size,
            "root": base64.b64encode(checkpoint.root).decode(),
            "checkpoint": note,
        }
        tmp.write_text(json.dumps(record))
        os.replace(tmp, self.state_path)

    def _evidence(self, checkpoint: Checkpoint, old: str) -> None:
        # Both notes with the log's signatures: two signed checkpoints that cannot both be true
        # are what anyone can check. Appended, so that a later refusal of the same size keeps
        # the earlier one's evidence.
        path = self.state_path.parent / f"refused-{checkpoint.size}.txt"
        with path.open("a", encoding="utf-8") as fh:
            fh.write(f"previously cosigned:\n{old}\nnow offered:\n{checkpoint.note or checkpoint.text}\n")

    def run_once(self, client: httpx.Client, base: str = "") -> Checkpoint:
        """Fetch, check, cosign and post the log's newest checkpoint; returns it."""
        response = client.get(f"{base}/v1/log/checkpoint")
        response.raise_for_status()
        note = response.text
        checkpoint = parse_checkpoint(note, self.log_vkey)

        def proof_for(first: int, second: int) -> list[bytes]:
            r = client.get(f"{base}/v1/log/proof/consistency", params={"from": first, "to": second})
            r.raise_for_status()
            try:
                hashes = r.json()["proof"]
            except (ValueError, KeyError, TypeError):
                raise Refused("the consistency proof is not a JSON object with a `proof` list") from None
            if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
                raise Refused("the consistency proof is not a list of base64 hashes")
            return [_b64(h, "a consistency proof hash") for h in hashes]

        self.check(checkpoint, proof_for)
        posted = client.post(
            f"{base}/v1/log/cosignatures",
            content=(note + self.cosign(checkpoint)).encode(),
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )
        posted.raise_for_status()
        self.remember(checkpoint, note)
        return checkpoint


def load_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SystemExit(f"{path} is not an Ed25519 private key")
    return key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    keygen = sub.add_parser("keygen", help="make a witness key and print its vkey")
    keygen.add_argument("--name", required=True, help="key name, a schema-less URL: example.org/witness")
    keygen.add_argument("--key", required=True, type=Path, help="where to write the private key (0600)")
    run = sub.add_parser("run", help="cosign the log's checkpoints")
    run.add_argument("--log", required=True, help="the API's base URL")
    run.add_argument("--log-key", required=True, help="the log's vkey (pin it: GET /v1/log/key once)")
    run.add_argument("--name", required=True)
    run.add_argument("--key", required=True, type=Path)
    run.add_argument("--state", required=True, type=Path)
    run.add_argument("--interval", type=float, default=0.0, help="seconds between rounds; 0: once")
    args = parser.parse_args(argv)

    if args.command == "keygen":
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(args.key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        print(vkey(args.name, COSIGNATURE_V1, raw_public(private)))
        return 0

    witness = Witness(name=args.name, private=load_key(args.key), log_vkey=args.log_key, state=args.state)
    with httpx.Client(timeout=30.0, follow_redirects=False) as client:
        while True:
            try:
                checkpoint = witness.run_once(client, args.log.rstrip("/"))
                print(f"cosigned {checkpoint.origin} at size {checkpoint.size}", flush=True)
            except Refused as exc:
                print(f"REFUSED: {exc}", file=sys.stderr, flush=True)
                if not args.interval:
                    return 2
            except httpx.HTTPError as exc:
                print(f"error: {exc}", file=sys.stderr, flush=True)
                if not args.interval:
                    return 1
            if not args.interval:
                return 0
            time.sleep(args.interval)


if __name__ == "__main__":
    raise SystemExit(main())
