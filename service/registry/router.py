"""Registry routes (DESIGN §3 "Registry"): schools, alignment, affiliation, verification."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from service.core import codes
from service.core.db import transaction
from service.core.errors import Unprocessable
from service.core.jsonutil import dumps
from service.registry import affiliation, alignment, embeds, fuzzy, search, service, status_lists
from service.registry.models import School
from service.registry.schemas import (
    Affiliation,
    AlignmentAction,
    AlignmentStatement,
    CredentialCheck,
    CredentialVerdict,
    HistoryList,
    SchoolCreate,
    SchoolList,
    SchoolPublic,
    SchoolUpdate,
    VerifyResult,
)
from service.registry.verify import Verifier, match
from service.web import cache
from service.web.deps import (
    KeysDep,
    OptionalPrincipal,
    RegistryWrite,
    SchoolActor,
    SessionDep,
    SettingsDep,
    oauth2_scheme,
    optional_principal,
)
from service.web.http import (
    CACHE_SHORT,
    JSON,
    clamp_limit,
    conditional_response,
    cursor_value,
    encode_cursor,
    json_response,
    make_etag,
    next_link,
    page_response,
)
from service.web.openapi import problems


@asynccontextmanager
async def _lifespan(app: Any) -> AsyncIterator[None]:
    # The publish listener and the lapse job find this app's settings through its engine.
    service.configure(engine=app.state.engine, settings=app.state.settings)
    yield


router = APIRouter(prefix="/v1", tags=["registry"], lifespan=_lifespan)

#: Private representations (with ``contact``) are for one caller only.
CACHE_PRIVATE_NO_STORE = "private, no-store"

IfMatch = Annotated[str | None, Header(description="ETag of the school you last read")]


def _school_response(
    request: Request,
    school: School,
    *,
    base_url: str,
    private: bool,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    body = service.public_dict(school, base_url=base_url, private=private)
    hdrs = {"ETag": service.etag(school, private=private)}
    if private:
        hdrs["Vary"] = "Authorization"
    hdrs.update(headers or {})
    return conditional_response(
        request.headers,
        dumps(body),
        media_type=JSON,
        etag=hdrs.pop("ETag"),
        cache_control=CACHE_PRIVATE_NO_STORE if private else CACHE_SHORT,
        status_code=status_code,
        headers=hdrs,
    )


# --- schools ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Matchers:
    """An application's fuzzy matchers: the term vocabulary (typos in search words) and the
    name index of ``/v1/verify`` (suggestions), both following the schools' changes."""

    vocabulary: fuzzy.Vocabularies
    verifier: Verifier


def _matchers(request: Request) -> Matchers:
    state = request.app.state
    found = getattr(state, "imi_matchers", None)
    if found is None:
        clock = cache.cache_of(state).clock
        found = Matchers(fuzzy.Vocabularies(lambda: clock.stamp_now(("school",))), _verifier(request))
        state.imi_matchers = found
    return found


def _page(
    session: Any,
    matchers: Matchers,
    filters: search.Filters,
    cursor: str | None,
    size: int,
    *,
    steward: bool,
    base: str,
) -> tuple[bytes, str | None]:
    """One search page with its suggestions when it found nothing (blocking)."""
    rows, next_cursor = search.search(
        session=session,
        filters=filters,
        include_delisted=steward,
        cursor=cursor,
        limit=size,
        vocabulary=matchers.vocabulary,
    )
    suggested = None
    if not rows and cursor is None:
        suggested = search.suggestions(matchers.verifier.index(session), filters, base_url=base)
    return search.page_body(rows, next_cursor, base_url=base, suggested=suggested), next_cursor


def _search_as_caller(
    request: Request, filters: search.Filters, cursor: str | None, size: int
) -> tuple[bytes, str | None, bool]:
    """A page for a request with ``Authorization``: ``(body, next_cursor, steward)`` (blocking)."""
    state = request.app.state
    matchers = _matchers(request)
    with transaction(state.engine, readonly=True) as session:
        principal = optional_principal(
            request, session, state.settings, state.keys, request.headers.get("authorization")
        )
        steward = service.is_steward(principal)
        body, next_cursor = _page(
            session, matchers, filters, cursor, size, steward=steward, base=state.settings.public_base_url
        )
    return body, next_cursor, steward


#: Anonymous search pages (``service/web/cache.py``): any school event may change a page.
#: Erasing contact details writes no event yet changes the public ``updated_at``: pages are
#: rebuilt after a minute, the ``max-age`` clients may keep them for anyway.
SEARCH = cache.Resource(route="/v1/schools", domains=("school",), max_age_s=60.0, anonymous_only=True)


@dataclass(frozen=True)
class Page:
    """A stored page's ``next_cursor`` (``Entry.meta``)."""

    next_cursor: str | None


def _search_page(
    engine: Engine, matchers: Matchers, filters: search.Filters, cursor: str | None, size: int, base: str
) -> cache.Built:
    """An anonymous page (blocking): the body, once per normalised query."""
    with transaction(engine, readonly=True) as session:
        body, next_cursor = _page(session, matchers, filters, cursor, size, steward=False, base=base)
    return cache.Built(
        body=body,
        media_type=JSON,
        headers={"ETag": make_etag(body), "Cache-Control": CACHE_SHORT, "Vary": "Accept, Accept-Encoding"},
        meta=Page(next_cursor),
    )


def _page_as_asked(page: cache.Entry, base: str, link_params: Any) -> cache.Built:
    """``page`` with the ``Link`` of the query as the client spelled it (the same bytes)."""
    headers = dict(page.headers)
    if page.meta.next_cursor:
        headers["Link"] = next_link(base, SEARCH.route, [*link_params, ("cursor", page.meta.next_cursor)])
    return cache.Built(body=page.body, media_type=JSON, headers=headers, meta=page.meta, stamp=page.stamp)


@router.get(
    "/schools",
    response_model=SchoolList,
    summary="Search the registry",
    dependencies=[Depends(oauth2_scheme)],
)
async def list_schools(
    request: Request,
    q: Annotated[
        str | None,
        Query(description="Words, each a prefix of a word of the name or city; typos are forgiven after"),
    ] = None,
    country: Annotated[str | None, Query(description="ISO 3166-1 alpha-2")] = None,
    programme: Annotated[str | None, Query(description="e.g. MBSR")] = None,
    language: Annotated[str | None, Query(description="BCP 47; `de` also finds `de-CH`")] = None,
    status: Annotated[str | None, Query(description="Alignment status")] = None,
    limit: Annotated[int | None, Query(ge=1, le=200, description="1–200, default 50")] = None,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> Response:
    """Schools in name order, filtered; delisted schools only for stewards.

    ``q`` matches when every word of the query is a prefix of some word of
    the school's name, alternate names or city, after folding case, accents,
    width, compatibility forms and the Turkish i. These come first; then, in name
    order, the schools found only when a typo is forgiven (one edit in words of 4–7
    letters, two from 8: `zurik` finds Zürich). A query that finds nothing answers
    200 with `suggestions`: the closest names. Anonymous pages are served from the
    public-representation cache, which follows every change (``service/web/cache.py``).
    """
    # An `async def` with one thread hop for the database work: every sync dependency
    # (session, settings, principal) would cost a hop of its own.
    filters = search.parse_filters(
        q=q, country=country, programme=programme, language=language, status=status
    )
    size = clamp_limit(limit)
    state = request.app.state
    base = state.settings.public_base_url
    link_params = (
        ("q", q),
        ("country", country),
        ("programme", programme),
        ("language", language),
        ("status", status),
        ("limit", size),
    )
    if "authorization" not in request.headers:
        # One page per normalised query; each spelling of it gets the page with its own Link.
        public = cache.cache_of(state)
        matchers = _matchers(request)
        page = await public.fetch(
            SEARCH,
            ("schools", filters, cursor, size),
            lambda _previous: _search_page(state.engine, matchers, filters, cursor, size, base),
        )
        return await public.serve(
            request,
            SEARCH,
            ("schools", filters, cursor, size, link_params),
            lambda _previous: _page_as_asked(page, base, link_params),
        )
    body, next_cursor, steward = await run_in_threadpool(_search_as_caller, request, filters, cursor, size)
    headers = {"Vary": "Authorization"} if steward else {}
    if next_cursor:
        headers["Link"] = next_link(base, SEARCH.route, [*link_params, ("cursor", next_cursor)])
    return conditional_response(
        request.headers,
        body,
        media_type=JSON,
        cache_control="private, no-cache" if steward else CACHE_SHORT,
        headers=headers,
    )


@router.post("/schools", status_code=201, response_model=SchoolPublic, summary="List a new school (steward)")
def create_school(
    request: Request, body: SchoolCreate, session: SessionDep, settings: SettingsDep, steward: RegistryWrite
) -> Response:
    """Create a school (alignment status ``none``); emits ``school.listed``.
    The response includes the private ``contact`` (it is the steward's own view)."""
    school = service.create_school(
        session=session, data=body, actor=steward, base_url=settings.public_base_url
    )
    location = service.school_url(settings.public_base_url, school.id)
    return _school_response(
        request,
        school,
        base_url=settings.public_base_url,
        private=True,
        status_code=201,
        headers={"Location": location},
    )


@router.get(
    "/schools/{school_id}",
    response_model=SchoolPublic,
    responses=problems(410, s410="The school was delisted"),
    summary="One school",
)
def get_school(
    request: Request, school_id: str, session: SessionDep, settings: SettingsDep, principal: OptionalPrincipal
) -> Response:
    """The public profile (``Cache-Control: public, max-age=60``). A steward, or the
    school's own client, also sees ``contact`` (then ``private, no-store``).
    A delisted school is 410 for everyone else."""
    school = service.visible_school(session=session, school_id=school_id, principal=principal)
    private = service.may_act_for(principal, school_id)
    return _school_response(request, school, base_url=settings.public_base_url, private=private)


@router.patch(
    "/schools/{school_id}",
    response_model=SchoolPublic,
    responses=problems(412, 428),
    summary="Edit a school (merge patch)",
)
def patch_school(
    request: Request,
    school_id: str,
    session: SessionDep,
    settings: SettingsDep,
    actor: SchoolActor,
    patch: Annotated[SchoolUpdate, Body(media_type="application/merge-patch+json")],
    if_match: IfMatch = None,
) -> Response:
    """JSON merge patch (RFC 7396); ``If-Match`` required (428 without, 412 when stale).
    A ``school:self`` client may edit only its own school (403)."""
    school = service.update_school(
        session=session,
        school_id=school_id,
        patch=patch,
        actor=actor,
        if_match=if_match,
        base_url=settings.public_base_url,
    )
    return _school_response(request, school, base_url=settings.public_base_url, private=True)


@router.post(
    "/schools/{school_id}/delist",
    response_model=SchoolPublic,
    responses=problems(409, 412, s409="Already delisted"),
    summary="Delist a school (steward)",
)
def delist_school(
    request: Request,
    school_id: str,
    session: SessionDep,
    settings: SettingsDep,
    steward: RegistryWrite,
    if_match: IfMatch = None,
) -> Response:
    """Remove the school from the public registry; emits ``school.delisted``."""
    school = service.delist_school(
        session=session,
        school_id=school_id,
        actor=steward,
        if_match=if_match,
        base_url=settings.public_base_url,
    )
    return _school_response(request, school, base_url=settings.public_base_url, private=True)


@router.delete(
    "/schools/{school_id}/contact", status_code=204, summary="Erase private contact data (steward)"
)
def erase_contact(school_id: str, session: SessionDep, steward: RegistryWrite) -> Response:
    """Erase the school's private ``contact``; 204."""
    service.erase_contact(session=session, school_id=school_id, actor=steward)
    return Response(status_code=204)


# --- alignment --------------------------------------------------------------------------------


@router.post(
    "/schools/{school_id}/alignment",
    response_model=SchoolPublic,
    responses=problems(409, 412, s409="The school is delisted, or suspended and acting itself"),
    summary="State or renew alignment",
)
def state_alignment(
    request: Request,
    school_id: str,
    body: AlignmentStatement,
    session: SessionDep,
    settings: SettingsDep,
    actor: SchoolActor,
    if_match: IfMatch = None,
) -> Response:
    """The school itself or a steward states alignment with a published version
    (422 otherwise); the status becomes ``aligned``. 409 for a suspended school
    acting itself. Answers the school."""
    school = alignment.state_alignment(
        session=session,
        school_id=school_id,
        statement=body,
        actor=actor,
        if_match=if_match,
        base_url=settings.public_base_url,
    )
    return _school_response(request, school, base_url=settings.public_base_url, private=True)


@router.post(
    "/schools/{school_id}/alignment/withdraw",
    response_model=SchoolPublic,
    responses=problems(409, 412),
    summary="Withdraw alignment",
)
def withdraw_alignment(
    request: Request,
    school_id: str,
    session: SessionDep,
    settings: SettingsDep,
    actor: SchoolActor,
    body: AlignmentAction | None = None,
    if_match: IfMatch = None,
) -> Response:
    """The school itself or a steward withdraws the alignment (status ``withdrawn``)."""
    school = alignment.withdraw_alignment(
        session=session,
        school_id=school_id,
        actor=actor,
        reason=body.reason if body else None,
        if_match=if_match,
        base_url=settings.public_base_url,
    )
    return _school_response(request, school, base_url=settings.public_base_url, private=True)


@router.post(
    "/schools/{school_id}/alignment/suspend",
    response_model=SchoolPublic,
    responses=problems(409, 412),
    summary="Suspend alignment (steward)",
)
def suspend_alignment(
    request: Request,
    school_id: str,
    session: SessionDep,
    settings: SettingsDep,
    steward: RegistryWrite,
    body: AlignmentAction | None = None,
    if_match: IfMatch = None,
) -> Response:
    """Suspend the alignment; the school cannot change it itself until a steward acts."""
    school = alignment.suspend_alignment(
        session=session,
        school_id=school_id,
        actor=steward,
        reason=body.reason if body else None,
        if_match=if_match,
        base_url=settings.public_base_url,
    )
    return _school_response(request, school, base_url=settings.public_base_url, private=True)


@router.get(
    "/schools/{school_id}/alignment/history",
    response_model=HistoryList,
    responses=problems(410, s410="The school was delisted"),
    summary="Alignment history",
)
def alignment_history(
    request: Request,
    school_id: str,
    session: SessionDep,
    settings: SettingsDep,
    principal: OptionalPrincipal,
    limit: Annotated[int | None, Query(ge=1, le=200, description="1–200, default 50")] = None,
    cursor: Annotated[str | None, Query()] = None,
) -> Response:
    """Every statement and status change, oldest first. ``actor`` is a role
    (``school``, ``steward``, ``system``), never a client id."""
    service.visible_school(session=session, school_id=school_id, principal=principal)
    size = clamp_limit(limit)
    after = cursor_value(cursor, "after", int)
    rows = alignment.history(session=session, school_id=school_id, after=after, limit=size + 1)
    page = rows[:size]
    next_cursor = encode_cursor({"after": page[-1].id}) if len(rows) > size else None
    return page_response(
        request.headers,
        [alignment.history_dict(r) for r in page],
        next_cursor,
        base_url=settings.public_base_url,
        path=f"/v1/schools/{school_id}/alignment/history",
        params=[("limit", size), ("cursor", next_cursor)],
        cache_control=CACHE_SHORT,
    )


# --- verification ---------------------------------------------------------------------------


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


def _verifier(request: Request) -> Verifier:
    state = request.app.state
    found = getattr(state, "imi_verifier", None)
    if found is None:
        clock = cache.cache_of(state).clock
        found = Verifier(lambda: clock.stamp_now(("school",)))
        state.imi_verifier = found
    return found


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
    index = _verifier(request).index(session)
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
