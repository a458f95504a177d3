"""Standards documents, versions, sections, clauses, translations.

Revision ID: 0002_standards
Revises: 0001_core
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

from service.core.db import UTCDateTime

revision = "0002_standards"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def _version_fk() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "version_id", AutoString(length=40), sa.ForeignKey("standards_versions.id"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "standards_documents",
        sa.Column("id", AutoString(length=40), primary_key=True),
        sa.Column("slug", AutoString(length=80), nullable=False),
        sa.Column("title", AutoString(length=300), nullable=False),
        sa.Column("language", AutoString(length=35), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_standards_documents_slug", "standards_documents", ["slug"], unique=True)
    op.create_table(
        "standards_versions",
        sa.Column("id", AutoString(length=40), primary_key=True),
        sa.Column(
            "document_id", AutoString(length=40), sa.ForeignKey("standards_documents.id"), nullable=False
        ),
        sa.Column("version", AutoString(length=20), nullable=False),
        sa.Column("major", sa.Integer(), nullable=False),
        sa.Column("minor", sa.Integer(), nullable=False),
        sa.Column("status", AutoString(length=20), nullable=False),
        sa.Column("title", AutoString(length=300), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("based_on", AutoString(length=20), nullable=True),
        sa.Column("content_hash", AutoString(length=80), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("effective_from", UTCDateTime(), nullable=True),
        sa.Column("published_at", UTCDateTime(), nullable=True),
        sa.Column("withdrawn_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("document_id", "major", "minor", name="uq_standards_versions_number"),
    )
    op.create_index("ix_standards_versions_document_id", "standards_versions", ["document_id"])
    op.create_table(
        "standards_sections",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _version_fk(),
        sa.Column("key", AutoString(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", AutoString(length=300), nullable=False),
        sa.Column("intro", sa.Text(), nullable=True),
        sa.UniqueConstraint("version_id", "key", name="uq_standards_sections_key"),
    )
    op.create_index("ix_standards_sections_version_id", "standards_sections", ["version_id"])
    op.create_table(
        "standards_clauses",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _version_fk(),
        sa.Column("section_id", sa.Integer(), sa.ForeignKey("standards_sections.id"), nullable=False),
        sa.Column("key", AutoString(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", AutoString(length=20), nullable=False),
        sa.Column("applies_to", AutoString(length=30), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.UniqueConstraint("version_id", "key", name="uq_standards_clauses_key"),
    )
    op.create_index("ix_standards_clauses_version_id", "standards_clauses", ["version_id"])
    op.create_index("ix_standards_clauses_section_id", "standards_clauses", ["section_id"])
    op.create_table(
        "standards_regional_notes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _version_fk(),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("region", AutoString(length=3), nullable=False),
        sa.Column("target", AutoString(length=40), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
    )
    op.create_index("ix_standards_regional_notes_version_id", "standards_regional_notes", ["version_id"])
    op.create_table(
        "standards_contributors",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _version_fk(),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", AutoString(length=200), nullable=False),
        sa.Column("affiliation", AutoString(length=300), nullable=False),
        sa.Column("region", AutoString(length=100), nullable=False),
    )
    op.create_index("ix_standards_contributors_version_id", "standards_contributors", ["version_id"])
    op.create_table(
        "standards_translations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _version_fk(),
        sa.Column("language", AutoString(length=35), nullable=False),
        sa.Column("status", AutoString(length=20), nullable=False),
        sa.Column("texts", sa.JSON(), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("version_id", "language", name="uq_standards_translations_language"),
    )
    op.create_index("ix_standards_translations_version_id", "standards_translations", ["version_id"])


def downgrade() -> None:
    for table in (
        "standards_translations",
        "standards_contributors",
        "standards_regional_notes",
        "standards_clauses",
        "standards_sections",
        "standards_versions",
        "standards_documents",
    ):
        op.drop_table(table)
