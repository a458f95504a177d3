"""Registry: schools, alignment statements and history.

Revision ID: 0003_registry
Revises: 0002_standards
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

from service.db import UTCDateTime  # noqa: F401

revision = "0003_registry"
down_revision = "0002_standards"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
