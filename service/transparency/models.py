"""Transparency log tables: the tree's hashes, the witnesses and their cosignatures.

Storage of the tree (a hash table, not tiles): ``log_nodes`` holds every
*perfect subtree* hash, keyed by ``(level, idx)`` — level 0 are the leaf hashes,
node ``(l, i)`` covers leaves ``[i * 2**l, (i + 1) * 2**l)``. Appending a leaf adds it
and every subtree it completes (two rows per leaf on average), so the table holds
about ``2n`` rows for ``n`` leaves (at a million events: ~90 MB on SQLite, ~230 MB
on PostgreSQL). Any root or proof at any size is a handful of these rows folded
together (``merkle.py``): one indexed read of at most ``log2(n)**2`` (in practice
under 60) rows per request, whatever the size. Rows are only ever inserted: retention
prunes events from the feed, never hashes from here.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Column, Field, SQLModel

from service.core.db import UTCDateTime


class LogNode(SQLModel, table=True):
    """The hash of the perfect subtree ``(level, idx)``; level 0 is the leaf ``idx``."""

    __tablename__ = "log_nodes"
    #: On SQLite the rows are stored in primary-key order (no separate rowid and index).
    __table_args__ = {"sqlite_with_rowid": False}

    level: int = Field(sa_column=Column(sa.SmallInteger, primary_key=True, autoincrement=False))
    idx: int = Field(sa_column=Column(sa.BigInteger, primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_column=Column(sa.LargeBinary(32), nullable=False))


class LogWitness(SQLModel, table=True):
    """A regional association's witness: an Ed25519 cosigner key registered by a steward.

    ``key_name`` and ``key_id`` (hex, C2SP signed-note) identify its signature
    lines; ``public_key`` is the raw 32-byte key, base64. A removed witness keeps
    its row (its past cosignatures stay explainable) but is no longer trusted.
    """

    __tablename__ = "log_witnesses"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    region: str = Field(max_length=3)
    key_name: str = Field(max_length=200)
    key_id: str = Field(max_length=8)
    public_key: str = Field(sa_column=Column(sa.String(64), nullable=False, unique=True))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    removed_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class LogCosignature(SQLModel, table=True):
    """The newest cosignature a witness posted for the checkpoint of ``tree_size``.

    ``signature`` is the base64 of the signature line's payload (key ID, timestamp,
    Ed25519 signature) as C2SP tlog-cosignature defines it; ``timestamp`` is the
    cosigner's (Unix seconds).
    """

    __tablename__ = "log_cosignatures"
    __table_args__ = (sa.Index("ix_log_cosignatures_tree_size", "tree_size"),)

    witness_id: str = Field(
        sa_column=Column(sa.String(40), sa.ForeignKey("log_witnesses.id"), primary_key=True)
    )
    tree_size: int = Field(sa_column=Column(sa.BigInteger, primary_key=True, autoincrement=False))
    timestamp: int = Field(sa_column=Column(sa.BigInteger, nullable=False))
    signature: str = Field(max_length=200)
    received_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
