"""Which language a public standards read serves: one step before its cache key is made.

Version, ``/current``, clause, in-force and diff reads (``router.py``) and the review
report (``review_router.py``) negotiate alike: ``?lang=`` wins (normalised, a 422 when
malformed); without it ``Accept-Language`` is looked up (RFC 4647, ``service/web/languages.py``)
among the languages a public version has — its source language and published translations,
read once and kept in the public-representation cache beside its representations
(:data:`LANGUAGES`) — and the source language is served when nothing fits. The key holds
what was negotiated, never the raw header, so a thousand spellings of German are one entry.
"""

from __future__ import annotations

from functools import partial

from starlette.requests import Request

from service.core.db import transaction
from service.core.errors import NotFound
from service.standards import views
from service.standards.schemas import normalise_language
from service.web import cache, http, languages

#: The languages a public version is served in, kept beside its representations (never
#: served itself): ``Accept-Language`` is negotiated among them before the key is made.
LANGUAGES = cache.Resource(route="/v1/standards/{slug}/versions/{version}", domains=("standards",))


def _languages_of(request: Request, slug: str, version: str, _previous: object) -> cache.Built:
    """The source language and translations of a public version (blocking; ``NotFound`` for
    drafts and unknown versions: those are negotiated in their own build, never stored)."""
    with transaction(request.app.state.engine, readonly=True) as session:
        source, available = views.languages(session=session, slug=slug, version=version)
    return cache.Built(body=b"", media_type=http.JSON, headers={"ETag": '""'}, meta=(source, available))


async def negotiated(request: Request, slug: str, versions: tuple[str, ...], lang: str | None) -> str:
    """The language part of the key: the normalised ``?lang=`` (422 when malformed), else the
    language ``Accept-Language`` negotiates among the languages every one of ``versions`` has
    (``""`` for the source language, or when the versions are not public: then the build
    negotiates for whoever may read them)."""
    if lang is not None:
        return normalise_language(lang)
    header = request.headers.get("accept-language")
    if not languages.ranges(header):
        return ""
    public = cache.cache_of(request.app.state)
    found: list[tuple[str, list[str]]] = []
    for version in versions:
        try:
            build = partial(_languages_of, request, slug, version)
            entry = await public.fetch(LANGUAGES, ("standards-languages", slug, version), build)
        except NotFound:
            return ""
        found.append(entry.meta)
    source = found[0][0]
    common = [tag for tag in found[0][1] if all(tag in other for _, other in found[1:])]
    served = languages.negotiate(header, common, source)
    return "" if served == source else served
