"""What a school puts on its own page, and what a visitor who clicks sees: the badge route
(``GET /v1/schools/{id}/badge.svg``, ``badge.py``) and the HTML form of the affiliation read
(the verification page, ``page.py``), both public reads served from the public-representation
cache, both in the language of ``?lang=`` (``wording.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from service.core.errors import NotAcceptable
from service.registry import badge, page, wording
from service.registry.affiliation import RESOURCE as AFFILIATION
from service.registry.codes import read_code
from service.web import cache
from service.web.http import HTML, JSON, negotiate

router = APIRouter(prefix="/v1", tags=["verification"])

#: ``?lang=`` of the badge and the verification page.
LangQuery = Annotated[
    str | None,
    Query(description="BCP 47; falls back to English (see `Content-Language`). Malformed: 422."),
]

#: The affiliation read's HTML form, for its OpenAPI description.
PAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The answer; with `Accept: text/html` a self-contained verification page.",
        "content": {HTML: {"schema": {"type": "string"}}},
    }
}


def language(lang: str | None) -> str:
    """The catalogue language to answer in for ``?lang=`` (422 when malformed)."""
    return wording.choose(read_code("language", lang, parameter="lang") if lang is not None else None)


def wants_html(accept: str | None) -> bool:
    """Whether ``Accept`` prefers the HTML page to JSON (a browser following the badge's link);
    anything the two do not satisfy gets JSON, as before HTML was offered."""
    try:
        return negotiate(accept, (JSON, HTML)) == HTML
    except NotAcceptable:
        return False


async def serve_page(
    request: Request,
    *,
    school_id: str,
    lang: str | None,
    build_answer: Callable[[cache.Entry | None], cache.Built | cache.Entry],
) -> Response:
    """The verification page of ``school_id``, rendered from its cached JSON answer (fetched or
    built with ``build_answer``), so both show the same credential."""
    state = request.app.state
    chosen = language(lang)
    public = cache.cache_of(state)
    answer = await public.fetch(AFFILIATION, ("affiliation", school_id), build_answer)
    return await public.serve(
        request,
        page.RESOURCE,
        ("affiliation-page", school_id, chosen),
        lambda _previous: page.build(engine=state.engine, school_id=school_id, answer=answer, lang=chosen),
    )


@router.get(
    "/schools/{school_id}/badge.svg",
    summary="An embeddable badge (SVG)",
    response_class=Response,
    responses={
        200: {
            "description": "The badge: at most 4 KB of SVG, no script, no external reference.",
            "content": {badge.MEDIA_TYPE: {"schema": {"type": "string"}}},
        },
        304: {"description": "Not modified (`If-None-Match`)"},
        404: {"description": "No such school"},
        422: {"description": "Malformed `lang`"},
    },
)
async def get_badge(school_id: str, request: Request, lang: LangQuery = None) -> Response:
    """What the registry records about the school, as a badge for its own page: "States
    alignment with IMI Training Standards 2.0", "Re-affirmation due" or "No current
    alignment statement", in the language of ``lang`` with fallback to English. Put it in a
    link to ``…/affiliation`` (the verification page for browsers). ``Cache-Control:
    public, max-age=300``; the ETag changes with the status."""
    state = request.app.state
    chosen = language(lang)
    return await cache.cache_of(state).serve(
        request,
        badge.RESOURCE,
        ("badge", school_id, chosen),
        lambda _previous: badge.build(engine=state.engine, school_id=school_id, lang=chosen),
    )
