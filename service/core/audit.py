"""The audit log: who changed what, and when (every write; read by stewards and editors).

Entries are written in the caller's transaction with :func:`record`; they never
hold secrets, tokens or private contact details (callers pass only ids and
public fields in ``details``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, Session, SQLModel, col, select

from service.core.db import UTCDateTime, utcnow


class AuditEntry(SQLModel, table=True):
    """One write: ``actor`` (client id or ``system``/``cli``), ``action`` (``school.create``…),
    ``target`` (the resource id), ``details`` (public facts only), ``at`` (UTC)."""

    __tablename__ = "audit_log"

    id: int | None = Field(
        default=None,
        sa_column=Column(
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    actor: str = Field(max_length=80)
    action: str = Field(max_length=80, index=True)
    target: str = Field(default="", max_length=200)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


def record(
    session: Session, *, actor: str, action: str, target: str = "", details: dict[str, Any] | None = None
) -> AuditEntry:
    """Add an audit entry to the caller's transaction and return it."""
    entry = AuditEntry(at=utcnow(), actor=actor, action=action, target=target, details=details or {})
    session.add(entry)
    return entry


def list_entries(
    session: Session, *, before_id: int | None = None, action: str | None = None, limit: int = 50
) -> list[AuditEntry]:
    """Newest first; ``before_id`` pages backwards."""
    stmt = select(AuditEntry)
    if before_id is not None:
        stmt = stmt.where(col(AuditEntry.id) < before_id)
    if action:
        stmt = stmt.where(col(AuditEntry.action) == action)
    return list(session.exec(stmt.order_by(col(AuditEntry.id).desc()).limit(limit)))
