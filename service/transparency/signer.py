"""The log's Ed25519 key: kept in ``IMI_KEYS_DIR/log/ed25519.pem``, signs checkpoints.

One key for the life of the log (a checkpoint verifier pins it; rotating it would
look like a new log to every witness), shared by every replica through the keys
folder. The first process to need it creates it; replicas starting together
agree on one file (it is created with ``O_EXCL``, the loser reads the winner's).

The key name in signature lines is the log's *origin* (``IMI_LOG_ORIGIN``, by
default the public base URL without its scheme, plus ``/v1/log``), as
c2sp.org/tlog-checkpoint recommends.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.core.config import Settings
from service.transparency import notes

KEY_FILE = "ed25519.pem"


def origin_of(settings: Settings) -> str:
    """The log's origin: ``IMI_LOG_ORIGIN`` or ``<host[:port][/path]>/v1/log`` of the base URL."""
    if settings.log_origin:
        return notes.check_key_name(settings.log_origin)
    parts = urlsplit(settings.public_base_url)
    return notes.check_key_name(f"{parts.netloc}{parts.path.rstrip('/')}/v1/log")


@dataclass(frozen=True)
class LogSigner:
    """The log's private key and the names it signs under."""

    origin: str
    private: Ed25519PrivateKey

    @property
    def public(self) -> bytes:
        """The raw 32-byte public key."""
        return self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def key_id(self) -> bytes:
        return notes.key_id(self.origin, notes.ED25519, self.public)

    @property
    def vkey(self) -> str:
        """The C2SP verifier key of the log: ``<origin>+<key id>+<base64(0x01 || key)>``."""
        return notes.vkey(self.origin, notes.ED25519, self.public)

    def sign_note(self, body: str) -> str:
        """``body`` followed by a blank line and the log's signature line."""
        signature = self.private.sign(body.encode("utf-8"))
        return body + "\n" + notes.signature_line(self.origin, self.key_id, signature)


def load_signer(settings: Settings) -> LogSigner:
    """The log key from ``settings.keys_dir``, created (mode 0600) on first use."""
    folder = Path(settings.keys_dir) / "log"
    path = folder / KEY_FILE
    if not path.exists():
        try:
            _create(folder, path)
        except OSError as exc:  # a read-only mounted keys folder without the log key
            raise RuntimeError(
                f"no transparency log key at {path} and it cannot be created ({exc}): "
                "run `imi-api keys generate` and mount log/ed25519.pem"
            ) from exc
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise RuntimeError(f"{path} is not an Ed25519 private key")
    return LogSigner(origin=origin_of(settings), private=private)


def _create(folder: Path, path: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = folder / f".{KEY_FILE}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    try:
        os.link(tmp, path)  # fails if another process made the key first: keep theirs
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
