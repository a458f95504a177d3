"""The released versions as other domains see them (the registry, the snapshot): which
versions are published, the current one, a lock that holds releases still, when the version
in force next changes, and the current versions in full.

Re-exported by ``service.py``, where other domains have always imported them from.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import Session, col, select

from service.core.db import utcnow
from service.standards import lookup
from service.standards.models import PUBLISHED, RELEASED, StandardsDocument, StandardsVersion
from service.standards.views import build_view

#: The slug of the IMI Network's document (the registry states alignment against it).
DEFAULT_DOCUMENT = "training-standards"


def published_versions(*, session: Session, slug: str) -> list[str]:
    """Versions of ``slug`` that were published and are not withdrawn, ascending (``["1.0", "2.0"]``).

    An unknown document has none (``[]``).
    """
    doc = lookup.document_or_none(session, slug)
    if doc is None:
        return []
    return [v.version for v in lookup.versions_of(session, doc) if v.status in RELEASED]


def hold_releases(*, session: Session, slug: str) -> None:
    """Share-lock the document's row until the caller's transaction ends.

    Publishes and withdrawals lock that row for update, so none of them can
    commit between this call and the caller's commit: what the caller reads
    with :func:`published_versions` / :func:`current_version_number` stays
    true while it acts on it (``FOR SHARE`` on PostgreSQL; SQLite writers are
    serialised anyway). An unknown document is a no-op.
    """
    session.exec(
        select(col(StandardsDocument.id))
        .where(col(StandardsDocument.slug) == slug)
        .with_for_update(read=True)
    ).first()


def current_version_number(*, session: Session, slug: str) -> str | None:
    """The current version of ``slug`` (``"2.0"``), or ``None`` when none is published."""
    return session.exec(
        select(StandardsVersion.version)
        .join(StandardsDocument, col(StandardsDocument.id) == col(StandardsVersion.document_id))
        .where(col(StandardsDocument.slug) == slug, col(StandardsVersion.status) == PUBLISHED)
    ).first()


def representations_change_at(*, session: Session) -> dt.datetime | None:
    """The next instant at which a published version of any document takes effect (``None``:
    none is scheduled): version representations say which version is in force, so a copy
    of them (the snapshot) is good until then."""
    now = utcnow()
    moments = [
        lookup.next_in_force_change(lookup.versions_of(session, doc), now)
        for doc in session.exec(select(StandardsDocument)).all()
    ]
    return min((m for m in moments if m is not None), default=None)


def current_versions_for_snapshot(*, session: Session, base_url: str | None = None) -> list[dict[str, Any]]:
    """The current version of every document, each as its full JSON representation (source language)."""
    out = []
    for doc in session.exec(select(StandardsDocument).order_by(col(StandardsDocument.slug))).all():
        ver = lookup.current_of(lookup.versions_of(session, doc))
        if ver is not None:
            view = build_view(session, doc, ver, lang=None, editor=False, base_url=base_url)
            out.append(view.representation)
    return out
