"""The transactional outbox: one row per public domain event (DESIGN §2 "Event")."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel

from service.core.db import UTCDateTime


class Event(SQLModel, table=True):
    """A public change. ``sequence`` is gap-free and increasing over all events, from 1.

    ``country``, ``document``, ``language`` and ``status`` are the event's *filter
    attributes* (``service.events.service.ATTRIBUTES``), copied from its data when it is
    written, so that feeds and webhook filters select events in SQL on both databases;
    ``None`` where the event has no such attribute (a publish has no country).

    ``previous_country`` and ``previous_status`` hold what a change moved away from: a
    school's country before a ``school.updated`` that moved it, its alignment status before
    a ``school.alignment.changed``; ``None`` when the event did not change it. A filter on
    ``country`` or ``status`` matches either value, so a reader filtered on the old one sees
    the school leave.
    """

    __tablename__ = "events"

    id: str = Field(primary_key=True, max_length=40)
    sequence: int = Field(sa_column=Column(sa.BigInteger, unique=True, nullable=False))
    type: str = Field(max_length=64, index=True)
    timestamp: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    country: str | None = Field(default=None, max_length=8)
    document: str | None = Field(default=None, max_length=80)
    language: str | None = Field(default=None, max_length=35)
    status: str | None = Field(default=None, max_length=32)
    previous_country: str | None = Field(default=None, max_length=8)
    previous_status: str | None = Field(default=None, max_length=32)


class EventCounter(SQLModel, table=True):
    """The single-row sequence allocator.

    ``UPDATE … SET value = value + 1 RETURNING value`` locks this row until the
    transaction ends, so sequences are handed out in commit order and a
    rollback returns its number: the feed has no gaps and no reordering.
    """

    __tablename__ = "event_counter"

    id: int = Field(default=1, primary_key=True)
    value: int = Field(default=0, sa_column=Column(sa.BigInteger, nullable=False))
    #: Highest sequence removed by retention; the feed answers 410 below it.
    pruned_through: int = Field(default=0, sa_column=Column(sa.BigInteger, nullable=False))
