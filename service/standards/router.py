"""Standards routes (DESIGN §3 "Standards"): thin handlers over ``views.py`` (reads), ``service.py`` (writes).

Full-version, ``/current`` and clause reads are ``async``: a cache hit is
answered from memory without a database session (``service/web/cache.py``); a miss is
built in the thread pool. A bearer token is looked at only when the answer
depends on it (a draft that the public cannot see), so published content is
answered the same with or without one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.responses import Response

from service.core.db import transaction, utcnow
from service.core.errors import NotFound, Unprocessable, UnsupportedMediaType
from service.core.jsonutil import dumps
from service.standards import links, negotiation, render, service, views
from service.standards.models import DRAFT
from service.standards.schemas import (
    ClauseView,
    DiffPublic,
    DocumentList,
    DocumentPublic,
    DraftCreate,
    DraftReplace,
    PublishRequest,
    TranslationPublic,
    TranslationPut,
    VersionList,
    VersionPublic,
)
from service.web import cache, http, languages
from service.web.deps import OptionalPrincipal, SessionDep, StandardsWrite, optional_principal
from service.web.http import UTCInstant
from service.web.openapi import problems, request_body

router = APIRouter(prefix="/v1/standards", tags=["standards"])

LangQuery = Annotated[
    str | None,
    Query(
        description="BCP 47 language tag; wins over `Accept-Language` (RFC 4647 lookup). Without "
        "a translation the source language is served (see `Content-Language`). Malformed: 422."
    ),
]
Slug = Annotated[str, Path(description="document slug, e.g. `training-standards`")]
VersionPath = Annotated[str, Path(description="`major.minor`, e.g. `2.0`")]
IfMatch = Annotated[str | None, Header(alias="If-Match", description="the ETag you last read")]

_REPRESENTATIONS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The representation; `Accept: text/markdown` or `text/html` (an embeddable fragment) "
        "give the other forms. `ETag`, `Last-Modified`, `Content-Language` are sent.",
        "content": {
            "text/markdown": {"schema": {"type": "string"}},
            "text/html": {"schema": {"type": "string"}},
        },
    },
    304: {"description": "Not modified (`If-None-Match` / `If-Modified-Since`)"},
    404: {"description": "Unknown document, version or clause (drafts are 404 for the public)"},
    406: {"description": "None of JSON, Markdown, HTML is acceptable"},
    422: {"description": "Malformed `lang` (with a `hint`: `en_US` → `en-US`)"},
}
_DIFF: dict[int | str, dict[str, Any]] = {
    304: _REPRESENTATIONS[304],
    404: {"description": "Unknown document or version (drafts are 404 for the public)"},
    406: {"description": "Only JSON is offered"},
    422: _REPRESENTATIONS[422],
}
_NO_STORE = "no-store"
_T = TypeVar("_T")


def _base(request: Request) -> str:
    return str(request.app.state.settings.public_base_url)


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


#: The public reads of this router (``service/web/cache.py``): every ``standards.*`` event
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
    base = _base(request)
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
    body = render.render_clause(rep, media) if clause is not None else view.body(media)
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


async def _serve(
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


def _write_response(
    view: views.VersionView, *, status_code: int = 200, location: str | None = None, media: str = http.JSON
) -> Response:
    headers = {"ETag": view.etag(media), "Cache-Control": _NO_STORE, "Content-Language": view.language}
    if location:
        headers["Location"] = location
    return Response(view.body(media), status_code=status_code, media_type=media, headers=headers)


# --- reads -------------------------------------------------------------------------------------


@router.get("", response_model=DocumentList, summary="Standards documents")
def list_documents(
    request: Request,
    session: SessionDep,
    limit: Annotated[int | None, Query(ge=1, le=200)] = None,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> Response:
    """Every document with its current version number (`current_version`)."""
    size = http.clamp_limit(limit)
    after = http.cursor_value(cursor, "after", str)
    rows = views.list_documents(session=session, base_url=_base(request), after=after, limit=size + 1)
    page = rows[:size]
    next_cursor = http.encode_cursor({"after": page[-1]["slug"]}) if len(rows) > size else None
    return http.page_response(
        request.headers,
        page,
        next_cursor,
        base_url=_base(request),
        path="/v1/standards",
        params=[("cursor", next_cursor), ("limit", size)],
    )


@router.get("/{slug}", response_model=DocumentPublic, summary="Document metadata and links")
def get_document(request: Request, session: SessionDep, slug: Slug) -> Response:
    """The document, its current version and released version numbers."""
    return http.json_response(
        request.headers, views.document(session=session, slug=slug, base_url=_base(request))
    )


@router.get(
    "/{slug}/current", response_model=VersionPublic, responses=_REPRESENTATIONS, summary="The current version"
)
async def get_current(request: Request, slug: Slug, lang: LangQuery = None) -> Response:
    """The current version in full (`Cache-Control: public, max-age=60`; `Content-Location` names it)."""
    return await _serve(request, slug, "current", lang)


@router.get("/{slug}/versions", response_model=VersionList, summary="All versions")
def list_versions(
    request: Request,
    session: SessionDep,
    principal: OptionalPrincipal,
    slug: Slug,
    limit: Annotated[int | None, Query(ge=1, le=200)] = None,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> Response:
    """Every version, ascending; drafts only for callers with `standards:write`."""
    editor = principal is not None and principal.has("standards:write")
    size = http.clamp_limit(limit)
    after = http.cursor_value(cursor, "after", str)
    rows = views.list_versions(
        session=session, slug=slug, editor=editor, base_url=_base(request), after=after, limit=size + 1
    )
    page = rows[:size]
    next_cursor = http.encode_cursor({"after": page[-1]["version"]}) if len(rows) > size else None
    return http.page_response(
        request.headers,
        page,
        next_cursor,
        base_url=_base(request),
        path=f"/v1/standards/{slug}/versions",
        params=[("cursor", next_cursor), ("limit", size)],
        cache_control=http.CACHE_PRIVATE if editor else http.CACHE_SHORT,
        headers={"Vary": "Accept, Accept-Encoding, Authorization"},
    )


@router.get(
    "/{slug}/versions/{version}",
    response_model=VersionPublic,
    responses=_REPRESENTATIONS,
    summary="One version",
)
async def get_version(request: Request, slug: Slug, version: VersionPath, lang: LangQuery = None) -> Response:
    """One version in full (`public, max-age=3600`); drafts: editors only (`private, no-cache`)."""
    return await _serve(request, slug, version, lang)


@router.get(
    "/{slug}/in-force",
    response_model=VersionPublic,
    responses={
        **_REPRESENTATIONS,
        404: {"description": "Unknown document, or an instant before its first version"},
    },
    summary="The version in force at an instant",
)
async def get_in_force(
    request: Request,
    slug: Slug,
    at: Annotated[
        UTCInstant | None,
        Query(description="RFC 3339 date-time with an offset; default now"),
    ] = None,
    lang: LangQuery = None,
) -> Response:
    """The version that was in force at `at`: the published version with the latest
    `effective_from` not after `at` that had not been withdrawn by then (a later
    withdrawal does not change the past). The same representations, `?lang=` and
    conditional requests as a version read; `Content-Location` names the version;
    `public, max-age=60`. 404 before the document's first version took effect."""
    found = await cache.cache_of(request.app.state).fetch(
        IN_FORCE_VERSION,
        ("standards-in-force", slug, at.isoformat() if at is not None else "now"),
        partial(_in_force_version, request, slug, at),
    )
    return await _serve(request, slug, found.meta, lang, in_force=True)


@router.get(
    "/{slug}/versions/{version}/clauses/{key}",
    response_model=ClauseView,
    responses=_REPRESENTATIONS,
    summary="One clause",
)
async def get_clause(
    request: Request,
    slug: Slug,
    version: VersionPath,
    key: Annotated[str, Path(description="stable clause key, e.g. `A1.2`")],
    lang: LangQuery = None,
) -> Response:
    """One clause with its section and regional notes."""
    return await _serve(request, slug, version, lang, clause=key)


@router.get("/{slug}/diff", response_model=DiffPublic, responses=_DIFF, summary="Clause-level diff")
async def get_diff(
    request: Request,
    slug: Slug,
    from_: Annotated[str, Query(alias="from", description="a version, e.g. `1.0`")],
    to: Annotated[str, Query(description="a version, e.g. `2.0`")],
    lang: LangQuery = None,
) -> Response:
    """Added, removed, modified and moved clauses from `from` to `to` (either direction).

    Clause texts are in `?lang=` or the language `Accept-Language` negotiates, when both
    versions are translated into it (else the source language; `Content-Language` says).
    Drafts are 404 without `standards:write` (unless under review: then `public, max-age=60`);
    diffs of non-draft versions never change (`public, max-age=3600`) and are served from memory.
    Items carry the `to` version's `change_note` and the `accepted_comments` of its review.
    """
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


# --- writes (scope standards:write) ---------------------------------------------------------------


@router.post(
    "/{slug}/versions",
    status_code=201,
    response_model=VersionPublic,
    responses=problems(409, s409="The version or the document exists already"),
    summary="New draft",
)
def create_draft(
    request: Request, session: SessionDep, editor: StandardsWrite, slug: Slug, body: DraftCreate
) -> Response:
    """Create draft `version`; `based_on` copies that version's content. `document` creates the document."""
    view = service.create_draft(
        session=session,
        slug=slug,
        version=body.version,
        based_on=body.based_on,
        new_document=body.document,
        actor=editor,
        base_url=_base(request),
    )
    location = links.version_url(_base(request), slug, view.version)
    return _write_response(view, status_code=201, location=location)


async def draft_body(request: Request) -> DraftReplace | str:
    """A replace body: the draft's JSON representation, edited (``DraftReplace``, validated like a
    FastAPI body), or its Markdown form (``text/markdown``, UTF-8) as text; 415 for other media types."""
    media, _, params = (request.headers.get("content-type") or http.JSON).partition(";")
    media = media.strip().lower()
    raw = await request.body()
    if media == http.MARKDOWN:
        charset = (
            params.strip().lower().removeprefix("charset=").strip('"') if "charset" in params.lower() else ""
        )
        if charset not in ("", "utf-8", "utf8"):
            raise UnsupportedMediaType("The Markdown form is read as UTF-8 (`charset=utf-8`).")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Unprocessable(f"The Markdown body is not UTF-8 text (byte {exc.start}).") from None
    if media != http.JSON and not media.endswith("+json"):
        raise UnsupportedMediaType(
            "A draft is replaced with its JSON representation (application/json) or its Markdown form "
            "(text/markdown).",
            extra={"accepted": [http.JSON, http.MARKDOWN]},
        )
    try:
        return DraftReplace.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None


@router.put(
    "/{slug}/versions/{version}",
    response_model=VersionPublic,
    responses={
        200: {
            "description": "The draft as replaced; `Accept: text/markdown` answers its Markdown form",
            "content": {"text/markdown": {"schema": {"type": "string"}}},
        },
        **problems(
            409,
            412,
            415,
            422,
            428,
            s409="Not a draft: published content never changes",
            s412="`If-Match` matches neither the JSON nor the Markdown representation's ETag",
            s422="The body did not validate; for Markdown, `line` names the first line that does not fit",
        ),
    },
    summary="Replace a draft",
    openapi_extra=request_body(DraftReplace, {http.MARKDOWN: {"type": "string"}}),
)
def replace_draft(
    request: Request,
    session: SessionDep,
    editor: StandardsWrite,
    slug: Slug,
    version: VersionPath,
    body: Annotated[DraftReplace | str, Depends(draft_body)],
    if_match: IfMatch = None,
) -> Response:
    """Replace a draft with its edited representation: JSON, or its Markdown form
    (`Content-Type: text/markdown`, see the README). `If-Match` with the ETag of either
    representation is required (428/412); a published version is 409."""
    media = http.negotiate(request.headers.get("accept"), [http.JSON, http.MARKDOWN])
    if isinstance(body, str):
        view = service.replace_draft_markdown(
            session=session,
            slug=slug,
            version=version,
            text=body,
            if_match=if_match,
            actor=editor,
            base_url=_base(request),
        )
    else:
        view = service.replace_draft(
            session=session,
            slug=slug,
            version=version,
            body=body,
            if_match=if_match,
            actor=editor,
            base_url=_base(request),
        )
    return _write_response(view, media=media)


@router.post(
    "/{slug}/versions/{version}/publish",
    response_model=VersionPublic,
    responses=problems(409, 412, s409="Not a draft (any more), empty, or a higher version is published"),
    summary="Publish a draft",
)
def publish_version(
    request: Request,
    session: SessionDep,
    editor: StandardsWrite,
    slug: Slug,
    version: VersionPath,
    body: PublishRequest | None = None,
    if_match: IfMatch = None,
) -> Response:
    """Publish a draft; the previous current version is superseded. Emits `standards.version.published`."""
    view = service.publish(
        session=session,
        slug=slug,
        version=version,
        actor=editor,
        effective_from=body.effective_from if body else None,
        summary=body.summary if body else None,
        if_match=if_match,
        base_url=_base(request),
    )
    return _write_response(view)


@router.post(
    "/{slug}/versions/{version}/withdraw",
    response_model=VersionPublic,
    responses=problems(409, 412, s409="Not a published version"),
    summary="Withdraw a version",
)
def withdraw_version(
    request: Request,
    session: SessionDep,
    editor: StandardsWrite,
    slug: Slug,
    version: VersionPath,
    if_match: IfMatch = None,
) -> Response:
    """Withdraw a published version; the previous one becomes current again.

    Emits `standards.version.withdrawn`."""
    view = service.withdraw(
        session=session, slug=slug, version=version, actor=editor, if_match=if_match, base_url=_base(request)
    )
    return _write_response(view)


@router.put(
    "/{slug}/versions/{version}/translations/{lang}",
    response_model=TranslationPublic,
    responses={
        201: {"description": "Created (on a published version: published at once)"},
        **problems(409, s409="The version is withdrawn, or this translation is published already"),
    },
    summary="Put a translation",
)
def put_translation(
    request: Request,
    session: SessionDep,
    editor: StandardsWrite,
    slug: Slug,
    version: VersionPath,
    lang: Annotated[str, Path(description="BCP 47 tag, e.g. `de`, `pt-BR`")],
    body: TranslationPut,
) -> Response:
    """A draft's translation is editable; on a published version it is published at once.

    A published translation never changes (a second `PUT` is 409)."""
    rep, created = service.put_translation(
        session=session,
        slug=slug,
        version=version,
        language=lang,
        body=body,
        actor=editor,
        base_url=_base(request),
    )
    headers = {"Cache-Control": _NO_STORE, "Content-Language": rep["language"]}
    if created:
        headers["Location"] = rep["links"]["version"]
    return Response(dumps(rep), status_code=201 if created else 200, media_type=http.JSON, headers=headers)
