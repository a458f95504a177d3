"""Search terms carry their school's sort key and listing, indexed for index-only search.

``school_terms`` gains ``name_key`` and ``listing`` (copied from ``schools``);
the ``(term)`` index becomes ``(term, listing, name_key, school_id)``, so a
selective word's schools come in listing order from the index alone
(``registry/search.py``).

Revision ID: 0005_search_terms
Revises: 0004_webhooks
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_search_terms"
down_revision = "0004_webhooks"
branch_labels = None
depends_on = None


def _c_string(length: int) -> sa.types.TypeEngine[str]:
    # Code-point order on PostgreSQL whatever the database collation (see registry.models.c_string).
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("school_terms") as batch:
        batch.add_column(sa.Column("name_key", _c_string(300), nullable=True))
        batch.add_column(sa.Column("listing", sa.String(length=10), nullable=True))
    op.execute(
        "UPDATE school_terms SET "
        "name_key = (SELECT s.name_key FROM schools s WHERE s.id = school_terms.school_id), "
        "listing = (SELECT s.listing FROM schools s WHERE s.id = school_terms.school_id)"
    )
    with op.batch_alter_table("school_terms") as batch:
        batch.alter_column("name_key", existing_type=_c_string(300), nullable=False)
        batch.alter_column("listing", existing_type=sa.String(length=10), nullable=False)
        batch.drop_index("ix_school_terms_term")
        batch.create_index("ix_school_terms_search", ["term", "listing", "name_key", "school_id"])


def downgrade() -> None:
    with op.batch_alter_table("school_terms") as batch:
        batch.drop_index("ix_school_terms_search")
        batch.create_index("ix_school_terms_term", ["term"])
        batch.drop_column("listing")
        batch.drop_column("name_key")
