"""Webhook endpoints, deliveries and attempts.

Revision ID: 0004_webhooks
Revises: 0003_registry
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

from service.db import UTCDateTime  # noqa: F401

revision = "0004_webhooks"
down_revision = "0003_registry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
