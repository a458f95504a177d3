"""The registry's search route, ``GET /v1/schools`` (DESIGN §3 "Registry").

Anonymous pages are served from the public-representation cache
(``service/web/cache.py``): one stored page per normalised query, and for each spelling
of it the same bytes with its own ``Link``. A request with ``Authorization`` is answered
for its caller (a steward also finds delisted schools).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from service.core.db import transaction
from service.registry import search, service
from service.registry.matchers import Matchers, matchers_of
from service.registry.schemas import SchoolList
from service.web import cache
from service.web.deps import oauth2_scheme, optional_principal
from service.web.http import CACHE_SHORT, JSON, clamp_limit, conditional_response, make_etag, next_link

router = APIRouter(prefix="/v1", tags=["registry"])


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
    matchers = matchers_of(request)
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
        matchers = matchers_of(request)
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
