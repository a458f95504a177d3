"""The cached public representations of standards: their keys, the language they are served
in, and the builds that render them (``service/web/cache.py`` keeps the bytes).

A full-version, ``/current``, clause, in-force or diff read is answered from memory
without a database session when a valid entry exists; a miss is built in the thread
pool. A bearer token is looked at only when the answer depends on it (a draft that
the public cannot see), so published content is answered the same with or without one.
The router (``router.py``) calls :func:`serve`, :func:`serve_in_force` and :func:`serve_diff`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from fastapi import Request
from starlette.responses import Response

from service.core.db import transaction, utcnow
from service.core.errors import NotFound
from service.core.jsonutil import dumps
from service.standards import links, negotiation, render, views
from service.standards.models import DRAFT
from service.web import cache, http, languages
from service.web.deps import optional_principal

_T = TypeVar("_T")


def _is_editor(request: Request, session: Any) -> bool:
    """Whether the request carries a valid token with ``standards:write`` (401 for a bad token)."""
    header = request.headers.get("authorization")
    if not header:
        return False
    # Same path as the OptionalPrincipal dependency (it takes the raw header value).
    principal = optional_principal(
        request, session, request.app.state.settings, request.app.state.keys, header
    )
    return principal is not None and principal.has("standards:write")


def _as_reader(request: Request, session: Any, load: Callable[[bool], _T]) -> _T:
    """``load(False)``, as the public sees it; when that is a 404, ``load(True)`` for an editor.

    The token is looked at only then, so published content is answered the
    same with or without one (a bad token on such a read is a 401).
    """
    try:
        return load(False)
    except NotFound:
        if not _is_editor(request, session):
            raise
        return load(True)


#: The public reads of the standards router (``service/web/cache.py``): every ``standards.*`` event
#: may change them (a publish supersedes, a withdrawal changes ``current``, a translation
#: adds a language).
CURRENT = cache.Resource(route="/v1/standards/{slug}/current", domains=("standards",))
VERSION = cache.Resource(route="/v1/standards/{slug}/versions/{version}", domains=("standards",))
CLAUSE = cache.Resource(route="/v1/standards/{slug}/versions/{version}/clauses/{key}", domains=("standards",))
DIFF = cache.Resource(route="/v1/standards/{slug}/diff", domains=("standards",))
IN_FORCE = cache.Resource(route="/v1/standards/{slug}/in-force", domains=("standards",))
#: Which version was in force at an instant, kept beside the representations (never served
#: itself), until the next version takes effect.
IN_FORCE_VERSION = cache.Resource(route="/v1/standards/{slug}/in-force", domains=("standards",))


@dataclass(frozen=True)
class Rendered:
    """What a stored standards representation shows (``Entry.meta``)."""

    version: str
    status: str
    content_language: str


def representation_key(
    slug: str, version: str, lang: str, media: str, *, negotiated: bool = False, in_force: bool = False
) -> tuple[str, ...]:
    """The cache key of a full-version, ``/current``, clause or in-force read (``version`` may
    be ``"current"`` or ``"2.0/clauses/B3.1"``).

    ``lang`` is the normalised ``?lang=`` tag, or for a read without ``?lang=`` the language
    negotiated from ``Accept-Language`` (``negotiated``), ``""`` when that is the source
    language: every spelling of the header that comes to one language is one entry. Reads
    with and without ``?lang=`` are stored apart: only the latter carry ``Vary: Accept-Language``.
    An in-force read of a version is stored apart from its version read (other headers).
    """
    key: tuple[str, ...] = ("standards", slug, version, lang, media)
    if negotiated and lang:
        key = (*key, "negotiated")
    return (*key, "in-force") if in_force else key


def _headers(view_language: str, explicit: bool, cache_control: str, etag: str) -> dict[str, str]:
    """ETag, Cache-Control, Content-Language and Vary of a standards read."""
    vary = ", ".join(v for v in ("Accept", "Accept-Encoding", languages.vary(explicit)) if v)
    headers = {"ETag": etag, "Cache-Control": cache_control, "Vary": vary}
    if view_language:
        headers["Content-Language"] = view_language
    return headers


def _build(
    request: Request,
    slug: str,
    version: str,
    lang: str | None,
    media: str,
    clause: str | None,
    explicit: bool = True,
    in_force: bool = False,
) -> cache.Built:
    """Render one representation from the database (blocking).

    ``lang`` is the language to serve (``None``: negotiate ``Accept-Language`` here, for a
    draft that only an editor may read, or serve the source language); ``in_force``: the
    read of the version in force at an instant (``version``), named by ``Content-Location``.
    """
    base = str(request.app.state.settings.public_base_url)
    header = None if explicit else request.headers.get("accept-language")
    with transaction(request.app.state.engine, readonly=True) as session:

        def load(editor: bool) -> views.VersionView:
            tag = lang
            if tag is None and languages.ranges(header):
                source, available = views.languages(
                    session=session, slug=slug, version=version, editor=editor
                )
                tag = languages.negotiate(header, available, source)
            if clause is not None:
                return views.clause_view(
                    session=session,
                    slug=slug,
                    version=version,
                    key=clause,
                    lang=tag,
                    editor=editor,
                    base_url=base,
                )
            return views.version_view(
                session=session, slug=slug, version=version, lang=tag, editor=editor, base_url=base
            )

        view = _as_reader(request, session, load)
    rep = view.representation
    body = (
        render.render_clause(rep, media, source_language=view.source_language)
        if clause is not None
        else view.body(media)
    )
    moving = version == "current" or in_force or view.status == DRAFT
    # A representation that changes by the clock alone (a version takes effect, a review
    # runs out) is kept, here and by clients, no longer than until then.
    changes_at = view.changes_at if clause is None else None
    if not view.cacheable:
        cache_control = http.CACHE_PRIVATE
    else:
        cache_control = _public_until(60 if moving else 3600, changes_at)
    etag = render.representation_etag(media, view.language, view.status, body)
    headers = _headers(view.language, explicit, cache_control, etag)
    if version == "current" or in_force:
        headers["Content-Location"] = links.version_url(None, slug, view.version) + (
            f"/clauses/{clause}" if clause else ""
        )
    served = view.language if explicit and lang not in (None, view.language) else None
    path_version = version if clause is None else f"{version}/clauses/{clause}"
    return cache.Built(
        body=body,
        media_type=media,
        headers=headers,
        last_modified=view.last_modified,
        storable=view.cacheable,
        expires_at=changes_at.timestamp() if changes_at is not None else None,
        meta=Rendered(version=view.version, status=view.status, content_language=view.language),
        # A fallback (?lang=fr -> en) is stored once, under the served language.
        key=representation_key(slug, path_version, served, media, in_force=in_force) if served else None,
    )


def _public_until(max_age_s: int, changes_at: dt.datetime | None) -> str:
    """``public, max-age=…``, shortened to the seconds left until ``changes_at``."""
    if changes_at is not None:
        max_age_s = max(0, min(max_age_s, int((changes_at - utcnow()).total_seconds())))
    return f"public, max-age={max_age_s}"


async def serve(
    request: Request,
    slug: str,
    version: str,
    lang: str | None,
    clause: str | None = None,
    *,
    in_force: bool = False,
) -> Response:
    """Negotiate media type and language, then answer from the public-representation cache
    (building on a miss)."""
    media = http.negotiate(request.headers.get("accept"), render.OFFERED)
    explicit = lang is not None
    tag = await negotiation.negotiated(request, slug, (version,), lang)
    path_version = version if clause is None else f"{version}/clauses/{clause}"
    if in_force:
        resource = IN_FORCE
    else:
        resource = CLAUSE if clause is not None else (CURRENT if version == "current" else VERSION)
    return await cache.cache_of(request.app.state).serve(
        request,
        resource,
        representation_key(slug, path_version, tag, media, negotiated=not explicit, in_force=in_force),
        lambda _previous: _build(request, slug, version, tag or None, media, clause, explicit, in_force),
    )


def _in_force_version(request: Request, slug: str, at: dt.datetime | None, _previous: object) -> cache.Built:
    """Which version was in force at ``at`` (``None``: now), as ``meta`` (blocking; ``NotFound``
    before the first version took effect); kept until the next version takes effect."""
    with transaction(request.app.state.engine, readonly=True) as session:
        found, changes_at = views.version_in_force(session=session, slug=slug, at=at)
    return cache.Built(
        body=b"",
        media_type=http.JSON,
        headers={"ETag": '""'},
        meta=found,
        expires_at=changes_at.timestamp() if changes_at is not None else None,
    )


async def serve_in_force(request: Request, slug: str, at: dt.datetime | None, lang: str | None) -> Response:
    """The version in force at ``at`` (``None``: now), served like a version read with
    ``Content-Location`` naming it; which version that is is kept beside the representations."""
    found = await cache.cache_of(request.app.state).fetch(
        IN_FORCE_VERSION,
        ("standards-in-force", slug, at.isoformat() if at is not None else "now"),
        partial(_in_force_version, request, slug, at),
    )
    return await serve(request, slug, found.meta, lang, in_force=True)


async def serve_diff(request: Request, slug: str, from_: str, to: str, lang: str | None) -> Response:
    """The clause-level diff from ``from_`` to ``to``: JSON only, the language negotiated among
    those both versions are translated into, answered from the cache (building on a miss)."""
    http.negotiate(request.headers.get("accept"), [http.JSON])
    explicit = lang is not None
    tag = await negotiation.negotiated(request, slug, (from_, to), lang)
    key: tuple[str, ...] = ("standards-diff", slug, from_, to)
    if tag or explicit:
        key = (*key, tag, "explicit" if explicit else "negotiated")
    return await cache.cache_of(request.app.state).serve(
        request, DIFF, key, lambda _previous: _build_diff(request, slug, from_, to, tag or None, explicit)
    )


def _build_diff(
    request: Request, slug: str, from_version: str, to_version: str, lang: str | None, explicit: bool
) -> cache.Built:
    header = None if explicit else request.headers.get("accept-language")
    with transaction(request.app.state.engine, readonly=True) as session:

        def load(editor: bool) -> tuple[dict[str, Any], bool, bool, str]:
            return views.diff(
                session=session,
                slug=slug,
                from_version=from_version,
                to_version=to_version,
                editor=editor,
                lang=lang,
                accept_language=header if lang is None else None,
            )

        body, immutable, public, language = _as_reader(request, session, load)
    data = dumps(body)
    if immutable:
        cache_control = http.CACHE_IMMUTABLE_VERSION
    else:  # a draft under review is public but still changes
        cache_control = http.CACHE_SHORT if public else http.CACHE_PRIVATE
    return cache.Built(
        body=data,
        media_type=http.JSON,
        headers=_headers(language, explicit, cache_control, http.make_etag(language, data)),
        storable=immutable or public,
        meta=Rendered(version=f"{body['from']}->{body['to']}", status="", content_language=language),
    )
