"""``imi-api export``: the whole database, or its public part, written as an ``imi-backup``
file in one consistent snapshot (see the package docstring)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from service.core.db import utcnow
from service.ops.backup.format import (
    BATCH_ROWS,
    FORMAT,
    PRIVATE_COLUMN_PATTERN,
    PRIVATE_COLUMNS,
    PUBLIC_ROWS,
    PUBLIC_TABLES,
    VERSION,
    ProgressSink,
    Summary,
    column_kind,
    encode,
    json_line,
    schema_revision,
    service_metadata,
)


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
    metadata = service_metadata()
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
        out.write(json_line(header))
        if progress is not None:
            progress.start(
                sum(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() for t in tables),
                "rows",
            )
        # Keys of rows left out of a public export, per table, so that rows
        # referring to them (a draft's clauses) are left out too.
        excluded: dict[str, set[tuple[Any, ...]]] = {}
        for table in tables:
            kinds = {c.name: column_kind(c) for c in table.columns}
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
                    name: encode(kinds[name], value) for name, value in row.items() if name not in private
                }
                out.write(json_line({"table": table.name, "row": encoded}))
                count += 1
            summary.rows[table.name] = count
        out.write(json_line({"trailer": {"rows": summary.rows}}))
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
