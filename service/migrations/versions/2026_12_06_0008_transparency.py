"""Transparency log and credential status lists.

- ``log_nodes``: every perfect subtree hash of the log's Merkle tree (level 0: the leaves);
- ``log_witnesses`` and ``log_cosignatures``: regional associations' cosigner keys and the
  cosignatures they posted;
- ``status_lists`` and ``status_list_entries``: the credential status lists and each
  school's entry.

The tables start empty. ``imi-api migrate`` (and ``serve``) then append the events already
in the database to the log and give every existing school its status list entry
(``service.main.backfill``): data steps live in the service's code, which knows how to hash
a leaf and draw an entry, not in a revision frozen in time.

Revision ID: 0008_transparency
Revises: 0007_sync
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from service.core.db import UTCDateTime

revision = "0008_transparency"
down_revision = "0007_sync"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_nodes",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "log_witnesses",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("region", sa.String(length=3), nullable=False),
        sa.Column("key_name", sa.String(length=200), nullable=False),
        sa.Column("key_id", sa.String(length=8), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("removed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("public_key"),
    )
    op.create_table(
        "log_cosignatures",
        sa.Column("witness_id", sa.String(length=40), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("signature", sa.String(length=200), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["witness_id"], ["log_witnesses.id"]),
        sa.PrimaryKeyConstraint("witness_id", "tree_size"),
    )
    op.create_index("ix_log_cosignatures_tree_size", "log_cosignatures", ["tree_size"])
    op.create_table(
        "status_lists",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("bits", sa.Integer(), nullable=False),
        sa.Column("assigned", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "status_list_entries",
        sa.Column("list_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("school_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(["list_id"], ["status_lists.id"]),
        sa.ForeignKeyConstraint(["school_id"], ["schools.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("list_id", "idx"),
        sa.UniqueConstraint("school_id"),
    )


def downgrade() -> None:
    op.drop_table("status_list_entries")
    op.drop_table("status_lists")
    op.drop_index("ix_log_cosignatures_tree_size", table_name="log_cosignatures")
    op.drop_table("log_cosignatures")
    op.drop_table("log_witnesses")
    op.drop_table("log_nodes")
