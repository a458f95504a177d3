"""Atom feeds (RFC 4287) for sites that cannot receive a push: ``GET /v1/feeds/standards.atom``
and ``GET /v1/feeds/schools.atom``.

Each is a paged feed (RFC 5005 §3): newest first, 50 entries a page, ``rel="next"``
to the older page (``?before=<sequence>``), ``rel="first"`` back to the newest. The
entries are the events (``service/feeds/entries.py``), filtered in SQL by the same
filters as webhooks and ``GET /v1/events`` (``country``, ``document``, ``language``,
repeatable; ``status`` on the schools feed): unknown codes are 422, a filter that
matches nothing is an empty feed.

Public reads: served from the public-representation cache (``service/web/cache.py``)
under the canonical form of their query and the negotiated language, with a strong
ETag, 304s and ``Cache-Control: public, max-age=60``; the standards feed depends on
the ``standards`` domain, the schools feed on ``school``.

Languages: the words of ours in a feed (its title, entry titles, the HTML summaries,
dates) come from the message catalogue, so a feed is offered in English and every
catalogue's language (:func:`service.core.messages.languages`). ``?lang=`` chooses (a
feed reader rarely lets its user set ``Accept-Language``; the URL also makes a link that
does not vary) and is carried in the paging links; without it ``Accept-Language`` is
negotiated (RFC 4647 lookup, English when nothing fits) and the answer says ``Vary:
Accept-Language``. The feed's ``xml:lang`` and ``Content-Language`` name the language.
The feed's ``id`` and the entries' ids do not depend on it: a feed in German is the same
feed, its entries the same entries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session, col
from starlette.responses import Response

from service.core import messages
from service.core.db import transaction
from service.events import service as events
from service.events.models import Event
from service.events.router import FILTER_HELP
from service.feeds import atom, entries
from service.standards.models import StandardsDocument, StandardsVersion
from service.web import cache, languages
from service.web.http import CACHE_SHORT, MAX_BIGINT, make_etag
from service.webhooks import filters

router = APIRouter(prefix="/v1/feeds", tags=["sync"])

PAGE_SIZE = 50
MEDIA_TYPE = atom.MEDIA_TYPE + "; charset=utf-8"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

STANDARDS = cache.Resource(route="/v1/feeds/standards.atom", domains=("standards",), max_age_s=60.0)
SCHOOLS = cache.Resource(route="/v1/feeds/schools.atom", domains=("school",), max_age_s=60.0)

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "An Atom feed document (RFC 4287), newest entries first; "
        '`<link rel="next">` leads to older entries (RFC 5005).',
        "content": {atom.MEDIA_TYPE: {"schema": {"type": "string"}}},
    },
    304: {"description": "Not modified (`If-None-Match` / `If-Modified-Since`)"},
    422: {"description": "An unknown country, document, language or status, or a malformed `lang`"},
}

#: The feeds' titles and subtitles (msgids).
TITLES = {
    "standards": (
        messages.N_("IMI Training Standards: versions, translations, reviews"),
        messages.N_(
            "Every published version, withdrawal, published translation and review of the standards."
        ),
    ),
    "schools": (
        messages.N_("IMI registry: listings and alignment statements"),
        messages.N_(
            "Schools listed, delisted or moved to another country, and changes of the alignment they state."
        ),
    ),
}

Values = Annotated[list[str] | None, Query()]
Before = Annotated[
    int | None, Query(ge=1, le=MAX_BIGINT, description="older entries: those with a smaller sequence")
]
LangQuery = Annotated[
    str | None,
    Query(
        description="BCP 47: the language of the feed's words (en, de, es, fr, nl; RFC 4647 lookup, "
        "else English); wins over `Accept-Language` and is kept in the paging links. Malformed: 422."
    ),
]


def _filters(**given: Sequence[str] | None) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The filter as a canonical, hashable key (codes normalised, sorted, de-duplicated)."""
    out: list[tuple[str, tuple[str, ...]]] = []
    for name in events.ATTRIBUTES:
        values = [v for v in given.get(name) or [] if v is not None]
        if values:
            out.append((name, tuple(sorted(set(filters.read_values(name, values))))))
    return tuple(out)


def _query(
    filter_key: tuple[tuple[str, tuple[str, ...]], ...], before: int | None, lang: str | None = None
) -> str:
    pairs: list[tuple[str, Any]] = [(name, v) for name, values in filter_key for v in values]
    if lang is not None:
        pairs.append(("lang", lang))
    if before is not None:
        pairs.append(("before", before))
    return ("?" + urlencode(pairs)) if pairs else ""


def _versions(session: Session, rows: Sequence[Event]) -> entries.Versions:
    """Titles and summaries of the versions the standards entries of a page name."""
    wanted = {(str(e.data.get("document")), str(e.data.get("version"))) for e in rows if e.data}
    if not wanted:
        return {}
    found = session.execute(
        sa.select(
            col(StandardsDocument.slug),
            col(StandardsVersion.version),
            col(StandardsVersion.title),
            col(StandardsVersion.summary),
        )
        .join(StandardsDocument, col(StandardsDocument.id) == col(StandardsVersion.document_id))
        .where(col(StandardsDocument.slug).in_(sorted({d for d, _ in wanted})))
    ).all()
    return {(slug, v): (title, summary) for slug, v, title, summary in found if (slug, v) in wanted}


def build_page(
    *,
    engine: Engine,
    base_url: str,
    kind: str,
    filter_key: tuple[tuple[str, tuple[str, ...]], ...],
    before: int | None,
    choice: languages.Choice,
) -> cache.Built:
    """One page of the ``kind`` feed (``standards`` or ``schools``) in ``choice.language``
    (a language of :func:`service.core.messages.languages`), blocking."""
    path = f"/v1/feeds/{kind}.atom"
    wanted = entries.STANDARDS_TYPES if kind == "standards" else entries.SCHOOL_TYPES
    types = [t for t in wanted if t in events.EVENT_TYPES]
    selected = {name: list(values) for name, values in filter_key}
    with transaction(engine, readonly=True) as session:
        filters.check_documents(session, selected.get("document", []))
        moves = entries.SCHOOL_MOVES if kind == "schools" else ()
        rows = events.newest_events(
            session, before=before, types=types, limit=PAGE_SIZE + 1, filters=selected, moves=moves
        )
        page = rows[:PAGE_SIZE]
        versions = _versions(session, page) if kind == "standards" else {}
        newest = (
            page[0].timestamp
            if page
            else session.execute(
                sa.select(sa.func.max(Event.timestamp)).where(events.of_types(types, moves))
            ).scalar()
        )
    updated = newest or EPOCH
    words = messages.words(choice.language)
    if kind == "standards":
        items = [entries.standards_entry(e, base_url=base_url, versions=versions, words=words) for e in page]
    else:
        items = [entries.school_entry(e, base_url=base_url, words=words) for e in page]
    title, subtitle = (words.gettext(text) for text in TITLES[kind])
    # The paging links keep an explicit ?lang=; a negotiated language is negotiated again.
    lang = choice.language if choice.explicit else None
    links = [
        atom.Link("self", base_url + path + _query(filter_key, before, lang), atom.MEDIA_TYPE),
        atom.Link("first", base_url + path + _query(filter_key, None, lang), atom.MEDIA_TYPE),
        atom.Link(
            "alternate",
            f"{base_url}/v1/events?" + urlencode([("type", t) for t in types] + list(_pairs(filter_key))),
            "application/json",
        ),
    ]
    if len(rows) > PAGE_SIZE:
        links.append(
            atom.Link("next", base_url + path + _query(filter_key, page[-1].sequence, lang), atom.MEDIA_TYPE)
        )
    body = atom.render(
        atom.Feed(
            id=base_url + path + _query(filter_key, None),
            title=title,
            subtitle=subtitle,
            updated=updated,
            author="IMI Network",
            author_uri=base_url,
            links=links,
            entries=items,
            lang=words.language,
        )
    )
    return cache.Built(
        body=body,
        media_type=MEDIA_TYPE,
        headers={
            "ETag": make_etag(body),
            "Cache-Control": CACHE_SHORT,
            "Content-Language": words.language,
            "Vary": choice.vary_with("Accept-Encoding"),
        },
        # Two newest entries in one second: a reader may hold the page with only the older
        # one under the same HTTP date, so the date cannot validate it (RFC 9110 §8.8.2.2).
        last_modified=None if _same_second(page) else updated.replace(microsecond=0),
    )


def _same_second(page: list[Any]) -> bool:
    return len(page) > 1 and page[0].timestamp.replace(microsecond=0) == page[1].timestamp.replace(
        microsecond=0
    )


def _pairs(filter_key: tuple[tuple[str, tuple[str, ...]], ...]) -> list[tuple[str, str]]:
    # The JSON change feed takes the webhook filters, not ``status``.
    return [(name, v) for name, values in filter_key if name != "status" for v in values]


async def _serve(
    request: Request,
    kind: str,
    resource: cache.Resource,
    filter_key: Any,
    before: int | None,
    lang: str | None,
) -> Response:
    """One page from the cache, keyed on the canonical query and the negotiated language (never
    the raw ``Accept-Language``)."""
    state = request.app.state
    base = state.settings.public_base_url
    choice = languages.choose_ours(lang, request.headers.get("accept-language"))
    return await cache.cache_of(state).serve(
        request,
        resource,
        ("feed", kind, filter_key, before, choice.language, choice.explicit),
        lambda _previous: build_page(
            engine=state.engine, base_url=base, kind=kind, filter_key=filter_key, before=before, choice=choice
        ),
    )


@router.get(
    "/standards.atom",
    response_class=Response,
    responses=_RESPONSES,
    summary="Atom feed of the standards: versions, withdrawals, translations, reviews",
)
async def standards_feed(
    request: Request,
    document: Annotated[list[str] | None, Query(description=FILTER_HELP["document"])] = None,
    language: Annotated[list[str] | None, Query(description=FILTER_HELP["language"])] = None,
    country: Annotated[list[str] | None, Query(description=FILTER_HELP["country"])] = None,
    before: Before = None,
    lang: LangQuery = None,
) -> Response:
    """One entry per published version, withdrawal, published translation and opened or
    closed review, newest first, 50 a page (``rel="next"`` for older ones). Each entry has a
    stable ``tag:`` id, the summary and the clause-level change summary as HTML, and links to
    the version (HTML for a browser) and the diff. Our words are in ``lang`` or else the
    language `Accept-Language` negotiates (`Content-Language`, `xml:lang`)."""
    key = _filters(document=document, language=language, country=country)
    return await _serve(request, "standards", STANDARDS, key, before, lang)


@router.get(
    "/schools.atom",
    response_class=Response,
    responses=_RESPONSES,
    summary="Atom feed of the registry: listings, delistings, moves, alignment changes",
)
async def schools_feed(
    request: Request,
    country: Annotated[list[str] | None, Query(description=FILTER_HELP["country"])] = None,
    status: Annotated[list[str] | None, Query(description=FILTER_HELP["status"])] = None,
    document: Annotated[list[str] | None, Query(description=FILTER_HELP["document"])] = None,
    language: Annotated[list[str] | None, Query(description=FILTER_HELP["language"])] = None,
    before: Before = None,
    lang: LangQuery = None,
) -> Response:
    """Schools listed and delisted, moved to another country, and every change of the alignment
    they state, newest first, 50 a page; ``country`` and ``status`` (each repeatable) narrow
    it, matching the value before or after the change (a school leaving ``DE`` or no longer
    ``aligned`` stays in that feed). Each entry links to the
    school's verification page. Our words are in ``lang`` or else the language
    `Accept-Language` negotiates (`Content-Language`, `xml:lang`)."""
    key = _filters(country=country, status=status, document=document, language=language)
    return await _serve(request, "schools", SCHOOLS, key, before, lang)
