"""Sync for every site: events carry filter attributes; endpoints carry filters and may sign
with Ed25519.

- ``events``: ``country``, ``document``, ``language``, ``status`` (nullable), copied from
  each event's data by ``emit()``; existing events get them from their data here, so
  feeds and filters see the whole retained history.
- ``webhook_endpoints``: ``filter_countries``/``filter_documents``/``filter_languages``
  (JSON arrays, ``[]`` = no restriction), ``signature_scheme`` (``hmac-sha256`` for every
  existing endpoint), ``public_key`` and ``previous_public_key`` (``whpk_…``, Ed25519 only).

Revision ID: 0007_sync
Revises: 0006_change_generations
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007_sync"
down_revision = "0006_change_generations"
branch_labels = None
depends_on = None

_ATTRIBUTES = (("country", 8), ("document", 80), ("language", 35), ("status", 32))


def _backfill() -> None:
    """Copy each attribute from the events' data (top-level string members; a school record's
    status is under ``alignment``), cut to the column's length."""
    postgres = op.get_bind().dialect.name == "postgresql"

    def member(path: str) -> str:
        if postgres:
            parts = path.split(".")
            expr = "data::jsonb" + "".join(f"->'{p}'" for p in parts[:-1]) + f"->>'{parts[-1]}'"
            # Only strings: jsonb ->> also renders numbers and objects as text.
            typed = "data::jsonb" + "".join(f"->'{p}'" for p in parts)
            return f"CASE WHEN jsonb_typeof({typed}) = 'string' THEN {expr} END"
        return f"CASE WHEN json_type(data, '$.{path}') = 'text' THEN json_extract(data, '$.{path}') END"

    for name, length in _ATTRIBUTES:
        value = member(name)
        if name == "status":
            value = f"COALESCE({value}, CASE WHEN type LIKE 'school.%' THEN {member('alignment.status')} END)"
        op.execute(f"UPDATE events SET {name} = NULLIF(SUBSTR({value}, 1, {length}), '')")


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        for name, length in _ATTRIBUTES:
            batch.add_column(sa.Column(name, sa.String(length=length), nullable=True))
    _backfill()
    with op.batch_alter_table("webhook_endpoints") as batch:
        for name in ("filter_countries", "filter_documents", "filter_languages"):
            # jsonb on PostgreSQL: the fan-out tests membership on every endpoint row.
            column_type = sa.JSON().with_variant(JSONB(), "postgresql")
            batch.add_column(sa.Column(name, column_type, nullable=False, server_default=sa.text("'[]'")))
        batch.add_column(
            sa.Column("signature_scheme", sa.String(length=16), nullable=False, server_default="hmac-sha256")
        )
        batch.add_column(sa.Column("public_key", sa.String(length=80), nullable=True))
        batch.add_column(sa.Column("previous_public_key", sa.String(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        for name in (
            "previous_public_key",
            "public_key",
            "signature_scheme",
            "filter_languages",
            "filter_documents",
            "filter_countries",
        ):
            batch.drop_column(name)
    with op.batch_alter_table("events") as batch:
        for name, _length in reversed(_ATTRIBUTES):
            batch.drop_column(name)
