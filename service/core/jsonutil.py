"""JSON serialisation used everywhere bytes leave the service.

UTF-8 with non-ASCII characters as they are (no ``\\u`` escapes, DESIGN §5),
compact separators, datetimes as RFC 3339 UTC.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from pydantic import BaseModel


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return isoformat(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """Serialise ``value`` to compact UTF-8 JSON bytes."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_default).encode()


def isoformat(value: dt.datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix; naive input is an error (``ValueError``)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
