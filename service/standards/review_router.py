"""Routes of the open review of drafts: review periods, comments, dispositions, the report.

Thin handlers over ``reviews.py``, ``comments.py`` and ``report.py``. The public
reads (the report, the comment list, one comment) are the same for every caller
and go through the public-representation cache (``service/web/cache.py``); the
writes that change them emit a ``standards.*`` event or count a change of the
``standards`` domain themselves, so a stored answer is never served after them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from service.core.codes import shown
from service.core.db import transaction
from service.core.errors import Unprocessable
from service.core.jsonutil import dumps
from service.standards import comments, negotiation, reviews
from service.standards import report as reports
from service.standards.links import comment_url, comments_url, review_url
from service.standards.models import COMMENT_STATES, DRAFT, StandardsComment
from service.standards.review_schemas import (
    CommentCreate,
    CommentEdit,
    CommentList,
    CommentPublic,
    DispositionIn,
    ReviewOpen,
    ReviewReport,
)
from service.standards.schemas import KEY_PATTERN, normalise_region
from service.web import cache, http, languages
from service.web.deps import ReviewComment, SessionDep, StandardsWrite
from service.web.openapi import problems

router = APIRouter(prefix="/v1/standards", tags=["review"])

Slug = Annotated[str, Path(description="document slug, e.g. `training-standards`")]
VersionPath = Annotated[str, Path(description="`major.minor`, e.g. `2.1`")]
CommentId = Annotated[str, Path(description="`cmt_…`")]
_NO_STORE = "no-store"
_KEY = re.compile(KEY_PATTERN)
#: The position a comment-list cursor holds: a comment id (``new_id("cmt")``, a lower-case ULID).
_COMMENT_ID = re.compile(r"cmt_[0-9a-z]{26}")

#: The public reads of this router: every review, comment and disposition event is in the
#: ``standards`` domain, and edits and withdrawals of comments touch it themselves.
REPORT = cache.Resource(route="/v1/standards/{slug}/versions/{version}/review", domains=("standards",))
COMMENTS = cache.Resource(route="/v1/standards/{slug}/versions/{version}/comments", domains=("standards",))
COMMENT = cache.Resource(
    route="/v1/standards/{slug}/versions/{version}/comments/{comment_id}", domains=("standards",)
)

_REPORT_FORMS: dict[int | str, dict[str, object]] = {
    200: {
        "description": "The report; `Accept: text/markdown` or `text/html` (an embeddable fragment) give "
        "the other forms",
        "content": {
            "text/markdown": {"schema": {"type": "string"}},
            "text/html": {"schema": {"type": "string"}},
        },
    },
    304: {"description": "Not modified (`If-None-Match`)"},
    404: {"description": "The version has no public review"},
    406: {"description": "None of JSON, Markdown, HTML is acceptable"},
    422: {"description": "Malformed `lang` (with a `hint`: `en_US` → `en-US`)"},
}
LangQuery = Annotated[
    str | None,
    Query(
        description="BCP 47 language tag; wins over `Accept-Language` (RFC 4647 lookup among the "
        "version's translations). Without a translation the source language is served (see "
        "`Content-Language`). Malformed: 422."
    ),
]


def _base(request: Request) -> str:
    return str(request.app.state.settings.public_base_url)


def _json(payload: object, *, status_code: int = 200, location: str | None = None) -> Response:
    headers = {"Cache-Control": _NO_STORE}
    if location:
        headers["Location"] = location
    return Response(dumps(payload), status_code=status_code, media_type=http.JSON, headers=headers)


def _comment(request: Request, comment: StandardsComment, slug: str, version: str) -> dict[str, object]:
    return comments.representation(comment, slug=slug, version=version, base_url=_base(request))


# --- the review period and its report ------------------------------------------------------------


@router.post(
    "/{slug}/versions/{version}/review",
    status_code=201,
    response_model=ReviewReport,
    responses=problems(409, s409="Not a draft, or the draft has a review already"),
    summary="Open the public review of a draft (editor)",
)
def open_review(
    request: Request,
    session: SessionDep,
    editor: StandardsWrite,
    slug: Slug,
    version: VersionPath,
    body: ReviewOpen,
) -> Response:
    """The draft becomes public (`GET …/versions/{version}` answers it to everyone) and takes
    comments until `closes_at` (in the future, at most 365 days ahead; else 422). A draft has one
    review period: a second is 409. Emits `standards.review.opened`."""
    reviews.open_review(
        session=session,
        slug=slug,
        version=version,
        closes_at=body.closes_at,
        summary_text=body.summary,
        actor=editor,
        base_url=_base(request),
    )
    rep, _ = reports.build(session=session, slug=slug, version=version, base_url=_base(request))
    return _json(rep, status_code=201, location=review_url(_base(request), slug, version))


@router.post(
    "/{slug}/versions/{version}/review/close",
    response_model=ReviewReport,
    responses=problems(409, s409="The review is closed already"),
    summary="Close a review early (editor)",
)
def close_review(
    request: Request, session: SessionDep, editor: StandardsWrite, slug: Slug, version: VersionPath
) -> Response:
    """No more comments from now on. Emits `standards.review.closed` (`closed_early: true`)."""
    reviews.close_review(session=session, slug=slug, version=version, actor=editor, base_url=_base(request))
    rep, _ = reports.build(session=session, slug=slug, version=version, base_url=_base(request))
    return _json(rep)


@router.get(
    "/{slug}/versions/{version}/review",
    response_model=ReviewReport,
    responses=_REPORT_FORMS,
    summary="The disposition report of a review",
)
async def get_report(request: Request, slug: Slug, version: VersionPath, lang: LangQuery = None) -> Response:
    """Every comment with its outcome and response, grouped: general comments, then each section
    and clause in document order (keys the version no longer has last). JSON, Markdown or an
    embeddable HTML fragment (all commenter text escaped, proposed wording sanitised).
    In `lang` or else the language `Accept-Language` negotiates among the version's
    translations, as a version read (title, section titles and our words; comments as written).
    `public, max-age=60` while the version is a draft, 3600 once published."""
    media = http.negotiate(request.headers.get("accept"), reports.OFFERED)
    state = request.app.state
    explicit = lang is not None
    tag = await negotiation.negotiated(request, slug, (version,), lang)

    def build(_previous: object) -> cache.Built:
        with transaction(state.engine, readonly=True) as session:
            rep, changes_at = reports.build(
                session=session, slug=slug, version=version, base_url=_base(request), lang=tag or None
            )
        body = reports.render(rep, media)
        moving = rep["version_status"] == DRAFT
        return cache.Built(
            body=body,
            media_type=media,
            headers={
                "ETag": http.make_etag(media, body),
                "Cache-Control": http.CACHE_SHORT if moving else http.CACHE_IMMUTABLE_VERSION,
                "Vary": languages.vary_header(explicit, "Accept", "Accept-Encoding"),
                "Content-Language": rep["language"],
            },
            expires_at=changes_at.timestamp() if changes_at is not None else None,
            # A fallback (?lang=fr -> en) is stored once, under the served language.
            key=(*key[:4], rep["language"], True) if explicit and rep["language"] != tag else None,
        )

    # Keyed on the negotiated language, never the header: "" is the source language.
    key = ("review", slug, version, media, tag, explicit)
    return await cache.cache_of(state).serve(request, REPORT, key, build)


# --- comments --------------------------------------------------------------------------------------


@router.post(
    "/{slug}/versions/{version}/comments",
    status_code=201,
    response_model=CommentPublic,
    responses=problems(409, s409="The draft is not under review, or its review is closed"),
    summary="Comment on a draft under review (review:comment)",
)
def create_comment(
    request: Request,
    session: SessionDep,
    commenter: ReviewComment,
    slug: Slug,
    version: VersionPath,
    body: CommentCreate,
) -> Response:
    """A comment on a clause (`clause_key`), a section (`section_key`) or the whole draft (neither),
    published with the client's organisation, region and commenter type. Keys the draft does not
    have are 422. Emits `standards.comment.created`."""
    comment, ver = comments.create_comment(
        session=session, slug=slug, version=version, body=body, principal=commenter, base_url=_base(request)
    )
    rep = _comment(request, comment, slug, ver.version)
    return _json(rep, status_code=201, location=comment_url(_base(request), slug, ver.version, comment.id))


@dataclass(frozen=True)
class _ListQuery:
    filters: comments.Filters
    after: str | None
    limit: int


def _list_query(
    clause: str | None, region: str | None, state: str | None, limit: int | None, cursor: str | None
) -> _ListQuery:
    """The normalised query of a comment list (422 for a malformed key, region, state or cursor)."""
    if clause is not None and not _KEY.fullmatch(clause):
        raise Unprocessable(f"`clause`: {shown(clause)} is not a clause key (e.g. B3.1).")
    code = None
    if region is not None:
        try:
            code = normalise_region(region)
        except ValueError as exc:
            raise Unprocessable(f"`region`: {exc}.") from None
    if state is not None and state not in COMMENT_STATES:
        raise Unprocessable(f"`state` is one of {', '.join(COMMENT_STATES)}.")
    after = http.cursor_value(cursor, "after", str)
    # A cursor holds the id of the last comment of a page; any other text (a tampered cursor)
    # would quietly answer a shifted or empty page, and be stored as one more cached page.
    if after is not None and not _COMMENT_ID.fullmatch(after):
        raise Unprocessable("The cursor is not one this API issued.")
    return _ListQuery(
        filters=comments.Filters(clause=clause, region=code, state=state),
        after=after,
        limit=http.clamp_limit(limit),
    )


@router.get(
    "/{slug}/versions/{version}/comments",
    response_model=CommentList,
    responses={
        304: {"description": "Not modified (`If-None-Match`)"},
        404: {"description": "The version has no public review"},
        422: {"description": "A malformed `clause`, `region`, `state`, `limit` or `cursor`"},
    },
    summary="Comments on a version under review (public)",
)
async def list_comments(
    request: Request,
    slug: Slug,
    version: VersionPath,
    clause: Annotated[str | None, Query(description="only comments on this clause key")] = None,
    region: Annotated[str | None, Query(description="only comments from this region (DE, 150, …)")] = None,
    state: Annotated[str | None, Query(description="pending | disposed | withdrawn")] = None,
    limit: Annotated[int | None, Query(ge=1, le=200, description="1–200, default 50")] = None,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> Response:
    """Oldest first, cursor-paginated (`Link: …; rel="next"`). Each comment names its organisation,
    region and commenter type, the `content_hash` of the draft it was written against, and its
    disposition. `public, max-age=60`; one stored page per normalised query."""
    query = _list_query(clause, region, state, limit, cursor)
    base = _base(request)
    engine = request.app.state.engine

    def build(_previous: object) -> cache.Built:
        with transaction(engine, readonly=True) as session:
            rows, next_after, ver = comments.page(
                session=session,
                slug=slug,
                version=version,
                filters=query.filters,
                after=query.after,
                limit=query.limit,
            )
            data = [comments.representation(c, slug=slug, version=ver.version, base_url=base) for c in rows]
        next_cursor = http.encode_cursor({"after": next_after}) if next_after else None
        body = dumps({"data": data, "next_cursor": next_cursor})
        headers = {
            "ETag": http.make_etag(body),
            "Cache-Control": http.CACHE_SHORT,
            "Vary": "Accept, Accept-Encoding",
        }
        if next_cursor:
            f = query.filters
            params = [("clause", f.clause), ("region", f.region), ("state", f.state), ("limit", query.limit)]
            headers["Link"] = http.next_link(
                base, comments_url(None, slug, version), [*params, ("cursor", next_cursor)]
            )
        return cache.Built(body=body, media_type=http.JSON, headers=headers)

    key = ("comments", slug, version, query.filters, query.after, query.limit)
    return await cache.cache_of(request.app.state).serve(request, COMMENTS, key, build)


@router.get(
    "/{slug}/versions/{version}/comments/{comment_id}",
    response_model=CommentPublic,
    responses={
        304: {"description": "Not modified (`If-None-Match`)"},
        404: {"description": "No such comment on a version with a public review"},
        406: {"description": "JSON is not acceptable"},
    },
    summary="One comment (public)",
)
async def get_comment(request: Request, slug: Slug, version: VersionPath, comment_id: CommentId) -> Response:
    """One comment with its disposition (`public, max-age=60`)."""
    base = _base(request)
    engine = request.app.state.engine

    def build(_previous: object) -> cache.Built:
        with transaction(engine, readonly=True) as session:
            comment, ver = comments.one(session=session, slug=slug, version=version, comment_id=comment_id)
            body = dumps(comments.representation(comment, slug=slug, version=ver.version, base_url=base))
        headers = {
            "ETag": http.make_etag(body),
            "Cache-Control": http.CACHE_SHORT,
            "Vary": "Accept, Accept-Encoding",
        }
        return cache.Built(body=body, media_type=http.JSON, headers=headers)

    http.negotiate(request.headers.get("accept"), [http.JSON])
    return await cache.cache_of(request.app.state).serve(
        request, COMMENT, ("comment", slug, version, comment_id), build
    )


@router.patch(
    "/{slug}/versions/{version}/comments/{comment_id}",
    response_model=CommentPublic,
    responses=problems(
        403,
        409,
        s403="Someone else's comment",
        s409="The review is closed, or the comment withdrawn or disposed",
    ),
    summary="Edit one's own comment (review:comment)",
)
def edit_comment(
    request: Request,
    session: SessionDep,
    commenter: ReviewComment,
    slug: Slug,
    version: VersionPath,
    comment_id: CommentId,
    body: CommentEdit,
) -> Response:
    """The members sent replace the comment's (`null` clears `quote` or `proposed_text`); the
    comment then records the draft's current `content_hash`. Only its author, only while the
    review is open and no disposition was made."""
    comment, ver = comments.edit_comment(
        session=session, slug=slug, version=version, comment_id=comment_id, body=body, principal=commenter
    )
    return _json(_comment(request, comment, slug, ver.version))


@router.post(
    "/{slug}/versions/{version}/comments/{comment_id}/withdraw",
    response_model=CommentPublic,
    responses=problems(
        403, 409, s403="Someone else's comment", s409="The review is closed, or already withdrawn"
    ),
    summary="Withdraw one's own comment (review:comment)",
)
def withdraw_comment(
    request: Request,
    session: SessionDep,
    commenter: ReviewComment,
    slug: Slug,
    version: VersionPath,
    comment_id: CommentId,
) -> Response:
    """Only its author, while the review is open. A withdrawn comment stays listed
    (`state: withdrawn`) and needs no disposition."""
    comment, ver = comments.withdraw_comment(
        session=session, slug=slug, version=version, comment_id=comment_id, principal=commenter
    )
    return _json(_comment(request, comment, slug, ver.version))


@router.post(
    "/{slug}/versions/{version}/comments/{comment_id}/disposition",
    response_model=CommentPublic,
    responses=problems(409, s409="The version is published, or the comment was withdrawn"),
    summary="Dispose of a comment (editor)",
)
def dispose_comment(
    request: Request,
    session: SessionDep,
    editor: StandardsWrite,
    slug: Slug,
    version: VersionPath,
    comment_id: CommentId,
    body: DispositionIn,
) -> Response:
    """`accepted`, `accepted_with_changes`, `declined` or `noted`, with a response; changeable until
    the version is published. Emits `standards.comment.disposed` each time."""
    comment, ver = comments.dispose(
        session=session,
        slug=slug,
        version=version,
        comment_id=comment_id,
        body=body,
        actor=editor,
        base_url=_base(request),
    )
    return _json(_comment(request, comment, slug, ver.version))
