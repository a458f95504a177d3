"""Open review of drafts: review periods, comments and their dispositions, clause change notes,
and the organisation a commenting API client stands for.

Revision ID: 0009_review
Revises: 0008_transparency
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

from service.core.db import UTCDateTime

revision = "0009_review"
down_revision = "0008_transparency"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("standards_clauses") as batch:
        batch.add_column(sa.Column("change_note", sa.Text(), nullable=True))
    with op.batch_alter_table("api_clients") as batch:
        batch.add_column(sa.Column("organisation", AutoString(length=200), nullable=True))
        batch.add_column(sa.Column("region", AutoString(length=3), nullable=True))
        batch.add_column(sa.Column("commenter_type", AutoString(length=20), nullable=True))
    op.create_table(
        "standards_reviews",
        sa.Column("id", AutoString(length=40), primary_key=True),
        sa.Column(
            "version_id",
            AutoString(length=40),
            sa.ForeignKey("standards_versions.id"),
            nullable=False,
            unique=True,
        ),
        sa.Column("opens_at", UTCDateTime(), nullable=False),
        sa.Column("closes_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("opened_by", AutoString(length=40), nullable=False),
        sa.Column("totals", sa.JSON(), nullable=True),
    )
    op.create_index("ix_standards_reviews_closes_at", "standards_reviews", ["closes_at"])
    op.create_table(
        "standards_comments",
        sa.Column("id", AutoString(length=40), primary_key=True),
        sa.Column(
            "version_id", AutoString(length=40), sa.ForeignKey("standards_versions.id"), nullable=False
        ),
        sa.Column("review_id", AutoString(length=40), sa.ForeignKey("standards_reviews.id"), nullable=False),
        sa.Column("client_id", AutoString(length=40), nullable=False),
        sa.Column("organisation", AutoString(length=200), nullable=False),
        sa.Column("region", AutoString(length=3), nullable=False),
        sa.Column("commenter_type", AutoString(length=20), nullable=False),
        sa.Column("clause_key", AutoString(length=40), nullable=True),
        sa.Column("section_key", AutoString(length=40), nullable=True),
        sa.Column("quote", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("proposed_text", sa.Text(), nullable=True),
        sa.Column("content_hash", AutoString(length=80), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("withdrawn_at", UTCDateTime(), nullable=True),
        sa.Column("outcome", AutoString(length=30), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("disposed_at", UTCDateTime(), nullable=True),
    )
    # Keyset pages of one version's comments, whole or filtered by clause or region.
    op.create_index("ix_standards_comments_version_page", "standards_comments", ["version_id", "id"])
    op.create_index(
        "ix_standards_comments_version_clause", "standards_comments", ["version_id", "clause_key", "id"]
    )
    op.create_index(
        "ix_standards_comments_version_region", "standards_comments", ["version_id", "region", "id"]
    )
    # The publish gate (comments without an outcome) and the accepted ones, from the index alone.
    op.create_index(
        "ix_standards_comments_version_outcome",
        "standards_comments",
        ["version_id", "outcome", "withdrawn_at", "clause_key", "id"],
    )


def downgrade() -> None:
    op.drop_table("standards_comments")
    op.drop_table("standards_reviews")
    with op.batch_alter_table("api_clients") as batch:
        batch.drop_column("commenter_type")
        batch.drop_column("region")
        batch.drop_column("organisation")
    with op.batch_alter_table("standards_clauses") as batch:
        batch.drop_column("change_note")
