"""Registry tables: schools, their search terms and facets, and the alignment history.

Alignment is self-declared (DOMAIN.md): the tables record who stated what and
when; nothing here grants or certifies.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel

from service.core.db import UTCDateTime

#: The controlled programme vocabulary (DOMAIN.md: programmes in the MBSR/MBCT
#: lineage). Extending it is a one-line change here; input is matched
#: case-insensitively and stored in this spelling.
PROGRAMMES: tuple[str, ...] = (
    "MBSR",
    "MBCT",
    "MSC",
    "MBCP",
    "MBRP",
    "MB-EAT",
    "MBCL",
    "MMFT",
    "MiSP",
)

#: Alignment statuses (DESIGN §2).
STATUSES: tuple[str, ...] = ("none", "aligned", "reaffirmation_due", "lapsed", "withdrawn", "suspended")
#: Statuses in which a listed school counts as affiliated.
AFFILIATED_STATUSES = frozenset({"aligned", "reaffirmation_due"})
LISTINGS: tuple[str, ...] = ("listed", "delisted")


def c_string(length: int) -> sa.types.TypeEngine[str]:
    """A string compared by code point on both databases.

    SQLite's default BINARY collation already compares UTF-8 bytes (code point
    order); on PostgreSQL the column gets ``COLLATE "C"`` so that ordering,
    keyset pagination and prefix ranges (``term >= 'zur' AND term < 'zus'``)
    behave the same whatever the database's default collation is.
    """
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


class School(SQLModel, table=True):
    """A training school and its current alignment.

    ``name_key`` (folded name) and ``id`` give the stable listing order;
    ``website_domain`` is the registrable domain of ``website``; ``contact``
    is private; ``revision`` grows with every change (ETags and caches).
    """

    __tablename__ = "schools"
    __table_args__ = (
        sa.Index("ix_schools_listing_name_key", "listing", "name_key", "id"),
        sa.Index("ix_schools_status_due", "alignment_status", "reaffirmation_due_by"),
    )

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=300)
    name_key: str = Field(sa_column=Column(c_string(300), nullable=False))
    alternate_names: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    country: str = Field(max_length=2, index=True)
    city: str | None = Field(default=None, max_length=200)
    website: str | None = Field(default=None, max_length=500)
    website_domain: str | None = Field(default=None, max_length=255, index=True)
    programmes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    languages: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    listing: str = Field(default="listed", max_length=10)
    contact: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))

    alignment_status: str = Field(default="none", max_length=20)
    aligned_version: str | None = Field(default=None, max_length=20)
    alignment_stated_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    alignment_stated_by: str | None = Field(default=None, max_length=300)
    evidence_url: str | None = Field(default=None, max_length=2000)
    reaffirmation_due_by: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))

    revision: int = Field(default=1)
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class SchoolTerm(SQLModel, table=True):
    """One folded word of a school's name, alternate names or city (the search index).

    ``name_key`` and ``listing`` repeat the school's, so that the
    ``(term, listing, name_key, school_id)`` index alone yields a word's
    schools in listing order (``registry/search.py``); every write that
    changes them rewrites the school's terms.
    """

    __tablename__ = "school_terms"
    __table_args__ = (sa.Index("ix_school_terms_search", "term", "listing", "name_key", "school_id"),)

    school_id: str = Field(
        sa_column=Column(sa.String(40), sa.ForeignKey("schools.id", ondelete="CASCADE"), primary_key=True)
    )
    term: str = Field(sa_column=Column(c_string(64), primary_key=True))
    name_key: str = Field(sa_column=Column(c_string(300), nullable=False))
    listing: str = Field(sa_column=Column(sa.String(10), nullable=False))


class SchoolFacet(SQLModel, table=True):
    """A filterable value of a school: ``programme`` (``MBSR``) or ``language`` (lower-case BCP 47)."""

    __tablename__ = "school_facets"
    __table_args__ = (sa.Index("ix_school_facets_facet_value", "facet", "value"),)

    school_id: str = Field(
        sa_column=Column(sa.String(40), sa.ForeignKey("schools.id", ondelete="CASCADE"), primary_key=True)
    )
    facet: str = Field(sa_column=Column(sa.String(16), primary_key=True))
    value: str = Field(sa_column=Column(c_string(40), primary_key=True))


class AlignmentRecord(SQLModel, table=True):
    """One statement or status change of a school's alignment, with actor and time.

    ``actor`` is the client id (or ``system``) and stays internal; the public
    history shows ``actor_role`` (``school``, ``steward`` or ``system``).
    """

    __tablename__ = "alignment_history"

    id: int | None = Field(
        default=None,
        sa_column=Column(
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    school_id: str = Field(
        sa_column=Column(
            sa.String(40), sa.ForeignKey("schools.id", ondelete="CASCADE"), index=True, nullable=False
        )
    )
    at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    action: str = Field(max_length=32)
    actor_role: str = Field(max_length=16)
    actor: str = Field(max_length=80)
    previous_status: str = Field(max_length=20)
    status: str = Field(max_length=20)
    version: str | None = Field(default=None, max_length=20)
    evidence_url: str | None = Field(default=None, max_length=2000)
    stated_by: str | None = Field(default=None, max_length=300)
    reaffirmation_due_by: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    reason: str | None = Field(default=None, max_length=500)


class StatusList(SQLModel, table=True):
    """A credential status list (draft-ietf-oauth-status-list): ``size`` entries of ``bits`` each.

    Schools get an entry at random in the newest list until ``assigned`` reaches half
    its size; then a new list opens. Lists never shrink or reuse an entry.
    """

    __tablename__ = "status_lists"

    id: int = Field(sa_column=Column(sa.Integer, primary_key=True, autoincrement=False))
    size: int
    bits: int
    assigned: int = Field(default=0)
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class StatusListEntry(SQLModel, table=True):
    """A school's place in a status list, assigned once, and its current status value
    (0 valid, 1 invalid, 2 suspended) that every credential of the school refers to."""

    __tablename__ = "status_list_entries"

    list_id: int = Field(
        sa_column=Column(sa.Integer, sa.ForeignKey("status_lists.id"), primary_key=True, autoincrement=False)
    )
    idx: int = Field(sa_column=Column(sa.Integer, primary_key=True, autoincrement=False))
    school_id: str = Field(
        sa_column=Column(
            sa.String(40), sa.ForeignKey("schools.id", ondelete="CASCADE"), unique=True, nullable=False
        )
    )
    status: int = Field(default=0, sa_column=Column(sa.SmallInteger, nullable=False, default=0))
