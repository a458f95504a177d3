"""Standard Webhooks signatures (https://www.standardwebhooks.com, "Signature scheme").

``webhook-signature: v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>``,
several space-separated when more than one secret is active (rotation).
Secrets are ``whsec_`` + base64 of 32 random bytes; the key is the decoded
bytes. Byte-identical to the ``standardwebhooks`` library's ``Webhook.sign``
(the tests check both agree), but signs the body bytes directly instead of
round-tripping them through ``str``.

Which keys sign for an endpoint (:func:`signing_keys`): its current secret,
and after a rotation the previous one while the overlap lasts; both are stored
encrypted (:mod:`service.security.secretbox`).
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

from service.security import secretbox

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_…`` secret (its base64 payload decoded)."""
    raw = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    return base64.b64decode(raw + "==")


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One signature ``v1,<base64>`` over ``{msg_id}.{timestamp}.{body}``."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signature_header(keys: Iterable[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one ``v1,…`` per active key, space-separated."""
    return " ".join(sign(k, msg_id, timestamp, body) for k in keys)


def headers(keys: Iterable[bytes], msg_id: str, timestamp: int, body: bytes) -> Mapping[str, str]:
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


def signing_keys(endpoint: EndpointSecrets, *, keys_dir: Path, now: dt.datetime) -> list[bytes]:
    """The HMAC keys that sign for ``endpoint`` now: the current secret, then the previous
    one while its overlap lasts."""
    keys = [secret_key(secretbox.decrypt(keys_dir, endpoint.secret_enc))]
    if (
        endpoint.previous_secret_enc
        and endpoint.previous_secret_expires_at is not None
        and endpoint.previous_secret_expires_at > now
    ):
        keys.append(secret_key(secretbox.decrypt(keys_dir, endpoint.previous_secret_enc)))
    return keys
