"""Registry: schools, alignment statements and history.

Revision ID: 0003_registry
Revises: 0002_standards
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.core.db import UTCDateTime

revision = "0003_registry"
down_revision = "0002_standards"
branch_labels = None
depends_on = None


def _c_string(length: int) -> sa.types.TypeEngine[str]:
    # Code-point order on PostgreSQL whatever the database collation (see registry.models.c_string).
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "schools",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("name_key", _c_string(300), nullable=False),
        sa.Column("alternate_names", sa.JSON(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("city", sa.String(length=200), nullable=True),
        sa.Column("website", sa.String(length=500), nullable=True),
        sa.Column("website_domain", sa.String(length=255), nullable=True),
        sa.Column("programmes", sa.JSON(), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("listing", sa.String(length=10), nullable=False),
        sa.Column("contact", sa.JSON(), nullable=True),
        sa.Column("alignment_status", sa.String(length=20), nullable=False),
        sa.Column("aligned_version", sa.String(length=20), nullable=True),
        sa.Column("alignment_stated_at", UTCDateTime(), nullable=True),
        sa.Column("alignment_stated_by", sa.String(length=300), nullable=True),
        sa.Column("evidence_url", sa.String(length=2000), nullable=True),
        sa.Column("reaffirmation_due_by", UTCDateTime(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_schools_country", "schools", ["country"])
    op.create_index("ix_schools_website_domain", "schools", ["website_domain"])
    op.create_index("ix_schools_listing_name_key", "schools", ["listing", "name_key", "id"])
    op.create_index("ix_schools_status_due", "schools", ["alignment_status", "reaffirmation_due_by"])
    op.create_table(
        "school_terms",
        sa.Column(
            "school_id",
            sa.String(length=40),
            sa.ForeignKey("schools.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("term", _c_string(64), primary_key=True),
    )
    op.create_index("ix_school_terms_term", "school_terms", ["term"])
    op.create_table(
        "school_facets",
        sa.Column(
            "school_id",
            sa.String(length=40),
            sa.ForeignKey("schools.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("facet", sa.String(length=16), primary_key=True),
        sa.Column("value", _c_string(40), primary_key=True),
    )
    op.create_index("ix_school_facets_facet_value", "school_facets", ["facet", "value"])
    op.create_table(
        "alignment_history",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column(
            "school_id", sa.String(length=40), sa.ForeignKey("schools.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("previous_status", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("version", sa.String(length=20), nullable=True),
        sa.Column("evidence_url", sa.String(length=2000), nullable=True),
        sa.Column("stated_by", sa.String(length=300), nullable=True),
        sa.Column("reaffirmation_due_by", UTCDateTime(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
    )
    op.create_index("ix_alignment_history_school_id", "alignment_history", ["school_id"])


def downgrade() -> None:
    op.drop_index("ix_alignment_history_school_id", table_name="alignment_history")
    op.drop_table("alignment_history")
    op.drop_index("ix_school_facets_facet_value", table_name="school_facets")
    op.drop_table("school_facets")
    op.drop_index("ix_school_terms_term", table_name="school_terms")
    op.drop_table("school_terms")
    op.drop_index("ix_schools_status_due", table_name="schools")
    op.drop_index("ix_schools_listing_name_key", table_name="schools")
    op.drop_index("ix_schools_website_domain", table_name="schools")
    op.drop_index("ix_schools_country", table_name="schools")
    op.drop_table("schools")
