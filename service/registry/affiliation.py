"""Affiliation answers with signed credentials, and the server-side credential check.

``GET /v1/schools/{id}/affiliation`` is a hot path (sites verify on every page
view), so its answer is built once and served as bytes:

- The public-representation cache (``service/web/cache.py``, :data:`RESOURCE`)
  keeps, per school, the serialised response, its ETag and the credential
  inside it, and serves it without any database access while no school or
  standards change was committed, the signing key is the same, and the
  credential is not close to expiry.
- When something changed, :func:`build_answer` compares the school's
  ``revision`` and the current standards version with the stored answer's; only
  a real change of the school (or a new current version) signs a new credential.

Credentials (compact JWS, ES256, ``typ`` JWT, ``kid`` in the header) carry
``iss`` (the public base URL), ``sub`` (the school's URL), ``iat``, ``nbf``,
``exp`` (``IMI_CREDENTIAL_TTL_S``, 30 days), ``jti``, ``affiliated``,
``alignment_status``, ``aligned_version``, plus ``school_id``, ``listing``,
``reaffirmation_due_by``, ``status`` (the draft-ietf-oauth-status-list reference
``{"status_list": {"idx", "uri"}}`` of the school's entry, ``status_lists.py``) and
``checkpoint_size`` (the transparency log's size when it was signed). Delisted
schools get a signed negative answer too.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from service.core.config import Settings
from service.core.errors import NotFound
from service.core.jsonutil import dumps
from service.registry import service as registry
from service.registry import status_lists
from service.registry.models import AFFILIATED_STATUSES, School
from service.security.keys import CREDENTIAL_TYP, KeyStore, TokenError, new_jti
from service.standards import service as standards
from service.transparency import log
from service.web import cache
from service.web.http import CACHE_SHORT, make_etag

#: An entry is re-signed when its credential has less than this share of its lifetime left
#: (at most 5 minutes before expiry).
REFRESH_SHARE = 0.1
REFRESH_MAX_S = 300


def is_affiliated(school: School) -> bool:
    """True only for a listed school whose status is ``aligned`` or ``reaffirmation_due``."""
    return school.listing == "listed" and school.alignment_status in AFFILIATED_STATUSES


def credential_claims(
    school: School, *, issuer: str, ttl_s: int, now: float, entry: tuple[int, int], checkpoint_size: int
) -> dict[str, Any]:
    """The claims of a new credential for ``school``, whose status list entry is ``entry``
    (list id, index), signed while the log has ``checkpoint_size`` leaves."""
    t = int(now)
    return {
        "iss": issuer,
        "sub": registry.school_url(issuer, school.id),
        "iat": t,
        "nbf": t,
        "exp": t + ttl_s,
        "jti": new_jti(),
        "affiliated": is_affiliated(school),
        "alignment_status": school.alignment_status,
        "aligned_version": school.aligned_version,
        "school_id": school.id,
        "listing": school.listing,
        "reaffirmation_due_by": registry.ts(school.reaffirmation_due_by),
        "status": status_lists.status_claim(issuer, *entry),
        "checkpoint_size": checkpoint_size,
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


#: The public read ``GET /v1/schools/{id}/affiliation`` (``service/web/cache.py``). A school
#: event may change the answer, and so may a standards event (``current_version``).
RESOURCE = cache.Resource(
    route="/v1/schools/{school_id}/affiliation",
    domains=("school", "standards"),
    # No age limit of its own: the credential's refresh time ends an answer (Built.expires_at),
    # and until then its ETag stays the same for clients revalidating it.
    max_age_s=math.inf,
    still_valid=lambda entry: entry.meta.keys.active().kid == entry.meta.kid,
)


@dataclass(frozen=True)
class Signed:
    """What a stored affiliation answer was signed for (``Entry.meta``): the school's
    ``revision``, the ``current_version`` it names and the signing key's ``kid``."""

    revision: int
    current_version: str | None
    kid: str
    keys: KeyStore


def build_answer(
    *, engine: Engine, keys: KeyStore, settings: Settings, school_id: str, previous: cache.Entry | None
) -> cache.Built | cache.Entry:
    """The affiliation answer of ``school_id`` (blocking).

    ``previous`` (a stale answer of the same school) is returned as it is when the
    school's revision, the current version and the signing key are unchanged and
    its credential is not near its end: something else changed, and the credential
    still says the truth, so nothing is signed. Raises :class:`NotFound` for an
    unknown school.
    """
    with Session(engine.execution_options(imi_readonly=True)) as session:
        school = session.get(School, school_id) if len(school_id) <= 40 else None
        if school is None:
            raise NotFound(f"There is no school {school_id!r}.")
        current = standards.current_version_number(session=session, slug=standards.DEFAULT_DOCUMENT)
        entry = status_lists.entry_of(session, school.id)
        checkpoint_size = log.tree_size(session)
    key = keys.active()
    if (
        previous is not None
        and previous.meta.kid == key.kid
        and previous.meta.revision == school.revision
        and previous.meta.current_version == current
        and time.time() < previous.expires_at
    ):
        return previous
    ttl = settings.credential_ttl_s
    base = settings.public_base_url
    if entry is None:
        entry = status_lists.ensure_entry(engine, school.id)
    claims = credential_claims(
        school, issuer=base, ttl_s=ttl, now=time.time(), entry=entry, checkpoint_size=checkpoint_size
    )
    credential = keys.sign(claims, typ=CREDENTIAL_TYP)
    body = dumps(affiliation_dict(school, current_version=current, credential=credential, base_url=base))
    margin = min(REFRESH_MAX_S, ttl * REFRESH_SHARE)
    return cache.Built(
        body=body,
        media_type="application/json",
        headers={"ETag": make_etag(body), "Cache-Control": CACHE_SHORT, "Vary": "Accept, Accept-Encoding"},
        # Re-signed when less than a tenth of its lifetime (at most 5 minutes) is left.
        expires_at=claims["exp"] - margin,
        meta=Signed(revision=school.revision, current_version=current, kid=key.kid, keys=keys),
    )


# --- checking a presented credential ---------------------------------------------------------


#: Reasons for a credential whose status list entry is not 0 (VALID).
STATUS_REASONS = {status_lists.INVALID: "status_invalid", status_lists.SUSPENDED: "status_suspended"}


def check_credential(
    *, keys: KeyStore, credential: str, issuer: str, status_of: Callable[[int, int], int | None]
) -> dict[str, Any]:
    """``{"valid", "reason", "claims"}`` for a presented credential (``POST /v1/credentials/verify``).

    ``reason`` is ``valid`` or the first failing check of
    :meth:`KeyStore.verify` (``too_large``, ``malformed``, ``alg_not_allowed``,
    ``unknown_kid``, ``bad_signature``, ``wrong_type``, ``expired``,
    ``not_yet_valid``, ``wrong_issuer``), or ``not_a_credential`` for a
    genuine token that is not an affiliation credential, then the status check:
    ``status_invalid`` (withdrawn, lapsed, delisted) or ``status_suspended`` as the
    entry reads now (``status_of(list id, index)``), ``malformed_status`` for a status
    claim that is not a reference to one of our lists, ``unknown_status`` for an
    entry no school holds. Credentials from before status lists carry no ``status``
    and are checked as before. ``claims`` is empty unless the credential is valid
    (unverified claims are never echoed).
    """
    try:
        claims = keys.verify(credential, typ=CREDENTIAL_TYP, issuer=issuer)
    except TokenError as exc:
        return {"valid": False, "reason": exc.reason, "claims": {}}
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.startswith(f"{issuer}/v1/schools/") or "affiliated" not in claims:
        return {"valid": False, "reason": "not_a_credential", "claims": {}}
    if "status" in claims:
        entry = _status_entry(claims["status"], issuer)
        if entry is None:
            return {"valid": False, "reason": "malformed_status", "claims": {}}
        value = status_of(*entry)
        if value is None:
            return {"valid": False, "reason": "unknown_status", "claims": {}}
        if value != status_lists.VALID:
            return {"valid": False, "reason": STATUS_REASONS.get(value, "status_invalid"), "claims": {}}
    return {"valid": True, "reason": "valid", "claims": claims}


def _status_entry(claim: Any, issuer: str) -> tuple[int, int] | None:
    """``(list id, index)`` of a ``status`` claim naming one of our lists, else ``None``."""
    reference = claim.get("status_list") if isinstance(claim, dict) else None
    if not isinstance(reference, dict):
        return None
    idx, uri = reference.get("idx"), reference.get("uri")
    prefix = status_lists.list_uri(issuer, 0)[:-1]
    if not isinstance(idx, int) or isinstance(idx, bool) or not 0 <= idx < 2**31 or not isinstance(uri, str):
        return None
    list_id = uri[len(prefix) :] if uri.startswith(prefix) else ""
    if not list_id.isascii() or not list_id.isdigit() or len(list_id) > 9:
        return None
    return int(list_id), idx
