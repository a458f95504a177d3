"""``imi-api export`` / ``imi-api import``: a complete backup as JSON Lines.

Format ``imi-backup`` version 1, UTF-8, one JSON object per line:

1. a header ``{"format": "imi-backup", "version": 1, "schema_revision": "<alembic
   revision>", "created_at": "<RFC 3339>", "public": false, "tables": [...]}``;
2. one line per row, ``{"table": "<name>", "row": {"<column>": value, ...}}``,
   tables in foreign-key dependency order, rows in primary-key order;
3. a trailer ``{"trailer": {"rows": {"<table>": <count>, ...}}}`` — a file
   without it (or with other counts) was cut short and is refused.

Generic over ``service.models.metadata``: a table added later is exported
and imported without touching this module. Values are JSON as they are, except
timestamps (ISO 8601 with offset), dates and times (ISO 8601), binary (base64),
decimals (strings) and intervals (seconds). Counters live in tables
(``event_counter``) and travel with them; PostgreSQL sequences behind integer
keys are moved past the imported ids.

The file is written to a temporary file created with mode 0600 and renamed, so
it is never readable by others and never half-written under its final name.

``--public`` writes only what the API shows everyone: the tables in
:data:`PUBLIC_TABLES` (a table added later stays out until it is listed),
without :data:`PRIVATE_COLUMNS` or columns that look private (secrets,
hashes, tokens, e-mail, phone, contact; or ``Column(info={"private": True})``),
and without rows the public cannot see (:data:`PUBLIC_ROWS`: drafts, delisted
schools) or rows that belong to them. A public export is for sharing, not for
restoring: import refuses it.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
import json
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from service.core.db import utcnow

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


def _metadata() -> sa.MetaData:
    from service.models import metadata

    return metadata


# --- values ---------------------------------------------------------------------------


def _kind(column: sa.Column[Any]) -> str:
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


def _encode(kind: str, value: Any) -> Any:
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


def _decode(kind: str, value: Any) -> Any:
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


def _line(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


# --- schema revision --------------------------------------------------------------------


def schema_revision(conn: Connection) -> str:
    """The database's Alembic revision(s), comma-separated (``""`` when not migrated)."""
    from alembic.runtime.migration import MigrationContext

    heads = MigrationContext.configure(conn).get_current_heads()
    return ",".join(sorted(heads))


# --- export -----------------------------------------------------------------------------


def _private_columns(table: sa.Table) -> set[str]:
    private = set(PRIVATE_COLUMNS.get(table.name, ()))
    for column in table.columns:
        if column.info.get("private") or PRIVATE_COLUMN_PATTERN.search(column.name):
            private.add(column.name)
    return private


def _excluded_by_parent(
    table: sa.Table, row: dict[str, Any], excluded: dict[str, set[tuple[Any, ...]]]
) -> bool:
    for fk in table.foreign_key_constraints:
        parent = fk.referred_table.name
        gone = excluded.get(parent)
        if gone and tuple(row[c.name] for c in fk.columns) in gone:
            return True
    return False


def _rows(conn: Connection, table: sa.Table) -> Iterator[dict[str, Any]]:
    order = list(table.primary_key.columns) or list(table.columns)
    result = conn.execution_options(yield_per=BATCH_ROWS).execute(sa.select(table).order_by(*order))
    for row in result.mappings():
        yield dict(row)


def export_backup(
    engine: Engine, out: IO[str], *, public: bool = False, progress: ProgressSink | None = None
) -> Summary:
    """Write the whole database (or its public part) to ``out`` in one consistent snapshot.

    Rows are read from a cursor :data:`BATCH_ROWS` at a time, so memory stays bounded
    whatever the size of the database; ``progress`` hears of every row read.
    """
    metadata = _metadata()
    tables = [t for t in metadata.sorted_tables if not public or t.name in PUBLIC_TABLES]
    summary = Summary()
    conn_opts: dict[str, Any] = {"imi_readonly": True}
    if engine.dialect.name == "postgresql":
        conn_opts["isolation_level"] = "REPEATABLE READ"
    with engine.connect().execution_options(**conn_opts) as conn, conn.begin():
        header = {
            "format": FORMAT,
            "version": VERSION,
            "schema_revision": schema_revision(conn),
            "created_at": utcnow().isoformat().replace("+00:00", "Z"),
            "public": public,
            "tables": [t.name for t in tables],
        }
        out.write(_line(header))
        if progress is not None:
            progress.start(
                sum(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() for t in tables),
                "rows",
            )
        # Keys of rows left out of a public export, per table, so that rows
        # referring to them (a draft's clauses) are left out too.
        excluded: dict[str, set[tuple[Any, ...]]] = {}
        for table in tables:
            kinds = {c.name: _kind(c) for c in table.columns}
            private = _private_columns(table) if public else set()
            keep = PUBLIC_ROWS.get(table.name) if public else None
            pk = [c.name for c in table.primary_key.columns]
            count = 0
            for row in _rows(conn, table):
                if progress is not None:
                    progress.advance(1)
                if public and (
                    (keep is not None and not keep(row)) or _excluded_by_parent(table, row, excluded)
                ):
                    excluded.setdefault(table.name, set()).add(tuple(row[c] for c in pk))
                    continue
                encoded = {
                    name: _encode(kinds[name], value) for name, value in row.items() if name not in private
                }
                out.write(_line({"table": table.name, "row": encoded}))
                count += 1
            summary.rows[table.name] = count
        out.write(_line({"trailer": {"rows": summary.rows}}))
    return summary


def export_to_file(
    engine: Engine, path: Path, *, public: bool = False, progress: ProgressSink | None = None
) -> Summary:
    """Export to ``path`` (created or replaced, mode 0600, written atomically)."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, 0o600)  # mkstemp already does; say it where it matters
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            summary = export_backup(engine, out, public=public, progress=progress)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    return summary


# --- import -----------------------------------------------------------------------------


def _non_empty_tables(conn: Connection, metadata: sa.MetaData) -> list[str]:
    names = []
    for table in metadata.sorted_tables:
        if table.name in MIGRATION_SEEDED:
            continue
        if conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first() is not None:
            names.append(table.name)
    return names


def _reset_sequences(conn: Connection, metadata: sa.MetaData) -> None:
    """Move PostgreSQL sequences behind integer keys past the imported ids."""
    if conn.dialect.name != "postgresql":
        return  # SQLite's rowid keys continue from max(id) by themselves
    for table in metadata.sorted_tables:
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not isinstance(pk[0].type, sa.Integer):
            continue
        col = pk[0].name
        conn.execute(
            sa.text(
                f'SELECT setval(pg_get_serial_sequence(:t, :c), COALESCE(MAX("{col}"), 1), '
                f'MAX("{col}") IS NOT NULL) FROM "{table.name}"'
            ),
            {"t": table.name, "c": col},
        )


def import_backup(
    engine: Engine, lines: IO[str], *, replace: bool = False, progress: ProgressSink | None = None
) -> Summary:
    """Restore a backup into a migrated database, in one transaction.

    The file is read line by line and written :data:`BATCH_ROWS` rows at a time (memory
    stays bounded); ``progress`` hears of the bytes read (it was started by the caller).

    The database must be at the backup's schema revision and hold no data
    (``replace=True`` deletes what is there first). Raises
    :class:`BackupError` for a foreign, newer, public or truncated file.
    """
    metadata = _metadata()
    tables = {t.name: t for t in metadata.sorted_tables}
    first = lines.readline()
    if progress is not None:
        progress.advance(len(first.encode()))
    try:
        header = json.loads(first)
    except json.JSONDecodeError as exc:
        raise BackupError("not an imi-backup file (no JSON header line)") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BackupError("not an imi-backup file")
    if header.get("version") != VERSION:
        raise BackupError(f"backup format version {header.get('version')} is not supported (need {VERSION})")
    if header.get("public"):
        raise BackupError("this is a public export (private data left out); it cannot restore a database")
    summary = Summary()
    with engine.connect() as conn, conn.begin():
        revision = schema_revision(conn)
        if revision != header.get("schema_revision"):
            raise BackupError(
                f"the database is at schema revision {revision or 'none'!r} but the backup was taken at "
                f"{header.get('schema_revision')!r}: migrate an empty database to that revision first"
            )
        occupied = _non_empty_tables(conn, metadata)
        if occupied and not replace:
            raise BackupError(
                f"the database is not empty ({', '.join(occupied)}); use --replace to overwrite it"
            )
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
        kinds = {name: {c.name: _kind(c) for c in t.columns} for name, t in tables.items()}
        batch: list[dict[str, Any]] = []
        batch_table: str | None = None
        trailer: dict[str, Any] | None = None

        def flush() -> None:
            if batch and batch_table is not None:
                conn.execute(tables[batch_table].insert(), batch)
                batch.clear()

        for number, raw in enumerate(lines, start=2):
            if progress is not None:
                progress.advance(len(raw.encode()))
            if not raw.strip():
                continue
            if trailer is not None:
                raise BackupError(f"line {number}: data after the trailer")
            item = json.loads(raw)
            if "trailer" in item:
                trailer = item["trailer"]
                continue
            name = item.get("table")
            if name not in tables:
                raise BackupError(f"line {number}: unknown table {name!r}")
            if name != batch_table:
                flush()
                batch_table = name
            col_kinds = kinds[name]
            row = item["row"]
            unknown = set(row) - set(col_kinds)
            if unknown:
                raise BackupError(f"line {number}: unknown columns {sorted(unknown)} in {name}")
            batch.append({k: _decode(col_kinds[k], v) for k, v in row.items()})
            summary.rows[name] = summary.rows.get(name, 0) + 1
            if len(batch) >= BATCH_ROWS:
                flush()
        flush()
        if trailer is None:
            raise BackupError("the file ends without its trailer: it was cut short")
        expected = {k: v for k, v in trailer.get("rows", {}).items() if v}
        if expected != {k: v for k, v in summary.rows.items() if v}:
            raise BackupError("row counts differ from the trailer: the file is damaged")
        _reset_sequences(conn, metadata)
    return summary


def import_from_file(
    engine: Engine, path: Path, *, replace: bool = False, progress: ProgressSink | None = None
) -> Summary:
    """Restore the backup in ``path`` (see :func:`import_backup`)."""
    with open(path, encoding="utf-8") as lines:
        if progress is not None:
            progress.start(os.path.getsize(path), "bytes")
        return import_backup(engine, lines, replace=replace, progress=progress)
