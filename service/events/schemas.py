"""Response shapes of the change feed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field


class EventPublic(BaseModel):
    """One event: ``{"id", "type", "sequence", "timestamp", "data", "log_index"}``."""

    id: str
    type: str
    sequence: int
    timestamp: dt.datetime
    data: dict[str, Any]
    log_index: int = Field(description="its leaf in the transparency log (`/v1/log`): sequence − 1")


class EventList(BaseModel):
    """A page of the feed; pass ``next_cursor`` as ``after`` for the next one."""

    data: list[EventPublic]
    next_cursor: str | None
