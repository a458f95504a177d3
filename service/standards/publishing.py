"""Publishing and withdrawing standards versions.

Plain functions with keyword-only arguments; the caller owns the transaction
(they never commit) and events are emitted inside it (DESIGN §2, §4, §5).
Importable from ``service.py`` as they always were.

Invariants kept here:

- A draft can only be published while no higher-numbered version has been
  published: "most recently published" and "highest number" are the same thing.
- At most one version of a document is ``published`` (the current one);
  every other released version is ``superseded`` or ``withdrawn``.
  Publishes and withdrawals lock the document row first (``SELECT … FOR
  UPDATE`` on PostgreSQL; SQLite writers are serialised by ``BEGIN
  IMMEDIATE``), then re-read the version, so concurrent publishes serialise
  and a second publish of the same draft is a 409.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import Session

from service.core import audit
from service.core.db import utcnow
from service.core.errors import Conflict
from service.security.clients import Principal
from service.standards import events, lookup, reviews, translations
from service.standards.content import clause_keys, content_hash, load_content
from service.standards.models import (
    DRAFT,
    PUBLISHED,
    RELEASED,
    SUPERSEDED,
    WITHDRAWN,
    StandardsReview,
    StandardsVersion,
)
from service.standards.views import VersionView
from service.standards.writes import actor_id, check_precondition, editor_view, touch


def publish(
    *,
    session: Session,
    slug: str,
    version: str,
    actor: Principal | str,
    effective_from: dt.datetime | None = None,
    summary: str | None = None,
    if_match: str | None = None,
    base_url: str | None = None,
    published_at: dt.datetime | None = None,
) -> VersionView:
    """Publish a draft: it becomes current, the previous current one is superseded.

    Locks the document row, then re-reads the version (DESIGN §4), so
    concurrent publishes serialise. ``published_at`` (default now) is for the
    sample loader. Emits ``standards.version.published`` (then
    ``standards.translation.published`` for each of the draft's
    translations) in the caller's transaction.

    Raises :class:`Conflict` when the version is no longer a draft, when a
    higher version has been published, when the draft has no clauses, or
    when a draft translation no longer matches the content;
    :class:`PreconditionFailed` for a stale ``If-Match``.
    """
    doc = lookup.find_document(session, slug, lock=True)
    versions = lookup.versions_of(session, doc, fresh=True)
    ver = lookup.find_version(session, doc, version, editor=True)
    if ver.status != DRAFT:
        raise Conflict(f"Version {ver.version} is {ver.status}, not a draft: it cannot be published again.")
    check_precondition(session, doc, ver, if_match, required=False, base_url=base_url)
    higher = [v for v in versions if v.status != DRAFT and lookup.number(v) > lookup.number(ver)]
    if higher:
        raise Conflict(
            f"Version {higher[-1].version} is already published; {ver.version} can no longer be published.",
            extra={"highest_version": higher[-1].version},
        )
    if summary is not None:
        ver.summary = summary
    content = load_content(session, ver)
    if not clause_keys(content):
        raise Conflict(f"Version {ver.version} has no clauses: there is nothing to publish.")
    review = reviews.check_publishable(session, slug=slug, ver=ver, now=utcnow(), base_url=base_url)
    drafts = translations.for_version(session, ver, editor=True)
    for tr in drafts:
        problems = translations.mismatches(content, tr.texts)
        if problems:
            raise Conflict(
                f"The {tr.language} translation no longer matches the draft ({'; '.join(problems)}): "
                "put it again before publishing.",
                extra={"language": tr.language},
            )
    now = published_at or utcnow()
    previous = lookup.current_of(versions)
    if previous is not None:
        previous.status = SUPERSEDED
        touch(session, previous, now)
    ver.status = PUBLISHED
    ver.published_at = now
    ver.effective_from = effective_from or ver.effective_from or now
    ver.content_hash = content_hash(content, language=doc.language)
    touch(session, ver, now)
    for tr in drafts:
        tr.status = PUBLISHED
        tr.published_at = now
        session.add(tr)
    session.flush()

    # The first version's changes: every clause added (a diff from no content at all).
    before = load_content(session, previous) if previous is not None else {}
    events.version_published(
        session,
        slug=slug,
        version=ver,
        previous=previous,
        before=before,
        after=content,
        base_url=base_url,
        accepted=reviews.accepted_by_clause(session, ver) if review is not None else None,
        review=_published_review(session, slug, ver, review, base_url),
    )
    for tr in drafts:
        events.translation_published(
            session, slug=slug, version=ver.version, language=tr.language, base_url=base_url
        )
    audit.record(
        session,
        actor=actor_id(actor),
        action="standards.version.publish",
        target=f"{slug}/{ver.version}",
        details={
            "previous_version": previous.version if previous else None,
            "content_hash": ver.content_hash,
        },
    )
    # The content loaded above is this version's as published: no need to read it again.
    return editor_view(session, doc, ver, base_url, content)


def _published_review(
    session: Session,
    slug: str,
    ver: StandardsVersion,
    review: StandardsReview | None,
    base_url: str | None,
) -> dict[str, Any] | None:
    """The ``review`` member of ``standards.version.published`` (``None`` without a review)."""
    if review is None:
        return None
    found = reviews.summary(session, slug=slug, ver=ver, review=review, base_url=base_url)
    return {name: found[name] for name in ("comments", "organisations", "regions", "link")}


def withdraw(
    *,
    session: Session,
    slug: str,
    version: str,
    actor: Principal | str,
    if_match: str | None = None,
    base_url: str | None = None,
) -> VersionView:
    """Withdraw a published or superseded version.

    Withdrawing the current version makes the highest remaining superseded
    version current again (its status goes back to ``published``). Emits
    ``standards.version.withdrawn``. :class:`Conflict` for drafts and for
    versions already withdrawn.
    """
    doc = lookup.find_document(session, slug, lock=True)
    versions = lookup.versions_of(session, doc, fresh=True)
    ver = lookup.find_version(session, doc, version, editor=True)
    if ver.status not in RELEASED:
        raise Conflict(f"Version {ver.version} is {ver.status}: only published versions can be withdrawn.")
    check_precondition(session, doc, ver, if_match, required=False, base_url=base_url)
    now = utcnow()
    was_current = ver.status == PUBLISHED
    ver.status = WITHDRAWN
    ver.withdrawn_at = now
    touch(session, ver, now)
    current = lookup.current_of(versions) if not was_current else None
    if was_current:
        remaining = [v for v in versions if v.status == SUPERSEDED]
        if remaining:
            current = remaining[-1]
            current.status = PUBLISHED
            touch(session, current, now)
    session.flush()
    events.version_withdrawn(session, slug=slug, version=ver, current=current, base_url=base_url)
    audit.record(
        session,
        actor=actor_id(actor),
        action="standards.version.withdraw",
        target=f"{slug}/{ver.version}",
        details={"current_version": current.version if current else None},
    )
    return editor_view(session, doc, ver, base_url)
