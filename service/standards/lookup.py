"""Finding standards documents and versions: by slug, by ``major.minor`` number, the current one.

Shared by the read side (``views.py``) and the write side (``service.py``).
Writers pass ``lock=True``: ``SELECT … FOR UPDATE`` on PostgreSQL (SQLite
writers are serialised by ``BEGIN IMMEDIATE``) with ``populate_existing``, so
what they read after the lock is what other transactions committed before it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlmodel import Session, col, select

from service.core.errors import NotFound, Unprocessable
from service.standards.models import DRAFT, PUBLISHED, StandardsDocument, StandardsVersion
from service.standards.schemas import VERSION_PATTERN

_VERSION = re.compile(VERSION_PATTERN)


def parse_version(value: str) -> tuple[int, int]:
    """``"2.10"`` -> ``(2, 10)``; :class:`Unprocessable` when not ``major.minor``."""
    if not _VERSION.fullmatch(value or ""):
        raise Unprocessable(f"{value!r} is not a version number of the form major.minor (e.g. '2.0').")
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
        raise NotFound(f"There is no standards document {slug!r}.")
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
    """One version of ``doc`` by number; drafts only for editors (404 for everybody else, DESIGN §3).

    A malformed number is a :class:`NotFound` too (it names no resource).
    """
    try:
        major, minor = parse_version(version)
    except Unprocessable as exc:
        raise NotFound(f"There is no version {version!r} of {doc.slug!r}.") from exc
    stmt = select(StandardsVersion).where(
        col(StandardsVersion.document_id) == doc.id,
        col(StandardsVersion.major) == major,
        col(StandardsVersion.minor) == minor,
    )
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    row = session.exec(stmt).first()
    if row is None or (row.status == DRAFT and not editor):
        raise NotFound(f"There is no version {version!r} of {doc.slug!r}.")
    return row


def current_of(versions: Sequence[StandardsVersion]) -> StandardsVersion | None:
    """The one ``published`` version among ``versions`` (the current one), or ``None``."""
    for v in versions:
        if v.status == PUBLISHED:
            return v
    return None
