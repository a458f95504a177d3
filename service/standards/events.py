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
from service.standards.links import diff_url, translated_version_url, version_url
from service.standards.models import StandardsVersion

VERSION_PUBLISHED = "standards.version.published"
VERSION_WITHDRAWN = "standards.version.withdrawn"
TRANSLATION_PUBLISHED = "standards.translation.published"


def version_published(
    session: Session,
    *,
    slug: str,
    version: StandardsVersion,
    previous: StandardsVersion | None,
    before: dict[str, Any],
    after: dict[str, Any],
    base_url: str | None,
) -> None:
    """``standards.version.published``: ``version`` superseded ``previous`` (``None`` for the first).

    ``summary`` is the editor's summary of the version (the one given at publish, else
    the draft's; ``None`` when empty), beside ``changes``: the clause keys added,
    removed, modified and moved from ``before`` (the previous content; ``{}`` for the
    first version, so every clause is added) to ``after``. A new major version asks
    schools to reaffirm their alignment (``reaffirmation_required``).
    """
    assert version.effective_from is not None  # publishing sets it
    outbox.emit(
        session,
        VERSION_PUBLISHED,
        {
            "document": slug,
            "version": version.version,
            "title": version.title,
            "previous_version": previous.version if previous else None,
            "reaffirmation_required": previous is not None and version.major > previous.major,
            "effective_from": isoformat(version.effective_from),
            "summary": version.summary or None,
            "changes": diffing.change_summary(diffing.diff_contents(before, after)),
            "links": {
                "version": version_url(base_url, slug, version.version),
                "diff": diff_url(base_url, slug, previous.version, version.version) if previous else None,
            },
        },
    )


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
