"""What a school puts on its own page, and what a visitor who clicks sees: the badge route
(``GET /v1/schools/{id}/badge.svg``, ``badge.py``) and the HTML form of the affiliation read
(the verification page, ``page.py``), both public reads served from the public-representation
cache, both in the language of ``?lang=`` or else ``Accept-Language`` (:func:`choose`).

Their words are ours alone (``wording.py``), so they are negotiated among the languages of
the message catalogue (:func:`service.web.languages.choose_ours`: English, German, Spanish,
French, Dutch) by RFC 4647 lookup, English when none fits. The cache key holds the
negotiated language and whether ``?lang=`` chose it, never the raw header: every spelling
of ``Accept-Language`` that comes to German is one entry. ``Content-Language`` names the
language always; ``Vary: Accept-Language`` is sent when the header could choose it (no
``?lang=``), as for the standards reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from service.core.errors import NotAcceptable
from service.registry import badge, page
from service.registry.affiliation import RESOURCE as AFFILIATION
from service.web import cache, languages
from service.web.http import HTML, JSON, negotiate

router = APIRouter(prefix="/v1", tags=["verification"])

#: ``?lang=`` of the badge and the verification page.
LangQuery = Annotated[
    str | None,
    Query(
        description="BCP 47; wins over `Accept-Language` (RFC 4647 lookup among en, de, es, fr, nl); "
        "anything else falls back to English (see `Content-Language`). Malformed: 422."
    ),
]

#: The affiliation read's HTML form, for its OpenAPI description.
PAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The answer; with `Accept: text/html` a self-contained verification page.",
        "content": {HTML: {"schema": {"type": "string"}}},
    }
}


def choose(request: Request, lang: str | None) -> languages.Choice:
    """The language to answer in: ``?lang=`` (422 when malformed) or else ``Accept-Language``,
    among the catalogue's languages; English when none fits."""
    return languages.choose_ours(lang, request.headers.get("accept-language"))


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
    chosen = choose(request, lang)
    public = cache.cache_of(state)
    answer = await public.fetch(AFFILIATION, ("affiliation", school_id), build_answer)
    return await public.serve(
        request,
        page.RESOURCE,
        ("affiliation-page", school_id, chosen.language, chosen.explicit),
        lambda _previous: page.build(
            engine=state.engine,
            school_id=school_id,
            answer=answer,
            lang=chosen.language,
            vary=chosen.vary_with("Accept", "Accept-Encoding"),
        ),
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
        422: {"description": "Malformed `lang` (with a `hint`: `de_CH` → `de-CH`)"},
    },
)
async def get_badge(school_id: str, request: Request, lang: LangQuery = None) -> Response:
    """What the registry records about the school, as a badge for its own page: "States
    alignment with IMI Training Standards 2.0", "Re-affirmation due" or "No current
    alignment statement", in the language of ``lang`` or else `Accept-Language`, with
    fallback to English (`Content-Language` says which; `Vary: Accept-Language` without
    ``lang``). Put it in a link to ``…/affiliation`` (the verification page for browsers).
    ``Cache-Control: public, max-age=300``; the ETag changes with the status."""
    state = request.app.state
    chosen = choose(request, lang)
    return await cache.cache_of(state).serve(
        request,
        badge.RESOURCE,
        ("badge", school_id, chosen.language, chosen.explicit),
        lambda _previous: badge.build(
            engine=state.engine,
            school_id=school_id,
            lang=chosen.language,
            vary=chosen.vary_with("Accept-Encoding"),
        ),
    )
