"""The registry's verification routes (DESIGN §3 "Registry"): is this school affiliated now
(a signed credential, served from the public-representation cache), which school is this
(``/v1/verify``), and is this presented credential valid.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlmodel import col, select
from starlette.responses import Response

from service.core import codes
from service.core.db import transaction
from service.core.errors import Unprocessable
from service.registry import affiliation, embeds, service, status_lists
from service.registry.matchers import verifier_of
from service.registry.models import School
from service.registry.schemas import Affiliation, CredentialCheck, CredentialVerdict, VerifyResult
from service.registry.verify import match
from service.web import cache
from service.web.deps import KeysDep, SessionDep, SettingsDep
from service.web.http import json_response

router = APIRouter(prefix="/v1", tags=["registry"])


@router.get(
    "/schools/{school_id}/affiliation",
    response_model=Affiliation,
    tags=["verification"],
    summary="Is this school affiliated now? (signed)",
    responses=embeds.PAGE_RESPONSES,
)
async def get_affiliation(school_id: str, request: Request, lang: embeds.LangQuery = None) -> Response:
    """``affiliated`` is true only for a listed school whose status is ``aligned`` or
    ``reaffirmation_due``. Every school gets a signed credential, negative answers
    and delisted schools too. Served from an in-process cache that follows every
    change of the school (see ``registry/affiliation.py``).

    With ``Accept: text/html`` (a browser following a badge) the answer is a minimal,
    self-contained page — the school, its status, the version it states alignment
    with, the re-affirmation date, when it was checked and the same signed credential —
    in the language of ``lang`` or else `Accept-Language` (English by default)."""
    state = request.app.state

    def build(previous: cache.Entry | None) -> cache.Built | cache.Entry:
        return affiliation.build_answer(
            engine=state.engine,
            keys=state.keys,
            settings=state.settings,
            school_id=school_id,
            previous=previous,
        )

    if embeds.wants_html(request.headers.get("accept")):
        return await embeds.serve_page(request, school_id=school_id, lang=lang, build_answer=build)
    return await cache.cache_of(state).serve(request, affiliation.RESOURCE, ("affiliation", school_id), build)


@router.get("/verify", response_model=VerifyResult, tags=["verification"], summary="Which school is this?")
def verify_school(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    name: Annotated[str | None, Query(max_length=500)] = None,
    country: Annotated[str | None, Query(max_length=100)] = None,
    website: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    """Up to 10 listed schools that best match, with a score (0–1) and the reasons;
    ``chosen`` marks the one that is clearly best (score ≥ 0.9, no other ≥ 0.9).
    Names are compared folded, alternate names count; websites by registrable
    domain (Public Suffix List). At least ``name`` or ``website`` is needed (422)."""
    if not (name and name.strip()) and not (website and website.strip()):
        raise Unprocessable("Give at least `name` or `website`.")
    code = codes.parameter(codes.country_code, country, "country") if country else None
    index = verifier_of(request).index(session)
    found = match(index, name=name, country=code, website=website)
    schools = {
        s.id: s for s in session.exec(select(School).where(col(School.id).in_([m.school_id for m in found])))
    }
    data: list[dict[str, Any]] = []
    for m in found:
        school = schools.get(m.school_id)
        if school is None or school.listing != "listed":
            continue  # delisted since the index was built
        data.append(
            {
                "school": service.public_dict(school, base_url=settings.public_base_url),
                "score": m.score,
                "chosen": m.chosen,
                "reason": m.reason,
            }
        )
    return json_response(request.headers, {"data": data}, cache_control="no-cache")


@router.post(
    "/credentials/verify",
    response_model=CredentialVerdict,
    tags=["verification"],
    summary="Check a presented affiliation credential",
)
def verify_credential(
    request: Request, body: CredentialCheck, settings: SettingsDep, keys: KeysDep
) -> Response:
    """200 ``{"valid", "reason", "claims"}``: ``reason`` names the first failing check
    (``alg_not_allowed``, ``unknown_kid``, ``bad_signature``, ``expired``,
    ``not_yet_valid``, ``wrong_issuer``, ``too_large``, ``malformed``, …), then the
    credential's status list entry as it reads now (``status_invalid``,
    ``status_suspended``), or ``valid``."""
    engine = request.app.state.engine

    def status_of(list_id: int, idx: int) -> int | None:
        with transaction(engine, readonly=True) as session:
            return status_lists.value_at(session, list_id, idx)

    verdict = affiliation.check_credential(
        keys=keys, credential=body.credential, issuer=settings.public_base_url, status_of=status_of
    )
    return json_response(request.headers, verdict, cache_control="no-store")
