"""Tables of the standards publication (DESIGN §2): documents, versions and their content.

A version's content lives in child tables (sections, clauses, regional notes,
contributors) so clauses can be looked up by their stable key; translations
keep their texts as one JSON object per (version, language). Positions are
1-based and dense within their parent. Published content never changes
(``service.py`` enforces it; ``content_hash`` proves it).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel

from service.core.db import UTCDateTime

#: Version lifecycle (DESIGN §2): draft -> published -> superseded | withdrawn.
DRAFT, PUBLISHED, SUPERSEDED, WITHDRAWN = "draft", "published", "superseded", "withdrawn"
STATUSES = (DRAFT, PUBLISHED, SUPERSEDED, WITHDRAWN)
#: Statuses of versions that were published and not withdrawn.
RELEASED = (PUBLISHED, SUPERSEDED)

CLAUSE_KINDS = ("requirement", "recommendation", "guidance")
APPLIES_TO = ("teacher", "trainer", "training_organisation")


class StandardsDocument(SQLModel, table=True):
    """A standards document: ``slug`` (URL key), ``title``, ``language`` (BCP 47 source language).

    Publishes of one document are serialised by locking this row.
    """

    __tablename__ = "standards_documents"

    id: str = Field(primary_key=True, max_length=40)
    slug: str = Field(max_length=80, unique=True, index=True)
    title: str = Field(max_length=300)
    language: str = Field(max_length=35)
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class StandardsVersion(SQLModel, table=True):
    """One version ``major.minor`` of a document and its lifecycle.

    ``revision`` grows with every change of the row or its content (edits,
    translations, status), so representations can be told apart cheaply.
    ``content_hash`` is ``sha256:<hex>`` over the canonical content; on a
    draft it follows the edits, on a published version it is frozen.
    """

    __tablename__ = "standards_versions"
    __table_args__ = (
        sa.UniqueConstraint("document_id", "major", "minor", name="uq_standards_versions_number"),
    )

    id: str = Field(primary_key=True, max_length=40)
    document_id: str = Field(foreign_key="standards_documents.id", max_length=40, index=True)
    version: str = Field(max_length=20)
    major: int
    minor: int
    status: str = Field(max_length=20)
    title: str = Field(max_length=300)
    summary: str = Field(default="", sa_column=Column(sa.Text(), nullable=False))
    based_on: str | None = Field(default=None, max_length=20)
    content_hash: str = Field(max_length=80)
    revision: int = Field(default=1)
    effective_from: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    published_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    withdrawn_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class StandardsSection(SQLModel, table=True):
    """A section of a version: stable ``key``, ``position`` (1-based), ``title``, optional ``intro``."""

    __tablename__ = "standards_sections"
    __table_args__ = (sa.UniqueConstraint("version_id", "key", name="uq_standards_sections_key"),)

    id: int | None = Field(default=None, primary_key=True)
    version_id: str = Field(foreign_key="standards_versions.id", max_length=40, index=True)
    key: str = Field(max_length=40)
    position: int
    title: str = Field(max_length=300)
    intro: str | None = Field(default=None, sa_column=Column(sa.Text()))


class StandardsClause(SQLModel, table=True):
    """A clause: stable ``key`` (unique within the version, persists across versions),
    ``position`` within its section, ``kind``, ``applies_to``, ``text`` (Markdown) and an
    optional ``change_note`` (Markdown: why the clause changed in this version)."""

    __tablename__ = "standards_clauses"
    __table_args__ = (sa.UniqueConstraint("version_id", "key", name="uq_standards_clauses_key"),)

    id: int | None = Field(default=None, primary_key=True)
    version_id: str = Field(foreign_key="standards_versions.id", max_length=40, index=True)
    section_id: int = Field(foreign_key="standards_sections.id", index=True)
    key: str = Field(max_length=40)
    position: int
    kind: str = Field(max_length=20)
    applies_to: str = Field(max_length=30)
    text: str = Field(sa_column=Column(sa.Text(), nullable=False))
    change_note: str | None = Field(default=None, sa_column=Column(sa.Text()))


class StandardsRegionalNote(SQLModel, table=True):
    """Context for one ``region`` (ISO 3166-1 alpha-2 or UN M49 code) on a clause or section ``target``."""

    __tablename__ = "standards_regional_notes"

    id: int | None = Field(default=None, primary_key=True)
    version_id: str = Field(foreign_key="standards_versions.id", max_length=40, index=True)
    position: int
    region: str = Field(max_length=3)
    target: str = Field(max_length=40)
    text: str = Field(sa_column=Column(sa.Text(), nullable=False))


class StandardsContributor(SQLModel, table=True):
    """A working-party member credited in a version: ``name``, ``affiliation``, ``region``."""

    __tablename__ = "standards_contributors"

    id: int | None = Field(default=None, primary_key=True)
    version_id: str = Field(foreign_key="standards_versions.id", max_length=40, index=True)
    position: int
    name: str = Field(max_length=200)
    affiliation: str = Field(default="", max_length=300)
    region: str = Field(default="", max_length=100)


class StandardsTranslation(SQLModel, table=True):
    """A version's texts in another ``language`` (BCP 47, normalised).

    ``texts`` = ``{"title", "summary", "sections": {key: {"title", "intro"}},
    "clauses": {key: text}}``. ``status`` is ``draft`` (editable) or
    ``published`` (immutable).
    """

    __tablename__ = "standards_translations"
    __table_args__ = (
        sa.UniqueConstraint("version_id", "language", name="uq_standards_translations_language"),
    )

    id: int | None = Field(default=None, primary_key=True)
    version_id: str = Field(foreign_key="standards_versions.id", max_length=40, index=True)
    language: str = Field(max_length=35)
    status: str = Field(max_length=20)
    texts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    published_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    updated_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


#: Review states (computed: a review is open until ``closes_at`` or until it was closed early).
REVIEW_OPEN, REVIEW_CLOSED = "open", "closed"
#: What an editor decided about a comment.
OUTCOMES = ("accepted", "accepted_with_changes", "declined", "noted")
#: Outcomes that took a comment in (their ids are named where the clause changed).
ACCEPTED = ("accepted", "accepted_with_changes")
#: Comment states: awaiting a disposition, disposed, or withdrawn by its commenter.
PENDING, DISPOSED, WITHDRAWN_COMMENT = "pending", "disposed", "withdrawn"
COMMENT_STATES = (PENDING, DISPOSED, WITHDRAWN_COMMENT)


class StandardsReview(SQLModel, table=True):
    """The public review period of a draft (at most one per version).

    Open from ``opens_at`` until ``closes_at``, or until ``closed_at`` when an
    editor closed it early; ``closed_at`` is also set (to ``closes_at``) when
    the ``standards.review.close`` job announces a review that ran out. While
    and after a review, the draft is public. ``totals`` (``{"comments",
    "organisations", "regions"}``) is written when ``closed_at`` is: no comment
    is added or withdrawn after a review closed, so they never change again.
    """

    __tablename__ = "standards_reviews"

    id: str = Field(primary_key=True, max_length=40)
    version_id: str = Field(foreign_key="standards_versions.id", max_length=40, unique=True)
    opens_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    closes_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    closed_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    summary: str = Field(default="", sa_column=Column(sa.Text(), nullable=False))
    opened_by: str = Field(max_length=40)
    totals: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class StandardsComment(SQLModel, table=True):
    """A comment on a draft under review, by an API client that stands for an organisation.

    ``client_id`` (who may withdraw or edit it) is never shown; ``organisation``,
    ``region`` and ``commenter_type`` are copied from the client when the comment
    is written. ``clause_key``/``section_key`` anchor it (both ``None``: a general
    comment); ``content_hash`` is the draft's content it was written against.
    ``outcome``/``response`` are the editor's disposition.
    """

    __tablename__ = "standards_comments"
    __table_args__ = (
        sa.Index("ix_standards_comments_version_page", "version_id", "id"),
        sa.Index("ix_standards_comments_version_clause", "version_id", "clause_key", "id"),
        sa.Index("ix_standards_comments_version_region", "version_id", "region", "id"),
        # the publish gate (no outcome yet) and the accepted ones, from the index alone
        sa.Index(
            "ix_standards_comments_version_outcome",
            "version_id",
            "outcome",
            "withdrawn_at",
            "clause_key",
            "id",
        ),
    )

    id: str = Field(primary_key=True, max_length=40)
    version_id: str = Field(foreign_key="standards_versions.id", max_length=40)
    review_id: str = Field(foreign_key="standards_reviews.id", max_length=40)
    client_id: str = Field(max_length=40)
    organisation: str = Field(max_length=200)
    region: str = Field(max_length=3)
    commenter_type: str = Field(max_length=20)
    clause_key: str | None = Field(default=None, max_length=40)
    section_key: str | None = Field(default=None, max_length=40)
    quote: str | None = Field(default=None, sa_column=Column(sa.Text()))
    text: str = Field(sa_column=Column(sa.Text(), nullable=False))
    proposed_text: str | None = Field(default=None, sa_column=Column(sa.Text()))
    content_hash: str = Field(max_length=80)
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    withdrawn_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    outcome: str | None = Field(default=None, max_length=30)
    response: str | None = Field(default=None, sa_column=Column(sa.Text()))
    disposed_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
