"""Standard Webhooks signatures (https://www.standardwebhooks.com, "Signature scheme").

Both schemes sign ``"{id}.{timestamp}.{body}"``; ``webhook-signature`` holds one
signature per active key, space-separated (two during a rotation's overlap):

- ``v1,<base64(HMAC-SHA256(key, …))>`` (symmetric, ``hmac-sha256`` endpoints).
  Secrets are ``whsec_`` + base64 of 32 random bytes; the key is the decoded
  bytes. Byte-identical to the ``standardwebhooks`` library's ``Webhook.sign``
  (the tests check both agree), but signs the body bytes directly instead of
  round-tripping them through ``str``.
- ``v1a,<base64(Ed25519 signature)>`` (asymmetric, ``ed25519`` endpoints): the
  service keeps the private key ``whsk_`` + base64 of its 32-byte seed, receivers
  verify with the public key ``whpk_`` + base64 of its 32 raw bytes (the key
  formats of the Standard Webhooks libraries that implement ``v1a``).

Which keys sign for an endpoint (:func:`signing_keys`): its current key, and
after a rotation the previous one while the overlap lasts; both are stored
encrypted (:mod:`service.security.secretbox`), and which scheme a stored key is
for is told by its prefix.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from service.security import secretbox

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
PRIVATE_KEY_PREFIX = "whsk_"
PUBLIC_KEY_PREFIX = "whpk_"

#: A key that signs: HMAC key bytes (``v1``) or an Ed25519 private key (``v1a``).
SigningKey = bytes | Ed25519PrivateKey


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_…`` secret (its base64 payload decoded)."""
    raw = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    return base64.b64decode(raw + "==")


def new_key_pair() -> tuple[str, str]:
    """A fresh Ed25519 key pair: ``(whsk_… private key, whpk_… public key)``."""
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    return PRIVATE_KEY_PREFIX + base64.b64encode(seed).decode(), public_key_of(private)


def private_key(text: str) -> Ed25519PrivateKey:
    """The Ed25519 key of a ``whsk_…`` private key (its base64 seed decoded)."""
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(text[len(PRIVATE_KEY_PREFIX) :]))


def public_key_of(key: Ed25519PrivateKey) -> str:
    """``whpk_`` + base64 of the raw public key of ``key``."""
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return PUBLIC_KEY_PREFIX + base64.b64encode(raw).decode()


def stored_key(text: str) -> SigningKey:
    """The signing key of a decrypted stored key: ``whsk_…`` (Ed25519) or ``whsec_…`` (HMAC)."""
    if text.startswith(PRIVATE_KEY_PREFIX):
        return private_key(text)
    return secret_key(text)


def sign(key: SigningKey, msg_id: str, timestamp: int, body: bytes) -> str:
    """One signature over ``{msg_id}.{timestamp}.{body}``: ``v1,<base64>`` for an HMAC key,
    ``v1a,<base64>`` for an Ed25519 key."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    if isinstance(key, Ed25519PrivateKey):
        return "v1a," + base64.b64encode(key.sign(content)).decode()
    mac = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signature_header(keys: Iterable[SigningKey], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one signature per active key, space-separated."""
    return " ".join(sign(k, msg_id, timestamp, body) for k in keys)


def headers(keys: Iterable[SigningKey], msg_id: str, timestamp: int, body: bytes) -> Mapping[str, str]:
    """The three Standard Webhooks headers plus the content headers for ``body``."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(keys, msg_id, timestamp, body),
        "content-type": "application/json",
        "content-length": str(len(body)),
    }


class EndpointSecrets(Protocol):
    """What signing needs of an endpoint: a :class:`~service.webhooks.models.WebhookEndpoint`
    or a row of these columns."""

    @property
    def secret_enc(self) -> str: ...
    @property
    def previous_secret_enc(self) -> str | None: ...
    @property
    def previous_secret_expires_at(self) -> dt.datetime | None: ...


def signing_keys(endpoint: EndpointSecrets, *, keys_dir: Path, now: dt.datetime) -> list[SigningKey]:
    """The keys that sign for ``endpoint`` now: the current one, then the previous one while
    its overlap lasts (HMAC keys or Ed25519 private keys, by what was stored)."""
    keys = [stored_key(secretbox.decrypt(keys_dir, endpoint.secret_enc))]
    if (
        endpoint.previous_secret_enc
        and endpoint.previous_secret_expires_at is not None
        and endpoint.previous_secret_expires_at > now
    ):
        keys.append(stored_key(secretbox.decrypt(keys_dir, endpoint.previous_secret_enc)))
    return keys
