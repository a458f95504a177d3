"""Comments on a draft under review: writing, editing, withdrawing, disposing, and reading them.

Who may do what:

- a client with ``review:comment`` (it stands for an organisation, see
  ``security/clients.py``) comments while the review is open, and edits or
  withdraws its *own* comments while the review is open (an edit only before a
  disposition was made);
- an editor (``standards:write``) disposes of any comment that was not
  withdrawn, and may change the disposition until the version is published.

Every comment records the draft's ``content_hash`` when it was written (or last
edited). The public sees each comment with its organisation, region and
commenter type, never the client or a person. Writes that emit no event
(edits, withdrawals) count a change of the ``standards`` domain themselves, so
the cached lists, reports and draft reads follow them.

Plain functions with keyword-only arguments over the caller's session; they never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from service.core import audit, changes
from service.core.codes import shown
from service.core.db import utcnow
from service.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from service.core.ids import new_id
from service.security.clients import Principal
from service.security.models import ApiClient
from service.standards import events, lookup, reviews
from service.standards.content import load_content
from service.standards.links import comment_url, version_url
from service.standards.models import (
    DISPOSED,
    DRAFT,
    PENDING,
    REVIEW_OPEN,
    WITHDRAWN_COMMENT,
    StandardsComment,
    StandardsDocument,
    StandardsReview,
    StandardsVersion,
)
from service.standards.review_schemas import CommentCreate, CommentEdit, DispositionIn

#: The ``standards`` change domain: edits and withdrawals change public representations without
#: an event (``service.core.changes``).
DOMAIN = "standards"


# --- representations ---------------------------------------------------------------------------


def state_of(comment: StandardsComment) -> str:
    """``withdrawn``, ``disposed`` or ``pending`` (awaiting a disposition)."""
    if comment.withdrawn_at is not None:
        return WITHDRAWN_COMMENT
    return DISPOSED if comment.outcome is not None else PENDING


def representation(
    comment: StandardsComment, *, slug: str, version: str, base_url: str | None
) -> dict[str, Any]:
    """A comment as everyone sees it (``CommentPublic``): never its client or a person's details."""
    links = {
        "self": comment_url(base_url, slug, version, comment.id),
        "version": version_url(base_url, slug, version),
    }
    if comment.clause_key:
        links["clause"] = f"{links['version']}/clauses/{comment.clause_key}"
    return {
        "id": comment.id,
        "document": slug,
        "version": version,
        "clause_key": comment.clause_key,
        "section_key": comment.section_key,
        "quote": comment.quote,
        "text": comment.text,
        "proposed_text": comment.proposed_text,
        "organisation": comment.organisation,
        "region": comment.region,
        "commenter_type": comment.commenter_type,
        "created_at": comment.created_at,
        "updated_at": comment.updated_at,
        "content_hash": comment.content_hash,
        "state": state_of(comment),
        "withdrawn_at": comment.withdrawn_at,
        "disposition": (
            {"outcome": comment.outcome, "response": comment.response, "disposed_at": comment.disposed_at}
            if comment.outcome is not None
            else None
        ),
        "links": links,
    }


# --- finding -----------------------------------------------------------------------------------


def reviewed_version(
    session: Session, slug: str, version: str
) -> tuple[StandardsDocument, StandardsVersion, StandardsReview]:
    """A version that has (or had) a public review, and the review.

    :class:`NotFound` alike for an unknown version, a private draft and a version
    without a review (the answer never tells a private draft exists).
    """
    doc = lookup.find_document(session, slug)
    try:
        ver = lookup.find_version(session, doc, version, editor=False)
    except NotFound:
        ver = None
    review = reviews.review_of(session, ver) if ver is not None else None
    if ver is None or review is None:
        raise NotFound(f"Version {shown(version)} of {shown(slug)} has no review.")
    return doc, ver, review


def _comment(
    session: Session, ver: StandardsVersion, comment_id: str, *, lock: bool = False
) -> StandardsComment:
    stmt = select(StandardsComment).where(
        col(StandardsComment.id) == comment_id, col(StandardsComment.version_id) == ver.id
    )
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    found = session.exec(stmt).first() if len(comment_id) <= 40 else None
    if found is None:
        raise NotFound(f"Version {ver.version} has no comment {shown(comment_id)}.")
    return found


def _open_review(session: Session, ver: StandardsVersion) -> StandardsReview:
    """The review of ``ver``, share-locked (a close or a publish waits for this transaction, and
    this one for theirs); :class:`Conflict` when it is not open."""
    review = reviews.review_of(session, ver, lock="share")
    now = utcnow()
    if review is None or ver.status != DRAFT:
        raise Conflict(
            f"Version {ver.version} is not under review: it takes no comments.", extra={"review_state": None}
        )
    if reviews.state(review, now) != REVIEW_OPEN:
        raise Conflict(
            f"The review of {ver.version} closed on {(review.closed_at or review.closes_at).isoformat()}.",
            extra={"review_state": reviews.state(review, now)},
        )
    return review


def _own(comment: StandardsComment, principal: Principal) -> None:
    if comment.client_id != principal.client_id:
        raise Forbidden("Only the organisation that wrote a comment may change or withdraw it.")


# --- writes ------------------------------------------------------------------------------------


def create_comment(
    *,
    session: Session,
    slug: str,
    version: str,
    body: CommentCreate,
    principal: Principal,
    base_url: str | None,
) -> tuple[StandardsComment, StandardsVersion]:
    """A comment on draft ``version`` while its review is open; emits ``standards.comment.created``.

    ``clause_key`` and ``section_key`` must be keys of the draft as it is now (a
    clause given alone brings its section; both: the clause must be in that
    section), else :class:`Unprocessable`. :class:`Conflict` when the review is
    closed or absent; :class:`NotFound` for versions the public cannot see;
    :class:`Forbidden` for a client that stands for no organisation.
    """
    client = session.get(ApiClient, principal.client_id)
    if client is None or not (client.organisation and client.region and client.commenter_type):
        raise Forbidden(
            "This client stands for no organisation: register one with --organisation, --region "
            "and --commenter-type to comment."
        )
    doc = lookup.find_document(session, slug)
    ver = lookup.find_version(session, doc, version, editor=False)
    review = _open_review(session, ver)
    section_key = _anchor(load_content(session, ver), body.clause_key, body.section_key)
    now = utcnow()
    comment = StandardsComment(
        id=new_id("cmt"),
        version_id=ver.id,
        review_id=review.id,
        client_id=client.id,
        organisation=client.organisation,
        region=client.region,
        commenter_type=client.commenter_type,
        clause_key=body.clause_key,
        section_key=section_key,
        quote=body.quote or None,
        text=body.text,
        proposed_text=body.proposed_text or None,
        content_hash=ver.content_hash,
        created_at=now,
        updated_at=now,
    )
    session.add(comment)
    session.flush()
    events.comment_created(session, slug=slug, version=ver.version, comment=comment, base_url=base_url)
    audit.record(
        session,
        actor=client.id,
        action="standards.comment.create",
        target=f"{slug}/{ver.version}/{comment.id}",
        details={"clause_key": comment.clause_key, "section_key": comment.section_key},
    )
    return comment, ver


def _anchor(content: dict[str, Any], clause_key: str | None, section_key: str | None) -> str | None:
    """The section a comment is anchored in, after checking its keys against ``content``."""
    if clause_key is None:
        if section_key is not None and section_key not in {s["key"] for s in content["sections"]}:
            raise Unprocessable(f"`section_key`: the draft has no section {section_key!r}.")
        return section_key
    home = next((s["key"] for s in content["sections"] for c in s["clauses"] if c["key"] == clause_key), None)
    if home is None:
        raise Unprocessable(f"`clause_key`: the draft has no clause {clause_key!r}.")
    if section_key is not None and section_key != home:
        raise Unprocessable(f"`section_key`: clause {clause_key} is in section {home}, not {section_key}.")
    return home


def edit_comment(
    *,
    session: Session,
    slug: str,
    version: str,
    comment_id: str,
    body: CommentEdit,
    principal: Principal,
) -> tuple[StandardsComment, StandardsVersion]:
    """Change one's own comment while the review is open and before a disposition was made.

    The members sent replace the comment's (``quote``/``proposed_text`` ``null``
    clears them; ``text`` cannot be null); the comment then records the draft's
    ``content_hash`` of now. :class:`Forbidden` for someone else's comment,
    :class:`Conflict` when the review is closed or the comment is withdrawn or disposed.
    """
    _doc, ver, _review = reviewed_version(session, slug, version)
    comment = _comment(session, ver, comment_id, lock=True)
    _own(comment, principal)
    _open_review(session, ver)
    if state_of(comment) != PENDING:
        raise Conflict(f"Comment {comment.id} is {state_of(comment)}: it can no longer be edited.")
    fields = body.model_dump(exclude_unset=True)
    if "text" in fields and fields["text"] is None:
        raise Unprocessable("`text` cannot be null: a comment needs its text.")
    for name, value in fields.items():
        # An empty quote or proposal is no quote or proposal.
        setattr(comment, name, value if name == "text" else (value or None))
    comment.content_hash = ver.content_hash
    comment.updated_at = utcnow()
    session.add(comment)
    session.flush()
    changes.touch(session, DOMAIN)
    audit.record(
        session,
        actor=principal.client_id,
        action="standards.comment.edit",
        target=f"{slug}/{ver.version}/{comment.id}",
        details={"fields": sorted(fields)},
    )
    return comment, ver


def withdraw_comment(
    *, session: Session, slug: str, version: str, comment_id: str, principal: Principal
) -> tuple[StandardsComment, StandardsVersion]:
    """Withdraw one's own comment while the review is open (it then needs no disposition).

    Not an event: the lists and reports show it as ``withdrawn``. :class:`Forbidden`
    for someone else's comment; :class:`Conflict` when the review is closed or the
    comment was withdrawn already.
    """
    _doc, ver, _review = reviewed_version(session, slug, version)
    comment = _comment(session, ver, comment_id, lock=True)
    _own(comment, principal)
    _open_review(session, ver)
    if comment.withdrawn_at is not None:
        raise Conflict(f"Comment {comment.id} was withdrawn already.")
    comment.withdrawn_at = comment.updated_at = utcnow()
    session.add(comment)
    session.flush()
    changes.touch(session, DOMAIN)
    audit.record(
        session,
        actor=principal.client_id,
        action="standards.comment.withdraw",
        target=f"{slug}/{ver.version}/{comment.id}",
    )
    return comment, ver


def dispose(
    *,
    session: Session,
    slug: str,
    version: str,
    comment_id: str,
    body: DispositionIn,
    actor: Principal | str,
    base_url: str | None,
) -> tuple[StandardsComment, StandardsVersion]:
    """Record (or change) the editor's disposition of a comment; emits ``standards.comment.disposed``.

    Possible while the review is open and after it, until the version is
    published (then :class:`Conflict`); a withdrawn comment takes none (:class:`Conflict`).
    """
    _doc, ver, review = reviewed_version(session, slug, version)
    # A publish holds the review row until it commits: wait for it, then see the version as it left it.
    reviews.review_of(session, ver, lock="share")
    session.refresh(ver)
    if ver.status != DRAFT:
        raise Conflict(f"Version {ver.version} is {ver.status}: its dispositions are final.")
    comment = _comment(session, ver, comment_id, lock=True)
    if comment.withdrawn_at is not None:
        raise Conflict(f"Comment {comment.id} was withdrawn: it needs no disposition.")
    previous = comment.outcome
    comment.outcome = body.outcome
    comment.response = body.response
    comment.disposed_at = comment.updated_at = utcnow()
    session.add(comment)
    session.flush()
    events.comment_disposed(
        session, slug=slug, version=ver.version, comment=comment, previous_outcome=previous, base_url=base_url
    )
    audit.record(
        session,
        actor=reviews.actor_id(actor),
        action="standards.comment.dispose",
        target=f"{slug}/{ver.version}/{comment.id}",
        details={"outcome": body.outcome, "previous_outcome": previous},
    )
    return comment, ver


# --- reads -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """A normalised comment-list query: ``clause`` key, ``region`` code, ``state``."""

    clause: str | None = None
    region: str | None = None
    state: str | None = None


def page(
    *, session: Session, slug: str, version: str, filters: Filters, after: str | None, limit: int
) -> tuple[list[StandardsComment], str | None, StandardsVersion]:
    """One page of a reviewed version's comments, oldest first, after the comment id ``after``.

    Returns ``(comments, next_after, version)``; ``next_after`` is ``None`` on the last page.
    One indexed query (``version_id`` with the clause or region, then the id).
    """
    _doc, ver, _review = reviewed_version(session, slug, version)
    stmt = select(StandardsComment).where(col(StandardsComment.version_id) == ver.id)
    if filters.clause is not None:
        stmt = stmt.where(col(StandardsComment.clause_key) == filters.clause)
    if filters.region is not None:
        stmt = stmt.where(col(StandardsComment.region) == filters.region)
    if filters.state == WITHDRAWN_COMMENT:
        stmt = stmt.where(col(StandardsComment.withdrawn_at).is_not(None))
    elif filters.state is not None:
        stmt = stmt.where(col(StandardsComment.withdrawn_at).is_(None))
        outcome = col(StandardsComment.outcome)
        stmt = stmt.where(outcome.is_(None) if filters.state == PENDING else outcome.is_not(None))
    if after is not None:
        stmt = stmt.where(col(StandardsComment.id) > after)
    rows = list(session.exec(stmt.order_by(col(StandardsComment.id)).limit(limit + 1)).all())
    next_after = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], next_after, ver


def one(
    *, session: Session, slug: str, version: str, comment_id: str
) -> tuple[StandardsComment, StandardsVersion]:
    """One comment of a reviewed version; :class:`NotFound` otherwise."""
    _doc, ver, _review = reviewed_version(session, slug, version)
    return _comment(session, ver, comment_id), ver


def all_of(session: Session, ver: StandardsVersion) -> list[StandardsComment]:
    """Every comment on ``ver``, oldest first (the disposition report)."""
    stmt = select(StandardsComment).where(col(StandardsComment.version_id) == ver.id)
    return list(session.exec(stmt.order_by(col(StandardsComment.id))).all())
