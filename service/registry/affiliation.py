"""Affiliation answers with signed credentials, and the server-side credential check.

``GET /v1/schools/{id}/affiliation`` is a hot path (sites verify on every page
view), so its answer is built once and served as bytes:

- :class:`AffiliationCache` (one per application) keeps, per school, the
  serialised response, its ETag and the credential inside it.
- An entry is served without any database access while the
  :class:`~service.registry.changes.ChangeClock` stamp is unchanged (nothing
  public changed: no event committed here, and the event counter polled at
  most every 0.5 s is the same), the signing key is the same, and the
  credential is not close to expiry.
- When the stamp moved, one small query compares the school's ``revision``
  and the current standards version with the entry's; only a real change of
  the school (or a new current version) signs a new credential.

Credentials (compact JWS, ES256, ``typ`` JWT, ``kid`` in the header) carry
``iss`` (the public base URL), ``sub`` (the school's URL), ``iat``, ``nbf``,
``exp`` (``IMI_CREDENTIAL_TTL_S``), ``jti``, ``affiliated``, ``status``,
``aligned_version``, plus ``school_id``, ``listing`` and
``reaffirmation_due_by``. Delisted schools get a signed negative answer too.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from service.core.config import Settings
from service.core.errors import NotFound
from service.core.jsonutil import dumps
from service.registry import service as registry
from service.registry.changes import ChangeClock, Stamp
from service.registry.models import AFFILIATED_STATUSES, School
from service.security.keys import CREDENTIAL_TYP, KeyStore, TokenError, new_jti
from service.standards import service as standards
from service.web.http import CACHE_SHORT, make_etag

#: An entry is re-signed when its credential has less than this share of its lifetime left
#: (at most 5 minutes before expiry).
REFRESH_SHARE = 0.1
REFRESH_MAX_S = 300
MAX_ENTRIES = 100_000


@dataclass
class Entry:
    """A cached affiliation response for one school."""

    stamp: Stamp
    revision: int
    current_version: str | None
    kid: str
    refresh_at: float
    body: bytes
    etag: str
    headers: dict[str, str]


def is_affiliated(school: School) -> bool:
    """True only for a listed school whose status is ``aligned`` or ``reaffirmation_due``."""
    return school.listing == "listed" and school.alignment_status in AFFILIATED_STATUSES


def credential_claims(school: School, *, issuer: str, ttl_s: int, now: float) -> dict[str, Any]:
    """The claims of a new credential for ``school``."""
    t = int(now)
    return {
        "iss": issuer,
        "sub": registry.school_url(issuer, school.id),
        "iat": t,
        "nbf": t,
        "exp": t + ttl_s,
        "jti": new_jti(),
        "affiliated": is_affiliated(school),
        "status": school.alignment_status,
        "aligned_version": school.aligned_version,
        "school_id": school.id,
        "listing": school.listing,
        "reaffirmation_due_by": registry.ts(school.reaffirmation_due_by),
    }


def affiliation_dict(
    school: School, *, current_version: str | None, credential: str, base_url: str
) -> dict[str, Any]:
    """The response body of ``GET /v1/schools/{id}/affiliation``."""
    return {
        "school_id": school.id,
        "affiliated": is_affiliated(school),
        "status": school.alignment_status,
        "aligned_version": school.aligned_version,
        "current_version": current_version,
        "reaffirmation_due_by": registry.ts(school.reaffirmation_due_by),
        "listing": school.listing,
        "credential": credential,
        "links": registry.links(base_url, school.id),
    }


class AffiliationCache:
    """Serialised affiliation responses of one application (see the module docstring)."""

    def __init__(self, *, engine: Engine, keys: KeyStore, settings: Settings) -> None:
        self.engine = engine
        self.keys = keys
        self.settings = settings
        self.clock = ChangeClock(engine)
        self._entries: dict[str, Entry] = {}
        self._lock = threading.Lock()

    def fresh(self, school_id: str) -> Entry | None:
        """The cached entry when it can be served without any I/O; else ``None``."""
        entry = self._entries.get(school_id)
        if entry is None:
            return None
        stamp = self.clock.cached()
        if stamp is None or stamp != entry.stamp or time.time() >= entry.refresh_at:
            return None
        if self.keys.active().kid != entry.kid:
            return None
        return entry

    def get(self, school_id: str) -> Entry:
        """The current entry, revalidated or rebuilt as needed (blocking: run in a thread).

        Raises :class:`NotFound` for an unknown school.
        """
        stamp = self.clock.current()
        entry = self._entries.get(school_id)
        kid = self.keys.active().kid
        if entry is not None and entry.kid == kid and time.time() < entry.refresh_at:
            if entry.stamp == stamp:
                return entry
        with Session(self.engine.execution_options(imi_readonly=True)) as session:
            school = session.get(School, school_id) if len(school_id) <= 40 else None
            if school is None:
                raise NotFound(f"There is no school {school_id!r}.")
            current = standards.current_version_number(session=session, slug=standards.DEFAULT_DOCUMENT)
        if (
            entry is not None
            and entry.kid == kid
            and time.time() < entry.refresh_at
            and entry.revision == school.revision
            and entry.current_version == current
        ):
            # Something else changed: the credential still says the truth.
            entry.stamp = stamp
            return entry
        entry = self._build(school, current_version=current, stamp=stamp)
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[school_id] = entry
        return entry

    def _build(self, school: School, *, current_version: str | None, stamp: Stamp) -> Entry:
        ttl = self.settings.credential_ttl_s
        now = time.time()
        base = self.settings.public_base_url
        key = self.keys.active()
        claims = credential_claims(school, issuer=base, ttl_s=ttl, now=now)
        credential = self.keys.sign(claims, typ=CREDENTIAL_TYP)
        body = dumps(
            affiliation_dict(school, current_version=current_version, credential=credential, base_url=base)
        )
        tag = make_etag(body)
        margin = min(REFRESH_MAX_S, ttl * REFRESH_SHARE)
        return Entry(
            stamp=stamp,
            revision=school.revision,
            current_version=current_version,
            kid=key.kid,
            refresh_at=claims["exp"] - margin,
            body=body,
            etag=tag,
            headers={
                "ETag": tag,
                "Cache-Control": CACHE_SHORT,
                "Vary": "Accept, Accept-Encoding",
                "Content-Type": "application/json",
            },
        )


def cache_for(app_state: Any) -> AffiliationCache:
    """The application's cache (created on first use)."""
    cache = getattr(app_state, "imi_affiliation_cache", None)
    if cache is None:
        cache = AffiliationCache(engine=app_state.engine, keys=app_state.keys, settings=app_state.settings)
        app_state.imi_affiliation_cache = cache
    return cache


# --- checking a presented credential ---------------------------------------------------------


def check_credential(*, keys: KeyStore, credential: str, issuer: str) -> dict[str, Any]:
    """``{"valid", "reason", "claims"}`` for a presented credential (``POST /v1/credentials/verify``).

    ``reason`` is ``valid`` or the first failing check of
    :meth:`KeyStore.verify` (``too_large``, ``malformed``, ``alg_not_allowed``,
    ``unknown_kid``, ``bad_signature``, ``wrong_type``, ``expired``,
    ``not_yet_valid``, ``wrong_issuer``), or ``not_a_credential`` for a
    genuine token that is not an affiliation credential. ``claims`` is empty
    unless the credential is valid (unverified claims are never echoed).
    """
    try:
        claims = keys.verify(credential, typ=CREDENTIAL_TYP, issuer=issuer)
    except TokenError as exc:
        return {"valid": False, "reason": exc.reason, "claims": {}}
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.startswith(f"{issuer}/v1/schools/") or "affiliated" not in claims:
        return {"valid": False, "reason": "not_a_credential", "claims": {}}
    return {"valid": True, "reason": "valid", "claims": claims}
