"""Secrets encrypted at rest (Fernet, via ``MultiFernet``): webhook signing secrets and
stored idempotent responses (which can carry a secret shown once).

Keys live in ``IMI_KEYS_DIR/secrets/`` as files ``<NNNN>.key`` (one Fernet
key each, mode 0600). The highest-numbered key encrypts; every key present
decrypts, so rotation needs no downtime: add a key (:func:`add_key`, on every
replica's mounted folder), then re-encrypt at leisure (:func:`reencrypt`),
then remove the old file. The first key is generated on first use; replicas
starting together agree on it because the file is created atomically with an
exclusive link (the loser reads the winner's key).
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

#: How a process notices keys added or removed by another one: re-read the folder when its
#: mtime changes. One ``stat`` per use; the folder is listed only when it changed (webhook
#: workers decrypt a secret per endpoint, and a ``glob`` each time was ~6 % of their CPU).
_lock = threading.Lock()
_boxes: dict[Path, tuple[float, MultiFernet]] = {}


class SecretKeyError(Exception):
    """No key in the folder can decrypt a stored secret (keys lost or mixed up)."""


def _key_dir(keys_dir: Path) -> Path:
    return Path(keys_dir) / "secrets"


def _write_exclusive(path: Path, data: bytes) -> bool:
    """Create ``path`` with ``data`` atomically; False when it already exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


def _key_files(folder: Path) -> list[Path]:
    return sorted((p for p in folder.glob("*.key") if p.stem.isdigit()), key=lambda p: int(p.stem))


def add_key(keys_dir: Path) -> Path:
    """Add a new encryption key (it becomes the one that encrypts); returns its file."""
    folder = _key_dir(keys_dir)
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        files = _key_files(folder)
        number = int(files[-1].stem) + 1 if files else 1
        path = folder / f"{number:04d}.key"
        if _write_exclusive(path, Fernet.generate_key() + b"\n"):
            _boxes.pop(folder, None)
            return path


def _load(keys_dir: Path) -> MultiFernet:
    folder = _key_dir(keys_dir)
    cached = _boxes.get(folder)
    if cached is not None:
        try:
            if os.stat(folder).st_mtime == cached[0]:
                return cached[1]
        except FileNotFoundError:
            pass
    with _lock:
        if not folder.exists() or not _key_files(folder):
            _write_exclusive(folder / "0001.key", Fernet.generate_key() + b"\n")
        stamp = folder.stat().st_mtime
        cached = _boxes.get(folder)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        files = _key_files(folder)
        # Newest first: MultiFernet encrypts with the first and tries all to decrypt.
        fernets = [Fernet(p.read_bytes().strip()) for p in reversed(files)]
        box = MultiFernet(fernets)
        _boxes[folder] = (stamp, box)
        return box


def ensure_key(keys_dir: Path) -> None:
    """Create the first encryption key when there is none (``imi-api keys generate`` does this)."""
    _load(keys_dir)


def encrypt(keys_dir: Path, secret: str) -> str:
    """The secret encrypted with the newest key (a Fernet token, ASCII)."""
    return encrypt_bytes(keys_dir, secret.encode()).decode()


def decrypt(keys_dir: Path, token: str) -> str:
    """The secret from a stored token; raises :class:`SecretKeyError` if no key opens it."""
    return decrypt_bytes(keys_dir, token.encode()).decode()


def encrypt_bytes(keys_dir: Path, data: bytes) -> bytes:
    """``data`` encrypted with the newest key (a Fernet token)."""
    return _load(keys_dir).encrypt(data)


def decrypt_bytes(keys_dir: Path, token: bytes) -> bytes:
    """The plaintext of a stored token; raises :class:`SecretKeyError` if no key opens it."""
    try:
        return _load(keys_dir).decrypt(token)
    except InvalidToken:
        # A key may have been added by another process since we last looked.
        _boxes.pop(_key_dir(keys_dir), None)
        try:
            return _load(keys_dir).decrypt(token)
        except InvalidToken as exc:
            raise SecretKeyError("no key in IMI_KEYS_DIR/secrets decrypts this stored secret") from exc


def reencrypt(keys_dir: Path, token: str) -> str:
    """The same secret under the newest key (``MultiFernet.rotate``), for key rotation."""
    return _load(keys_dir).rotate(token.encode()).decode()
