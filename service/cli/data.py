"""The data: ``export`` and ``import`` (the ``imi-backup`` format) and ``verify-snapshot``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from service.cli import common


def export_cmd(
    file: Annotated[Path, typer.Argument(help="the backup file to write (JSON Lines, mode 0600)")],
    public: Annotated[
        bool, typer.Option("--public", help="only what the API shows everyone (for sharing, not restoring)")
    ] = False,
) -> None:
    """Write a complete backup of the database (imi-backup format, version 1)."""
    from service.ops.backup import export_to_file

    with common.database() as engine, common.progress(f"exporting to {file.name}") as progress:
        try:
            summary = export_to_file(engine, file, public=public, progress=progress)
        except OSError as exc:  # a folder that does not exist, a read-only disk: the operator's to fix
            if common.options.debug:
                raise
            common.err(f"error: cannot write {file}: {exc.strerror or exc}")
            raise typer.Exit(2) from None
    result = {"file": str(file), "public": public, "rows": summary.rows, "total": summary.total}
    typer.echo(json.dumps(result))


def import_cmd(
    file: Annotated[Path, typer.Argument(help="a file written by `imi-api export`")],
    replace: Annotated[
        bool, typer.Option("--replace", help="delete the data already in the database first")
    ] = False,
) -> None:
    """Restore a backup into a migrated, empty database (one transaction)."""
    from service.ops.backup import BackupError, import_from_file

    with common.database() as engine:
        try:
            with common.progress(f"importing {file.name}") as progress:
                summary = import_from_file(engine, file, replace=replace, progress=progress)
        except (BackupError, OSError, ValueError) as exc:
            common.err(f"error: {exc}")
            raise typer.Exit(2) from exc
    typer.echo(json.dumps({"file": str(file), "rows": summary.rows, "total": summary.total}))


def verify_snapshot_cmd(
    file: Annotated[
        Path, typer.Argument(help="a signed snapshot (GET /v1/snapshot, Accept: application/jose)")
    ],
    jwks: Annotated[str, typer.Option(help="the JWKS: an http(s) URL or a file")],
    log_key: Annotated[
        str | None, typer.Option(help="the log's vkey (GET /v1/log/key): also check the checkpoint")
    ] = None,
) -> None:
    """Check a signed snapshot offline against a JWKS; prints one line of JSON, exits 1 if invalid."""
    from service.snapshot.verify import SnapshotInvalid, load_jwks, verify_snapshot

    try:
        result = verify_snapshot(file.read_bytes(), load_jwks(jwks), log_key=log_key)
    except (SnapshotInvalid, OSError) as exc:
        reason = exc.reason if isinstance(exc, SnapshotInvalid) else "unreadable"
        typer.echo(json.dumps({"valid": False, "reason": reason, "detail": str(exc)}))
        raise typer.Exit(1) from exc
    typer.echo(json.dumps({"valid": True, **result}))
