"""The ``imi-backup`` format (see the package docstring): its constants, what a public
export keeps, how column values are written as JSON and read back, and what export and
import share (the summary, the error, the progress sink, the schema revision).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

FORMAT = "imi-backup"
VERSION = 1
BATCH_ROWS = 500

#: Tables a ``--public`` export keeps; every other table is private by default.
PUBLIC_TABLES = frozenset(
    {
        "events",
        "event_counter",
        "standards_documents",
        "standards_versions",
        "standards_sections",
        "standards_clauses",
        "standards_regional_notes",
        "standards_contributors",
        "standards_translations",
        "schools",
        "school_terms",
        "school_facets",
        "alignment_history",
        # The transparency log is public through /v1/log; status list contents through their
        # tokens (which school holds which entry is not listed anywhere: left out).
        "log_nodes",
        "log_witnesses",
        "log_cosignatures",
        "status_lists",
    }
)
#: Columns of public tables that a ``--public`` export leaves out.
PRIVATE_COLUMNS: dict[str, frozenset[str]] = {
    "schools": frozenset({"contact"}),
    "alignment_history": frozenset({"actor"}),  # a client id; the public history shows actor_role
}
#: Column names that are never public, whatever their table (a safety net for new columns).
PRIVATE_COLUMN_PATTERN = re.compile(r"secret|password|passphrase|token|_hash$|email|phone|contact", re.I)
#: Row filters of a ``--public`` export: a row is kept when its filter returns True.
PUBLIC_ROWS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "standards_versions": lambda row: row.get("status") != "draft",
    "standards_translations": lambda row: row.get("status") != "draft",
    "schools": lambda row: row.get("listing") == "listed",
}
#: Tables the migrations fill (so an "empty" database has rows there); import replaces them.
MIGRATION_SEEDED = frozenset({"event_counter"})


class ProgressSink(Protocol):
    """Where an export or import reports how far it got (the CLI draws a progress bar)."""

    def start(self, total: int, unit: str) -> None:
        """The work ahead: ``total`` ``unit``s (``rows`` for an export, ``bytes`` for an import)."""

    def advance(self, amount: int) -> None:
        """``amount`` more ``unit``s are done."""


class BackupError(Exception):
    """The backup cannot be written or restored; the message says why."""


@dataclass
class Summary:
    """What an export or import moved: rows per table."""

    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def service_metadata() -> sa.MetaData:
    """The metadata of every table of the service (``service.models``)."""
    from service.models import metadata

    return metadata


# --- values ---------------------------------------------------------------------------


def column_kind(column: sa.Column[Any]) -> str:
    """How a column's values are written: ``plain``, ``json``, ``bytes``, ``datetime``, ``date``,
    ``time``, ``interval``, ``decimal`` or ``uuid``."""
    col_type: Any = column.type
    while isinstance(col_type, sa.types.TypeDecorator):
        col_type = col_type.impl_instance
    if isinstance(col_type, sa.JSON):
        return "json"
    if isinstance(col_type, sa.LargeBinary):
        return "bytes"
    if isinstance(col_type, sa.DateTime):
        return "datetime"
    if isinstance(col_type, sa.Date):
        return "date"
    if isinstance(col_type, sa.Time):
        return "time"
    if isinstance(col_type, sa.Interval):
        return "interval"
    if isinstance(col_type, sa.Numeric) and not isinstance(col_type, sa.Float):
        return "decimal"
    if isinstance(col_type, sa.Uuid):
        return "uuid"
    return "plain"


def encode(kind: str, value: Any) -> Any:
    """A column value of ``kind`` as JSON."""
    if value is None or kind in ("plain", "json"):
        return value
    if kind == "bytes":
        return base64.b64encode(bytes(value)).decode("ascii")
    if kind in ("datetime", "date", "time"):
        return value.isoformat()
    if kind == "interval":
        return value.total_seconds()
    if kind in ("decimal", "uuid"):
        return str(value)
    return value


def decode(kind: str, value: Any) -> Any:
    """The column value of ``kind`` that :func:`encode` wrote."""
    if value is None or kind in ("plain", "json"):
        return value
    if kind == "bytes":
        return base64.b64decode(value)
    if kind == "datetime":
        return dt.datetime.fromisoformat(value)
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "time":
        return dt.time.fromisoformat(value)
    if kind == "interval":
        return dt.timedelta(seconds=value)
    if kind == "decimal":
        return decimal.Decimal(value)
    if kind == "uuid":
        return uuid.UUID(value)
    return value


def json_line(obj: Any) -> str:
    """One line of the file: compact JSON, UTF-8 as it is, ``\\n``-terminated."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


# --- schema revision --------------------------------------------------------------------


def schema_revision(conn: Connection) -> str:
    """The database's Alembic revision(s), comma-separated (``""`` when not migrated)."""
    from alembic.runtime.migration import MigrationContext

    heads = MigrationContext.configure(conn).get_current_heads()
    return ",".join(sorted(heads))
