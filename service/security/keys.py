"""Signing keys, access tokens, affiliation credentials and the JWKS.

The only module that imports python-jose. Keys are ES256 (P-256) private keys
kept as PEM files in ``IMI_KEYS_DIR/signing/``; every replica that mounts the
same folder signs and verifies with the same keys. Decoding always uses an
explicit algorithm allow-list (``ES256`` only: never ``none``, never HMAC).

Sources: RFC 7515 (JWS), RFC 7517 (JWK/JWKS), RFC 7519 (JWT), RFC 9068 (JWT
access tokens).
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jose import jwk, jws
from jose.exceptions import JWSError
from ulid import ULID

ALGORITHM = "ES256"
ALLOWED_ALGORITHMS = (ALGORITHM,)
#: Tokens longer than this are refused before any parsing (bytes).
MAX_TOKEN_BYTES = 8192
#: Clock skew tolerated on ``exp``/``nbf``/``iat`` (seconds).
LEEWAY_S = 30
ACCESS_TOKEN_TYP = "at+jwt"
CREDENTIAL_TYP = "JWT"
#: ``typ`` of a signed snapshot (``GET /v1/snapshot`` with ``Accept: application/jose``).
SNAPSHOT_TYP = "imi-snapshot+jws"
#: How often a running process looks for keys added or rotated by the CLI (seconds).
RELOAD_INTERVAL_S = 2.0


class TokenError(Exception):
    """A JWS that must not be trusted; ``reason`` is a short machine-readable code.

    Reasons: ``too_large``, ``malformed``, ``alg_not_allowed``, ``unknown_kid``,
    ``bad_signature``, ``wrong_type``, ``expired``, ``not_yet_valid``,
    ``wrong_issuer``, ``wrong_audience``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class SigningKey:
    """One key: ``kid``, the PEM private key, creation and retirement (Unix seconds)."""

    kid: str
    private_pem: bytes
    created_at: float
    retired_at: float | None = None
    public_jwk: dict[str, Any] = field(default_factory=dict)


class KeyStore:
    """The signing keys under ``keys_dir/signing``; the newest unretired key signs.

    A retired key stays published (JWKS) and accepted for ``retention_s``
    seconds after retirement, so tokens and credentials it signed keep
    verifying until they expire.
    """

    def __init__(self, keys_dir: Path, *, retention_s: float) -> None:
        self.dir = Path(keys_dir) / "signing"
        self.retention_s = retention_s
        self._lock = threading.Lock()
        self._keys: dict[str, SigningKey] = {}
        self._stamp: tuple[float, int] | None = None
        self._checked = 0.0

    # -- files ------------------------------------------------------------------

    def ensure(self) -> SigningKey:
        """Load the keys, generating the first one when the folder has none."""
        self.reload(force=True)
        active = self._active_or_none()
        if active is None:
            active = self.generate()
        return active

    def generate(self) -> SigningKey:
        """Create a new key (it becomes the signing key) and write it, mode 0600."""
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        private = ec.generate_private_key(ec.SECP256R1())
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        kid = "k" + str(ULID()).lower()
        meta = {"kid": kid, "created_at": time.time(), "retired_at": None}
        _write_private(self.dir / f"{kid}.pem", pem)
        _write_private(self.dir / f"{kid}.json", json.dumps(meta).encode())
        self.reload(force=True)
        return self._keys[kid]

    def rotate(self) -> SigningKey:
        """Retire the signing key(s) and generate a new one."""
        self.reload(force=True)
        now = time.time()
        for key in list(self._keys.values()):
            if key.retired_at is None:
                meta = {"kid": key.kid, "created_at": key.created_at, "retired_at": now}
                _write_private(self.dir / f"{key.kid}.json", json.dumps(meta).encode())
        return self.generate()

    def reload(self, *, force: bool = False) -> None:
        """Re-read the folder when it changed (checked at most every 2 s)."""
        now = time.monotonic()
        if not force and now - self._checked < RELOAD_INTERVAL_S:
            return
        with self._lock:
            self._checked = now
            if not self.dir.exists():
                self._keys, self._stamp = {}, None
                return
            entries = sorted(self.dir.glob("*.json"))
            stamp = (max((p.stat().st_mtime for p in entries), default=0.0), len(entries))
            if not force and stamp == self._stamp:
                return
            keys: dict[str, SigningKey] = {}
            for meta_path in entries:
                meta = json.loads(meta_path.read_text())
                pem_path = meta_path.with_suffix(".pem")
                if not pem_path.exists():
                    continue
                pem = pem_path.read_bytes()
                public = jwk.construct(pem, ALGORITHM).public_key().to_dict()
                public.update({"kid": meta["kid"], "use": "sig", "alg": ALGORITHM})
                keys[meta["kid"]] = SigningKey(
                    kid=meta["kid"],
                    private_pem=pem,
                    created_at=float(meta["created_at"]),
                    retired_at=meta.get("retired_at"),
                    public_jwk=public,
                )
            self._keys, self._stamp = keys, stamp

    # -- queries ------------------------------------------------------------------

    def _active_or_none(self) -> SigningKey | None:
        live = [k for k in self._keys.values() if k.retired_at is None]
        return max(live, key=lambda k: (k.created_at, k.kid)) if live else None

    def active(self) -> SigningKey:
        """The key that signs now; :class:`RuntimeError` if there is none."""
        self.reload()
        key = self._active_or_none()
        if key is None:
            raise RuntimeError(f"no signing key in {self.dir}: run `imi-api keys generate`")
        return key

    def published(self) -> list[SigningKey]:
        """Keys that verify: the active ones and those retired within the retention."""
        self.reload()
        now = time.time()
        return sorted(
            (
                k
                for k in self._keys.values()
                if k.retired_at is None or now - float(k.retired_at) < self.retention_s
            ),
            key=lambda k: k.created_at,
            reverse=True,
        )

    def all(self) -> list[SigningKey]:
        """Every key on disk, newest first (for ``imi-api keys list``)."""
        self.reload(force=True)
        return sorted(self._keys.values(), key=lambda k: k.created_at, reverse=True)

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set (RFC 7517 §5) of the published public keys."""
        return {"keys": [dict(k.public_jwk) for k in self.published()]}

    def find(self, kid: str) -> SigningKey | None:
        for key in self.published():
            if key.kid == kid:
                return key
        return None

    # -- signing and verification ---------------------------------------------------

    def sign(self, claims: dict[str, Any], *, typ: str) -> str:
        """A compact JWS over ``claims`` with the active key (``kid``, ``typ`` in the header)."""
        key = self.active()
        return str(
            jws.sign(
                json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode(),
                key.private_pem.decode(),
                headers={"kid": key.kid, "typ": typ},
                algorithm=ALGORITHM,
            )
        )

    def sign_document(self, payload: bytes, *, typ: str, headers: dict[str, Any] | None = None) -> str:
        """A compact JWS over the exact ``payload`` bytes with the active key; ``headers`` are
        added to the protected header (beside ``alg``, ``kid``, ``typ``)."""
        key = self.active()
        return str(
            jws.sign(
                payload,
                key.private_pem.decode(),
                headers={**(headers or {}), "kid": key.kid, "typ": typ},
                algorithm=ALGORITHM,
            )
        )

    def verify(
        self,
        token: str,
        *,
        typ: str,
        issuer: str,
        audience: str | None = None,
        now: float | None = None,
    ) -> dict[str, Any]:
        """Verify a compact JWS and its registered claims; return the claims.

        Order of checks: size, structure, ``alg`` in the allow-list, known
        ``kid``, signature, ``typ``, ``exp``, ``nbf``, ``iss``, ``aud``.
        Raises :class:`TokenError` with the first failing reason.
        """
        if len(token.encode("utf-8", "replace")) > MAX_TOKEN_BYTES:
            raise TokenError("too_large", f"the token is longer than {MAX_TOKEN_BYTES} bytes")
        header = _protected_header(token, not_jws="the token is not a compact JWS")
        kid = header.get("kid")
        key = self.find(kid) if isinstance(kid, str) else None
        if key is None:
            raise TokenError("unknown_kid", "the token's kid is not one of our published keys")
        try:
            payload = jws.verify(token, key.public_jwk, algorithms=list(ALLOWED_ALGORITHMS))
        except (JWSError, ValueError, TypeError) as exc:
            raise TokenError("bad_signature", "the signature does not verify") from exc
        try:
            claims = json.loads(payload)
        except ValueError as exc:
            raise TokenError("malformed", "the payload is not JSON") from exc
        if not isinstance(claims, dict):
            raise TokenError("malformed", "the payload is not a JSON object")
        if header.get("typ") != typ:
            raise TokenError("wrong_type", f"expected a token of type {typ!r}")
        t = time.time() if now is None else now
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if not isinstance(exp, int | float) or t > exp + LEEWAY_S:
            raise TokenError("expired", "the token has expired")
        if isinstance(nbf, int | float) and t + LEEWAY_S < nbf:
            raise TokenError("not_yet_valid", "the token is not valid yet (nbf)")
        if claims.get("iss") != issuer:
            raise TokenError("wrong_issuer", "the token was not issued by this service")
        if audience is not None:
            aud = claims.get("aud")
            auds = aud if isinstance(aud, list) else [aud]
            if audience not in auds:
                raise TokenError("wrong_audience", "the token is meant for another audience")
        return claims


def _protected_header(token: str, *, not_jws: str) -> dict[str, Any]:
    """The JWS's protected header, unverified, once it is a JSON object naming an allowed
    ``alg``; :class:`TokenError` ``malformed`` (with ``not_jws`` when it is no compact JWS at
    all) or ``alg_not_allowed``."""
    try:
        header = jws.get_unverified_header(token)
    except (JWSError, ValueError, TypeError, UnicodeError) as exc:
        raise TokenError("malformed", not_jws) from exc
    if not isinstance(header, dict):
        raise TokenError("malformed", "the JWS header is not a JSON object")
    alg = header.get("alg")
    if alg not in ALLOWED_ALGORITHMS:
        raise TokenError("alg_not_allowed", f"algorithm {alg!r} is not accepted; use ES256")
    return header


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by the owner only, atomically."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def new_jti() -> str:
    """A random JWT ID (RFC 7519 §4.1.7)."""
    return secrets.token_urlsafe(16)


def issue_access_token(
    keys: KeyStore,
    *,
    issuer: str,
    client_id: str,
    scopes: list[str],
    ttl_s: int,
    now: float | None = None,
) -> str:
    """An RFC 9068 access token: ``iss``/``aud`` = the base URL, ``sub`` = the client id."""
    t = int(time.time() if now is None else now)
    claims = {
        "iss": issuer,
        "aud": issuer,
        "sub": client_id,
        "client_id": client_id,
        "scope": " ".join(scopes),
        "iat": t,
        "nbf": t,
        "exp": t + ttl_s,
        "jti": new_jti(),
    }
    return keys.sign(claims, typ=ACCESS_TOKEN_TYP)


def verify_access_token(keys: KeyStore, token: str, *, issuer: str) -> dict[str, Any]:
    """The claims of a valid access token; :class:`TokenError` otherwise."""
    return keys.verify(token, typ=ACCESS_TOKEN_TYP, issuer=issuer, audience=issuer)


def verify_with_jwks(token: str, jwks: Any, *, typ: str) -> tuple[dict[str, Any], bytes]:
    """``(protected header, payload bytes)`` of a compact JWS signed by a key of ``jwks``
    (a JWK Set as parsed JSON); no size limit (a signed snapshot is large).

    Checks, in order: structure, ``alg`` ES256, a ``kid`` found in the set, the
    signature, ``typ``. Raises :class:`TokenError` (``malformed``,
    ``alg_not_allowed``, ``unknown_kid``, ``bad_signature``, ``wrong_type``).
    """
    header = _protected_header(token, not_jws="not a compact JWS")
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list):
        raise TokenError("malformed", "the JWKS has no `keys` list")
    key = next((k for k in keys if isinstance(k, dict) and k.get("kid") == header.get("kid")), None)
    if key is None:
        raise TokenError("unknown_kid", "the JWS's kid is not in the JWKS")
    try:
        payload = jws.verify(token, key, algorithms=list(ALLOWED_ALGORITHMS))
    except (JWSError, ValueError, TypeError) as exc:
        raise TokenError("bad_signature", "the signature does not verify") from exc
    if header.get("typ") != typ:
        raise TokenError("wrong_type", f"expected a JWS of type {typ!r}")
    return header, bytes(payload)
