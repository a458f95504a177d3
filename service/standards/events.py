"""The ``standards.*`` events (DESIGN §5): their names and payloads, emitted into the outbox.

Called by the write side (``service.py``) inside the caller's transaction;
after commit they invalidate the representation caches (``cache.py``) and
reach the registry's listeners and webhooks through ``service.events``.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from service.core.jsonutil import isoformat
from service.events import service as outbox
from service.standards import diff as diffing
from service.standards.links import (
    comment_url,
    comments_url,
    diff_url,
    review_url,
    translated_version_url,
    version_url,
)
from service.standards.models import StandardsComment, StandardsReview, StandardsVersion

VERSION_PUBLISHED = "standards.version.published"
VERSION_WITHDRAWN = "standards.version.withdrawn"
TRANSLATION_PUBLISHED = "standards.translation.published"
REVIEW_OPENED = "standards.review.opened"
REVIEW_CLOSED = "standards.review.closed"
COMMENT_CREATED = "standards.comment.created"
COMMENT_DISPOSED = "standards.comment.disposed"


def version_published(
    session: Session,
    *,
    slug: str,
    version: StandardsVersion,
    previous: StandardsVersion | None,
    before: dict[str, Any],
    after: dict[str, Any],
    base_url: str | None,
    accepted: dict[str, list[str]] | None = None,
    review: dict[str, Any] | None = None,
) -> None:
    """``standards.version.published``: ``version`` superseded ``previous`` (``None`` for the first).

    ``summary`` is the editor's summary of the version (the one given at publish, else
    the draft's; ``None`` when empty). ``changes`` lists the clause keys added, removed,
    modified and moved from ``before`` (the previous content; ``{}`` for the first version,
    so every clause is added) to ``after``, and under ``change_notes`` why (each changed
    clause's ``change_note`` and the ids of the ``accepted`` comments on it).
    A new major version asks schools to reaffirm their alignment
    (``reaffirmation_required``). ``review``: the version's review summary, when it had one.
    """
    assert version.effective_from is not None  # publishing sets it
    data: dict[str, Any] = {
        "document": slug,
        "version": version.version,
        "title": version.title,
        "previous_version": previous.version if previous else None,
        "reaffirmation_required": previous is not None and version.major > previous.major,
        "effective_from": isoformat(version.effective_from),
        "summary": version.summary or None,
        "changes": diffing.change_summary(diffing.diff_contents(before, after, accepted=accepted)),
        "links": {
            "version": version_url(base_url, slug, version.version),
            "diff": diff_url(base_url, slug, previous.version, version.version) if previous else None,
        },
    }
    if review is not None:
        data["review"] = review
    outbox.emit(session, VERSION_PUBLISHED, data)


def version_withdrawn(
    session: Session,
    *,
    slug: str,
    version: StandardsVersion,
    current: StandardsVersion | None,
    base_url: str | None,
) -> None:
    """``standards.version.withdrawn``, naming the version that is ``current`` afterwards (or ``None``)."""
    outbox.emit(
        session,
        VERSION_WITHDRAWN,
        {
            "document": slug,
            "version": version.version,
            "current_version": current.version if current else None,
            "links": {
                "version": version_url(base_url, slug, version.version),
                "current": version_url(base_url, slug, current.version) if current else None,
            },
        },
    )


def translation_published(
    session: Session, *, slug: str, version: str, language: str, base_url: str | None
) -> None:
    """``standards.translation.published`` for the ``language`` translation of ``version``."""
    outbox.emit(
        session,
        TRANSLATION_PUBLISHED,
        {
            "document": slug,
            "version": version,
            "language": language,
            "links": {"version": translated_version_url(base_url, slug, version, language)},
        },
    )


# --- review of drafts ---------------------------------------------------------------------------


def _review_links(base_url: str | None, slug: str, version: str) -> dict[str, str]:
    return {
        "version": version_url(base_url, slug, version),
        "review": review_url(base_url, slug, version),
        "comments": comments_url(base_url, slug, version),
    }


def review_opened(
    session: Session, *, slug: str, version: str, review: StandardsReview, base_url: str | None
) -> None:
    """``standards.review.opened``: the draft ``version`` is public and takes comments until ``closes_at``."""
    outbox.emit(
        session,
        REVIEW_OPENED,
        {
            "document": slug,
            "version": version,
            "opens_at": isoformat(review.opens_at),
            "closes_at": isoformat(review.closes_at),
            "summary": review.summary,
            "links": _review_links(base_url, slug, version),
        },
    )


def review_closed(
    session: Session,
    *,
    slug: str,
    version: str,
    review: StandardsReview,
    comments: int,
    base_url: str | None,
) -> None:
    """``standards.review.closed``: no more comments; ``closed_early`` when an editor closed it
    before ``closes_at``; ``comments`` counts those not withdrawn."""
    assert review.closed_at is not None
    outbox.emit(
        session,
        REVIEW_CLOSED,
        {
            "document": slug,
            "version": version,
            "opens_at": isoformat(review.opens_at),
            "closes_at": isoformat(review.closes_at),
            "closed_at": isoformat(review.closed_at),
            "closed_early": review.closed_at < review.closes_at,
            "comments": comments,
            "links": _review_links(base_url, slug, version),
        },
    )


def _comment_data(slug: str, version: str, comment: StandardsComment) -> dict[str, Any]:
    # Who commented, as the public sees it: the organisation, never the client or a person.
    return {
        "document": slug,
        "version": version,
        "comment_id": comment.id,
        "clause_key": comment.clause_key,
        "section_key": comment.section_key,
        "organisation": comment.organisation,
        "region": comment.region,
        "commenter_type": comment.commenter_type,
    }


def comment_created(
    session: Session, *, slug: str, version: str, comment: StandardsComment, base_url: str | None
) -> None:
    """``standards.comment.created``: the comment as the public list shows it."""
    outbox.emit(
        session,
        COMMENT_CREATED,
        {
            **_comment_data(slug, version, comment),
            "quote": comment.quote,
            "text": comment.text,
            "proposed_text": comment.proposed_text,
            "content_hash": comment.content_hash,
            "links": {
                "comment": comment_url(base_url, slug, version, comment.id),
                **_review_links(base_url, slug, version),
            },
        },
    )


def comment_disposed(
    session: Session,
    *,
    slug: str,
    version: str,
    comment: StandardsComment,
    previous_outcome: str | None,
    base_url: str | None,
) -> None:
    """``standards.comment.disposed``: an editor decided (or changed the decision) on a comment."""
    outbox.emit(
        session,
        COMMENT_DISPOSED,
        {
            **_comment_data(slug, version, comment),
            "outcome": comment.outcome,
            "previous_outcome": previous_outcome,
            "response": comment.response,
            "links": {
                "comment": comment_url(base_url, slug, version, comment.id),
                **_review_links(base_url, slug, version),
            },
        },
    )
