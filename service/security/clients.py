"""Creating, authenticating, listing and revoking API clients.

Secrets are 32 random bytes (URL-safe base64) stored as argon2id hashes.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, col, select

from service.core.db import utcnow
from service.core.errors import NotFound, Unprocessable
from service.core.ids import new_id
from service.security.models import COMMENTER_TYPES, SCOPES, ApiClient

_profile = "RFC_9106_LOW_MEMORY"
_hasher = PasswordHasher.from_parameters(profiles.RFC_9106_LOW_MEMORY)
# A hash of a random secret: unknown client ids cost as much as known ones,
# so response timing does not tell which client ids exist.
# Computed on first use: hashing costs about a second of CPU, which every CLI
# command and worker start would otherwise pay.
_dummy_hash: str | None = None


def configure_hasher(profile: str) -> None:
    """Hash new secrets with the argon2 parameter profile ``profile`` (``argon2.profiles``).

    Existing hashes keep verifying: each hash carries its own parameters.
    Raises ``ValueError`` for an unknown profile name.
    """
    global _hasher, _dummy_hash, _profile
    params = getattr(profiles, profile, None)
    if not profile.isupper() or params is None:
        raise ValueError(f"unknown argon2 profile {profile!r}")
    if profile != _profile:
        _hasher, _profile = PasswordHasher.from_parameters(params), profile
        _dummy_hash = None


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request: client id, granted scopes, bound school."""

    client_id: str
    scopes: frozenset[str]
    school_id: str | None = None

    def has(self, scope: str) -> bool:
        return scope in self.scopes


def create_client(
    *,
    session: Session,
    name: str,
    scopes: list[str],
    school_id: str | None = None,
    organisation: str | None = None,
    region: str | None = None,
    commenter_type: str | None = None,
) -> tuple[ApiClient, str]:
    """Register a client; returns it and its secret (shown once).

    A ``review:comment`` client stands for an organisation: ``organisation`` (its
    public name, at most 200 characters), ``region`` (the shape of an ISO 3166-1
    alpha-2 or UN M49 code, upper-cased; the command line checks the code itself)
    and ``commenter_type`` (one of :data:`COMMENTER_TYPES`) are required for it.

    Raises :class:`Unprocessable` for an unknown scope, an empty name, a
    ``school:self`` client without a school, a ``review:comment`` client
    without its organisation, or an organisation given to a client without
    ``review:comment``.
    """
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise Unprocessable(f"unknown scope(s) {unknown}; known: {list(SCOPES)}")
    if not name.strip():
        raise Unprocessable("a client needs a name")
    if "school:self" in scopes and not school_id:
        raise Unprocessable("a school:self client must be bound to a school (--school)")
    if "review:comment" not in scopes and (organisation or region or commenter_type):
        # Dropping them would leave an operator believing the client comments for that
        # organisation while it cannot comment at all (403 on every comment).
        raise Unprocessable(
            "--organisation, --region and --commenter-type describe a review:comment client: "
            "add --scope review:comment"
        )
    commenter = _commenter(organisation, region, commenter_type) if "review:comment" in scopes else None
    secret = secrets.token_urlsafe(32)
    client = ApiClient(
        id=new_id("cli"),
        name=name.strip(),
        secret_hash=_hasher.hash(secret),
        scopes=" ".join(sorted(set(scopes))),
        school_id=school_id,
        created_at=utcnow(),
    )
    if commenter is not None:
        client.organisation, client.region, client.commenter_type = commenter
    session.add(client)
    session.flush()
    return client, secret


def _commenter(
    organisation: str | None, region: str | None, commenter_type: str | None
) -> tuple[str, str, str]:
    """The organisation a ``review:comment`` client stands for, checked."""
    org = (organisation or "").strip()
    if not org or len(org) > 200 or not org.isprintable():
        raise Unprocessable(
            "a review:comment client names its organisation (--organisation, 1-200 characters)"
        )
    code = (region or "").strip().upper()
    if not (len(code) == 2 and code.isascii() and code.isalpha()) and not (len(code) == 3 and code.isdigit()):
        raise Unprocessable("a review:comment client has a region (--region: ISO 3166-1 alpha-2 or UN M49)")
    if commenter_type not in COMMENTER_TYPES:
        raise Unprocessable(
            f"a review:comment client has a --commenter-type: one of {', '.join(COMMENTER_TYPES)}"
        )
    return org, code, commenter_type


def authenticate(*, session: Session, client_id: str, secret: str) -> ApiClient | None:
    """The client when ``secret`` is its current secret and it is not revoked; else ``None``."""
    client = session.get(ApiClient, client_id) if len(client_id) <= 40 else None
    global _dummy_hash
    if client is None and _dummy_hash is None:
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(32))
    hashed = client.secret_hash if client is not None else str(_dummy_hash)
    ok: bool
    try:
        ok = _hasher.verify(hashed, secret)
    except (VerificationError, InvalidHashError):
        ok = False
    if client is None or not ok or client.revoked_at is not None:
        return None
    return client


def active_client(*, session: Session, client_id: str) -> ApiClient | None:
    """The client if it exists and is not revoked (checked on every authenticated request)."""
    client = session.get(ApiClient, client_id)
    if client is None or client.revoked_at is not None:
        return None
    return client


def list_clients(*, session: Session) -> list[ApiClient]:
    """Every client, oldest first."""
    return list(session.exec(select(ApiClient).order_by(col(ApiClient.created_at))))


def revoke_client(*, session: Session, client_id: str) -> ApiClient:
    """Revoke a client; its tokens fail from the next request. :class:`NotFound` if unknown."""
    client = session.get(ApiClient, client_id)
    if client is None:
        raise NotFound(f"no client {client_id}")
    if client.revoked_at is None:
        client.revoked_at = utcnow()
        session.add(client)
    return client


def rotate_secret(*, session: Session, client_id: str) -> str:
    """Give a client a new secret (the old one stops working); returns the new secret."""
    client = session.get(ApiClient, client_id)
    if client is None or client.revoked_at is not None:
        raise NotFound(f"no active client {client_id}")
    secret = secrets.token_urlsafe(32)
    client.secret_hash = _hasher.hash(secret)
    session.add(client)
    return secret
