"""What every write of a standards version shares: who acted, the ``If-Match`` comparison,
counting a change, and the representation a write answers with.

Used by the drafting and translating functions (``service.py``) and by publishing
and withdrawing (``publishing.py``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from service.core import changes
from service.core.errors import PreconditionFailed
from service.security.clients import Principal
from service.standards import lookup
from service.standards.models import DRAFT, StandardsDocument, StandardsVersion
from service.standards.views import VersionView, build_view
from service.web.http import check_if_match


def actor_id(actor: Principal | str) -> str:
    """The audit log's actor: a client's id, or the name a caller without a client gives (the
    sample loader's)."""
    return actor if isinstance(actor, str) else actor.client_id


def touch(session: Session, ver: StandardsVersion, now: dt.datetime) -> None:
    """Record a change of ``ver``: a new ``revision`` and ``updated_at`` (``Last-Modified``).

    A draft under review is public, and its edits emit no event: they count a change of
    the ``standards`` domain themselves, so cached representations follow them.
    """
    ver.revision += 1
    # Each change of a document's versions gets a second of its own (HTTP dates have whole
    # seconds): two changes in one second would share a Last-Modified, and If-Modified-Since
    # would answer 304 for the second (RFC 9110 §8.8.2.2).
    latest = session.execute(
        sa.select(sa.func.max(col(StandardsVersion.updated_at))).where(
            col(StandardsVersion.document_id) == ver.document_id
        )
    ).scalar()
    if latest is not None:
        latest = latest if latest.tzinfo else latest.replace(tzinfo=dt.UTC)
        floor = latest.replace(microsecond=0)
        if now.replace(microsecond=0) <= floor:
            now = floor + dt.timedelta(seconds=1)
    ver.updated_at = now
    session.add(ver)
    if ver.status == DRAFT and lookup.under_review(session, ver):
        changes.touch(session, "standards")


def editor_view(
    session: Session,
    doc: StandardsDocument,
    ver: StandardsVersion,
    base_url: str | None,
    content: dict[str, Any] | None = None,
) -> VersionView:
    """What a write answers with: the version as an editor reads it, in the source language."""
    return build_view(session, doc, ver, lang=None, editor=True, base_url=base_url, content=content)


def check_precondition(
    session: Session,
    doc: StandardsDocument,
    ver: StandardsVersion,
    if_match: str | None,
    *,
    required: bool,
    base_url: str | None,
) -> None:
    """Compare ``If-Match`` with the ETag of the version's JSON representation, or of a draft's
    Markdown form (428 / 412)."""
    if if_match is None and not required:
        return  # nothing to compare: spare building the representation
    view = editor_view(session, doc, ver, base_url)
    if ver.status == DRAFT:
        try:
            check_if_match(if_match, view.markdown_etag(), required=required)
            return
        except PreconditionFailed:
            pass  # the JSON representation's ETag is the one a 412 names
    check_if_match(if_match, view.json_etag(), required=required)
