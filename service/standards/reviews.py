"""Public review of drafts: opening and closing a review period, its summary, the publish gate.

A draft has at most one review. Opening it makes the draft public (its reads,
its comments, its disposition report) for good; the review is ``open`` until
``closes_at`` or until an editor closes it early, then ``closed``. The state is
computed from the clock, so a review that ran out is closed at once; the
``standards.review.close`` job (every 30 s in the worker) writes ``closed_at`` and
emits ``standards.review.closed`` for it, and a publish settles it first.

Plain functions with keyword-only arguments over the caller's session; they
never commit. Comments live in ``comments.py``; the report in ``report.py``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from service.core import audit, jobs
from service.core.config import settings_for
from service.core.db import utcnow
from service.core.errors import Conflict, NotFound, Unprocessable
from service.core.ids import new_id
from service.security.clients import Principal
from service.standards import events, lookup
from service.standards.links import review_url
from service.standards.models import (
    ACCEPTED,
    DRAFT,
    REVIEW_CLOSED,
    REVIEW_OPEN,
    StandardsComment,
    StandardsDocument,
    StandardsReview,
    StandardsVersion,
)

#: The longest review period an editor may open (days).
MAX_DAYS = 365
#: How often the worker announces reviews that ran out (seconds).
CLOSE_INTERVAL_S = 30.0
#: Most reviews one run of the job closes (the next run takes the rest).
CLOSE_BATCH = 100


def actor_id(actor: Principal | str) -> str:
    """The audit actor: a client id, or a name such as ``sample``."""
    return actor if isinstance(actor, str) else actor.client_id


def review_of(session: Session, ver: StandardsVersion, *, lock: str | None = None) -> StandardsReview | None:
    """The review of ``ver``, or ``None`` when it never had one.

    ``lock="update"`` (closing, publishing) or ``"share"`` (commenting, disposing)
    locks its row until the transaction ends on PostgreSQL, re-reading it after
    the lock; SQLite serialises writers anyway.
    """
    stmt = select(StandardsReview).where(col(StandardsReview.version_id) == ver.id)
    if lock is not None:
        stmt = stmt.with_for_update(read=lock == "share").execution_options(populate_existing=True)
    return session.exec(stmt).first()


def state(review: StandardsReview, now: dt.datetime) -> str:
    """``open`` until it was closed early or ``closes_at`` passed; ``closed`` afterwards."""
    if review.closed_at is not None or now >= review.closes_at:
        return REVIEW_CLOSED
    return REVIEW_OPEN


def summary(
    session: Session, *, slug: str, ver: StandardsVersion, review: StandardsReview, base_url: str | None
) -> dict[str, Any]:
    """The ``review`` member of a version's representation (``ReviewSummary``).

    ``comments`` counts the comments not withdrawn; ``organisations`` the
    distinct organisations behind them; ``regions`` their regions, sorted:
    the totals frozen when the review closed, or one query while it is open.
    """
    return {
        "state": state(review, utcnow()),
        "opens_at": review.opens_at,
        "closes_at": review.closes_at,
        "closed_at": review.closed_at,
        "summary": review.summary,
        **(review.totals if review.closed_at is not None and review.totals else totals(session, ver)),
        "link": review_url(base_url, slug, ver.version),
    }


def totals(session: Session, ver: StandardsVersion) -> dict[str, Any]:
    """``{"comments", "organisations", "regions"}`` of the comments on ``ver`` not withdrawn."""
    rows = session.execute(
        sa.select(col(StandardsComment.organisation), col(StandardsComment.region), sa.func.count())
        .where(col(StandardsComment.version_id) == ver.id, col(StandardsComment.withdrawn_at).is_(None))
        .group_by(col(StandardsComment.organisation), col(StandardsComment.region))
    ).all()
    return {
        "comments": sum(int(n) for _, _, n in rows),
        "organisations": len({org for org, _, _ in rows}),
        "regions": sorted({region for _, region, _ in rows}),
    }


def _close(
    session: Session,
    *,
    slug: str,
    ver: StandardsVersion,
    review: StandardsReview,
    at: dt.datetime,
    base_url: str | None,
) -> None:
    """Record the close at ``at`` with the totals it freezes; emits ``standards.review.closed``."""
    review.closed_at = at
    review.totals = totals(session, ver)
    session.add(review)
    session.flush()
    events.review_closed(
        session,
        slug=slug,
        version=ver.version,
        review=review,
        comments=review.totals["comments"],
        base_url=base_url,
    )


# --- opening and closing -------------------------------------------------------------------------


def open_review(
    *,
    session: Session,
    slug: str,
    version: str,
    closes_at: dt.datetime,
    summary_text: str,
    actor: Principal | str,
    base_url: str | None,
) -> tuple[StandardsDocument, StandardsVersion, StandardsReview]:
    """Open the review of draft ``version``; emits ``standards.review.opened``.

    Raises :class:`Conflict` when the version is not a draft or already has a
    review (open or closed: a draft has one review period), :class:`Unprocessable`
    when ``closes_at`` is not in the future or more than :data:`MAX_DAYS` ahead.
    """
    now = utcnow()
    if closes_at <= now:
        raise Unprocessable("`closes_at` must be in the future.", extra={"closes_at": closes_at.isoformat()})
    if closes_at > now + dt.timedelta(days=MAX_DAYS):
        raise Unprocessable(f"A review period lasts at most {MAX_DAYS} days: `closes_at` is too far ahead.")
    doc = lookup.find_document(session, slug)
    ver = lookup.find_version(session, doc, version, editor=True, lock=True)
    if ver.status != DRAFT:
        raise Conflict(f"Version {ver.version} is {ver.status}: only drafts are put under review.")
    existing = review_of(session, ver)
    if existing is not None:
        raise Conflict(
            f"Draft {ver.version} already has a review ({state(existing, now)}): a draft has one review "
            "period; open one on a new draft for another round.",
            extra={"review_state": state(existing, now)},
        )
    review = StandardsReview(
        id=new_id("rev"),
        version_id=ver.id,
        opens_at=now,
        closes_at=closes_at,
        summary=summary_text,
        opened_by=actor_id(actor),
    )
    session.add(review)
    session.flush()
    events.review_opened(session, slug=slug, version=ver.version, review=review, base_url=base_url)
    audit.record(
        session,
        actor=actor_id(actor),
        action="standards.review.open",
        target=f"{slug}/{ver.version}",
        details={"closes_at": closes_at.isoformat()},
    )
    return doc, ver, review


def close_review(
    *, session: Session, slug: str, version: str, actor: Principal | str, base_url: str | None
) -> tuple[StandardsDocument, StandardsVersion, StandardsReview]:
    """Close the open review of ``version`` now; emits ``standards.review.closed``.

    :class:`NotFound` when the version never had a review; :class:`Conflict`
    when it is closed already.
    """
    doc = lookup.find_document(session, slug)
    ver = lookup.find_version(session, doc, version, editor=True)
    review = review_of(session, ver, lock="update")
    if review is None:
        raise NotFound(f"Version {ver.version} of {slug!r} has no review.")
    now = utcnow()
    if state(review, now) == REVIEW_CLOSED:
        settle(session, slug=slug, ver=ver, review=review, now=now, base_url=base_url)
        raise Conflict(
            f"The review of {ver.version} is closed already.", extra={"closed_at": _closed(review)}
        )
    _close(session, slug=slug, ver=ver, review=review, at=now, base_url=base_url)
    audit.record(
        session, actor=actor_id(actor), action="standards.review.close", target=f"{slug}/{ver.version}"
    )
    return doc, ver, review


def _closed(review: StandardsReview) -> str:
    return (review.closed_at or review.closes_at).isoformat()


def settle(
    session: Session,
    *,
    slug: str,
    ver: StandardsVersion,
    review: StandardsReview,
    now: dt.datetime,
    base_url: str | None,
) -> bool:
    """Announce a review that ran out and was not announced yet (``closed_at`` = ``closes_at``,
    ``standards.review.closed``); returns whether it did. The row must be locked."""
    if review.closed_at is not None or now < review.closes_at:
        return False
    _close(session, slug=slug, ver=ver, review=review, at=review.closes_at, base_url=base_url)
    return True


def close_expired(session: Session, now: dt.datetime) -> int:
    """The ``standards.review.close`` job: announce every review whose ``closes_at`` passed.

    Rows are claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (another
    worker's are skipped); SQLite serialises writers. Returns how many it closed.
    """
    rows = session.exec(
        select(StandardsReview, StandardsVersion, StandardsDocument)
        .join(StandardsVersion, col(StandardsVersion.id) == col(StandardsReview.version_id))
        .join(StandardsDocument, col(StandardsDocument.id) == col(StandardsVersion.document_id))
        .where(col(StandardsReview.closed_at).is_(None), col(StandardsReview.closes_at) <= now)
        .order_by(col(StandardsReview.closes_at))
        .limit(CLOSE_BATCH)
        .with_for_update(skip_locked=True, of=StandardsReview)
    ).all()
    base_url = settings_for(session).public_base_url
    closed = 0
    for review, ver, doc in rows:
        closed += settle(session, slug=doc.slug, ver=ver, review=review, now=now, base_url=base_url)
    return closed


# --- the publish gate ------------------------------------------------------------------------------


def check_publishable(
    session: Session, *, slug: str, ver: StandardsVersion, now: dt.datetime, base_url: str | None
) -> StandardsReview | None:
    """The gate of a publish: a draft that had a review is published only when the review is
    closed and every comment not withdrawn has a disposition. Returns the review (``None``
    without one), announcing it first if it ran out unannounced.

    Raises :class:`Conflict` naming the state of the review (``review_state``) and listing the
    ids of the comments still waiting for a disposition (``undisposed_comments``, possibly
    empty while the review is open).
    """
    review = review_of(session, ver, lock="update")
    if review is None:
        return None
    # Sorted here: ORDER BY id would lead SQLite to walk every comment in id order instead of
    # seeking the few without an outcome ((version_id, outcome) index).
    pending = sorted(
        session.exec(
            select(col(StandardsComment.id)).where(
                col(StandardsComment.version_id) == ver.id,
                col(StandardsComment.withdrawn_at).is_(None),
                col(StandardsComment.outcome).is_(None),
            )
        ).all()
    )
    # Both refusals list the comments still waiting (the contract's 409 names them), so an
    # editor learns all that stands between the draft and its publication at once.
    if state(review, now) == REVIEW_OPEN:
        raise Conflict(
            f"The review of {ver.version} is open until {review.closes_at.isoformat()}: close it first.",
            extra={"review_state": REVIEW_OPEN, "undisposed_comments": pending},
        )
    if pending:
        raise Conflict(
            f"{len(pending)} comment(s) on {ver.version} have no disposition yet.",
            extra={"review_state": REVIEW_CLOSED, "undisposed_comments": pending},
        )
    settle(session, slug=slug, ver=ver, review=review, now=now, base_url=base_url)
    return review


def accepted_by_clause(session: Session, ver: StandardsVersion) -> dict[str, list[str]]:
    """Clause key -> ids (oldest first) of the comments on it that were accepted, with or without
    changes, and not withdrawn: what the diff and the published event name as reasons."""
    rows = session.exec(
        select(col(StandardsComment.clause_key), col(StandardsComment.id)).where(
            col(StandardsComment.version_id) == ver.id,
            col(StandardsComment.clause_key).is_not(None),
            col(StandardsComment.withdrawn_at).is_(None),
            col(StandardsComment.outcome).in_(ACCEPTED),
        )
    ).all()
    out: dict[str, list[str]] = {}
    for key, comment_id in sorted(rows, key=lambda row: row[1]):  # sorted here, as in the gate
        out.setdefault(str(key), []).append(comment_id)
    return out


jobs.register("standards.review.close", CLOSE_INTERVAL_S, close_expired)
