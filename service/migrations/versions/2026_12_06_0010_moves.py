"""Events remember what a change moved away from, so filtered readers see a school leave.

- ``events``: ``previous_country`` (a ``school.updated`` that moved the school to another
  country) and ``previous_status`` (a ``school.alignment.changed``: the status before it),
  nullable, set only when the event changed the value. A filter on ``country`` or ``status``
  matches either value. Existing alignment changes get ``previous_status`` from their data;
  past moves cannot be recovered (their data holds the new country only), so they stay
  ``NULL`` and are seen, as before, by the new country's readers only.

Revision ID: 0010_moves
Revises: 0009_review
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_moves"
down_revision = "0009_review"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("previous_country", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("previous_status", sa.String(length=32), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        previous = (
            "CASE WHEN jsonb_typeof(data::jsonb->'previous_status') = 'string' "
            "THEN data::jsonb->>'previous_status' END"
        )
    else:
        previous = (
            "CASE WHEN json_type(data, '$.previous_status') = 'text' "
            "THEN json_extract(data, '$.previous_status') END"
        )
    op.execute(
        f"UPDATE events SET previous_status = NULLIF(SUBSTR({previous}, 1, 32), '') "
        "WHERE type = 'school.alignment.changed'"
    )
    # Unchanged (a renewal: aligned -> aligned) is not a move away from anything.
    op.execute("UPDATE events SET previous_status = NULL WHERE previous_status = status")


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("previous_status")
        batch.drop_column("previous_country")
