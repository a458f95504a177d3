"""Resource identifiers: a short prefix and a ULID (sortable, never reused)."""

from __future__ import annotations

from ulid import ULID


def new_id(prefix: str) -> str:
    """``prefix_`` + a lower-case ULID, e.g. ``sch_01j9…`` (26 characters after the prefix)."""
    return f"{prefix}_{str(ULID()).lower()}"
