"""Change generations: one row per domain of public data, counting the transactions that changed it.

The in-memory caches of public reads compare these numbers (one small query every
half second) to learn what other processes changed (``core/changes.py``).

Revision ID: 0006_change_generations
Revises: 0005_search_terms
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_change_generations"
down_revision = "0005_search_terms"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "change_generations",
        sa.Column("domain", sa.String(length=40), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("domain"),
    )


def downgrade() -> None:
    op.drop_table("change_generations")
