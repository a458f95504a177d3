"""Standards documents, versions, sections, clauses, translations.

Revision ID: 0002_standards
Revises: 0001_core
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

from service.db import UTCDateTime  # noqa: F401

revision = "0002_standards"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
