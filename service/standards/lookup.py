"""Finding standards documents and versions: by slug, by ``major.minor`` number, the current one.

Shared by the read side (``views.py``) and the write side (``service.py``).
Writers pass ``lock=True``: ``SELECT … FOR UPDATE`` on PostgreSQL (SQLite
writers are serialised by ``BEGIN IMMEDIATE``) with ``populate_existing``, so
what they read after the lock is what other transactions committed before it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from sqlmodel import Session, col, select

from service.core.codes import shown
from service.core.errors import NotFound, Unprocessable
from service.standards.models import DRAFT, PUBLISHED, StandardsDocument, StandardsReview, StandardsVersion
from service.standards.schemas import VERSION_PATTERN

_VERSION = re.compile(VERSION_PATTERN)


def parse_version(value: str) -> tuple[int, int]:
    """``"2.10"`` -> ``(2, 10)``; :class:`Unprocessable` when not ``major.minor``."""
    if not _VERSION.fullmatch(value or ""):
        raise Unprocessable(f"{shown(value)} is not a version number of the form major.minor (e.g. '2.0').")
    major, minor = value.split(".")
    return int(major), int(minor)


def number(version: StandardsVersion) -> tuple[int, int]:
    """A version's number as a sortable ``(major, minor)``."""
    return (version.major, version.minor)


def document_or_none(session: Session, slug: str, *, lock: bool = False) -> StandardsDocument | None:
    """The document called ``slug``, or ``None``; ``lock`` locks its row (publishes serialise on it)."""
    stmt = select(StandardsDocument).where(col(StandardsDocument.slug) == slug)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.exec(stmt).first()


def find_document(session: Session, slug: str, *, lock: bool = False) -> StandardsDocument:
    """The document called ``slug``; :class:`NotFound` when there is none."""
    doc = document_or_none(session, slug, lock=lock)
    if doc is None:
        raise NotFound(f"There is no standards document {shown(slug)}.")
    return doc


def versions_of(session: Session, doc: StandardsDocument, *, fresh: bool = False) -> list[StandardsVersion]:
    """Every version of ``doc``, ascending by number; ``fresh`` re-reads rows the session holds."""
    stmt = select(StandardsVersion).where(col(StandardsVersion.document_id) == doc.id)
    if fresh:
        stmt = stmt.execution_options(populate_existing=True)
    return sorted(session.exec(stmt).all(), key=number)


def find_version(
    session: Session, doc: StandardsDocument, version: str, *, editor: bool, lock: bool = False
) -> StandardsVersion:
    """One version of ``doc`` by number; drafts only for editors (404 for everybody else, DESIGN §3),
    except drafts put under review: those are public from the opening of their review on.

    A malformed number is a :class:`NotFound` too (it names no resource).
    """
    try:
        major, minor = parse_version(version)
    except Unprocessable as exc:
        raise NotFound(f"There is no version {shown(version)} of {doc.slug!r}.") from exc
    stmt = select(StandardsVersion).where(
        col(StandardsVersion.document_id) == doc.id,
        col(StandardsVersion.major) == major,
        col(StandardsVersion.minor) == minor,
    )
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    row = session.exec(stmt).first()
    if row is None or (row.status == DRAFT and not editor and not under_review(session, row)):
        raise NotFound(f"There is no version {shown(version)} of {doc.slug!r}.")
    return row


def under_review(session: Session, ver: StandardsVersion) -> bool:
    """Whether ``ver`` has (or had) a review period: a draft is public from then on."""
    stmt = select(col(StandardsReview.id)).where(col(StandardsReview.version_id) == ver.id)
    return session.exec(stmt).first() is not None


def in_force_at(versions: Sequence[StandardsVersion], at: dt.datetime) -> StandardsVersion | None:
    """The version in force at the instant ``at``, or ``None`` before the first one took effect.

    That is the published version (current, superseded or withdrawn since) with
    the latest ``effective_from`` not after ``at`` that had not been withdrawn by
    ``at``; of two taking effect at the same instant, the higher number.
    """
    best: StandardsVersion | None = None
    for v in versions:
        if v.published_at is None or v.effective_from is None or v.effective_from > at:
            continue
        if v.withdrawn_at is not None and v.withdrawn_at <= at:
            continue
        if best is None or (v.effective_from, number(v)) > (best.effective_from, number(best)):  # type: ignore[operator]
            best = v
    return best


def next_in_force_change(versions: Sequence[StandardsVersion], now: dt.datetime) -> dt.datetime | None:
    """The next instant after ``now`` at which a published version takes effect (``None``: none
    is scheduled): until then the version in force now stays in force."""
    later = [
        v.effective_from
        for v in versions
        if v.published_at is not None
        and v.withdrawn_at is None
        and v.effective_from is not None
        and v.effective_from > now
    ]
    return min(later, default=None)


def current_of(versions: Sequence[StandardsVersion]) -> StandardsVersion | None:
    """The one ``published`` version among ``versions`` (the current one), or ``None``."""
    for v in versions:
        if v.status == PUBLISHED:
            return v
    return None
