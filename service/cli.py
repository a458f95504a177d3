"""The ``imi-api`` command (Typer). Logs go to stderr, results to stdout (DESIGN §7)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from service.core.config import Settings, get_settings

app = typer.Typer(help="IMI Standards API", no_args_is_help=True, add_completion=False)
clients_app = typer.Typer(help="API clients (OAuth 2.0 client credentials)", no_args_is_help=True)
keys_app = typer.Typer(help="Signing keys in IMI_KEYS_DIR", no_args_is_help=True)
witnesses_app = typer.Typer(
    help="Witnesses: regional associations that cosign the transparency log", no_args_is_help=True
)
app.add_typer(clients_app, name="clients")
app.add_typer(keys_app, name="keys")
app.add_typer(witnesses_app, name="witnesses")

DEFAULT_OPENAPI = Path("openapi/openapi.json")
#: ``--debug``: show tracebacks of operator errors (a missing database) instead of one line.
_debug = False


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="show a traceback for every error")] = False,
) -> None:
    """IMI Standards API. Only `serve` and `migrate` create a database; every other command
    needs a migrated one and says so in one line (exit 2) when it is missing."""
    global _debug
    _debug = debug


def _ready(settings: Settings) -> None:
    """Stop with one line on stderr and exit status 2 unless the database is usable."""
    from service.core.db import DatabaseNotReady, check_ready

    try:
        check_ready(settings.database_url)
    except DatabaseNotReady as exc:
        if _debug:
            raise
        _err(f"error: {exc}")
        raise typer.Exit(2) from None


def _log_setup(settings: Settings) -> None:
    from service.core.logs import configure_logging

    configure_logging(settings.log_level)  # JSON lines on stderr


def _err(message: str) -> None:
    typer.echo(message, err=True)


@contextmanager
def _progress(description: str) -> Iterator[Any]:
    """A progress bar on stderr when it is a terminal (rich), else ``None``: nothing is drawn
    into pipes and log files."""
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} {task.fields[unit]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(description, total=0, unit="")

        class Sink:
            def start(self, total: int, unit: str) -> None:
                bar.update(task, total=total, unit=unit)

            def advance(self, amount: int) -> None:
                bar.advance(task, amount)

        yield Sink()


@app.command()
def migrate() -> None:
    """Apply the database migrations (safe to run from several processes at once)."""
    from service.core.db import run_migrations

    settings = get_settings()
    _log_setup(settings)
    run_migrations(settings.database_url)
    _backfill(settings)
    _err("migrations applied")


def _backfill(settings: Settings) -> None:
    """Bring the transparency log and the status lists up to the data (``main.backfill``)."""
    from service.main import backfill

    leaves, entries = backfill(settings)
    if leaves or entries:
        _err(f"transparency log: {leaves} event(s) appended; status lists: {entries} school(s) placed")


@app.command("load-sample")
def load_sample_cmd() -> None:
    """Load the sample data into an empty database."""
    from service.core.db import make_engine
    from service.sample.loader import load_sample

    settings = get_settings()
    _ready(settings)
    _log_setup(settings)
    engine = make_engine(settings.database_url)
    loaded = load_sample(engine=engine, settings=settings)
    engine.dispose()
    _err("sample data loaded" if loaded else "database not empty: sample data not loaded")


def _flush_logs_on_sigterm() -> None:
    """After a graceful shutdown uvicorn restores this handler and raises SIGTERM again (so the
    exit status says SIGTERM); the default action would kill the process before the log writer
    thread wrote the last lines ("Application shutdown complete", the worker's "stopped"), as
    atexit hooks do not run. Flush them, then die of the signal as before."""
    import signal

    from service.core.logs import shutdown_logging

    def handler(signum: int, _frame: object) -> None:
        shutdown_logging()
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)

    signal.signal(signal.SIGTERM, handler)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="no in-process delivery worker")] = False,
    no_migrate: Annotated[bool, typer.Option("--no-migrate", help="skip migrations at start")] = False,
) -> None:
    """Serve the API (migrating first, loading the sample data when asked)."""
    import uvicorn

    from service.core.db import make_engine, run_migrations
    from service.main import build_keys

    settings = get_settings()
    _log_setup(settings)
    if not no_migrate:
        run_migrations(settings.database_url)
        _backfill(settings)
    build_keys(settings).ensure()
    if settings.load_sample:
        from service.sample.loader import load_sample

        engine = make_engine(settings.database_url)
        if load_sample(engine=engine, settings=settings):
            _err("sample data loaded")
        engine.dispose()
    if no_worker:
        # Settings are read in each uvicorn worker process from the environment.
        os.environ["IMI_IN_PROCESS_WORKER"] = "false"
        get_settings.cache_clear()  # this process built its settings before the flag was set
    base = f"http://{host}:{port}"
    _err(
        f"IMI Standards API on {base}\n"
        f"  current guidelines:  curl {base}/v1/standards/training-standards/current\n"
        f"  as HTML:             curl -H 'Accept: text/html' {base}/v1/standards/training-standards/current\n"
        f"  schools:             curl '{base}/v1/schools?q=zurich'\n"
        f"  change feed:         curl {base}/v1/events\n"
        f"  API docs:            {base}/docs\n"
    )
    _flush_logs_on_sigterm()
    uvicorn.run(
        "service.main:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's loggers propagate to our JSON handler
        proxy_headers=False,  # X-Forwarded-For is believed only from IMI_TRUSTED_PROXIES (edge.py)
        server_header=False,
    )


@app.command()
def worker(
    heartbeat: Annotated[
        Path | None, typer.Option(help="touch this file every 10 s while the event loop runs (liveness)")
    ] = None,
) -> None:
    """Run the webhook delivery worker alone (stops gracefully on SIGTERM)."""
    import asyncio

    from service.main import run_worker
    from service.ops.heartbeat import touch_heartbeat

    settings = get_settings()
    _ready(settings)
    _log_setup(settings)

    async def main() -> None:
        beat = asyncio.create_task(touch_heartbeat(heartbeat)) if heartbeat else None
        try:
            await run_worker(settings)
        finally:
            if beat is not None:
                beat.cancel()

    # The worker's loop is mostly socket I/O: uvloop (uvicorn's loop, installed with it, not on
    # Windows) costs less CPU per delivery than the default loop.
    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())


@app.command("export")
def export_cmd(
    file: Annotated[Path, typer.Argument(help="the backup file to write (JSON Lines, mode 0600)")],
    public: Annotated[
        bool, typer.Option("--public", help="only what the API shows everyone (for sharing, not restoring)")
    ] = False,
) -> None:
    """Write a complete backup of the database (imi-backup format, version 1)."""
    from service.core.db import make_engine
    from service.ops.backup import export_to_file

    settings = get_settings()
    _ready(settings)
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        with _progress(f"exporting to {file.name}") as progress:
            summary = export_to_file(engine, file, public=public, progress=progress)
    finally:
        engine.dispose()
    result = {"file": str(file), "public": public, "rows": summary.rows, "total": summary.total}
    typer.echo(json.dumps(result))


@app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="a file written by `imi-api export`")],
    replace: Annotated[
        bool, typer.Option("--replace", help="delete the data already in the database first")
    ] = False,
) -> None:
    """Restore a backup into a migrated, empty database (one transaction)."""
    from service.core.db import make_engine
    from service.ops.backup import BackupError, import_from_file

    settings = get_settings()
    _ready(settings)
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        with _progress(f"importing {file.name}") as progress:
            summary = import_from_file(engine, file, replace=replace, progress=progress)
    except (BackupError, OSError, ValueError) as exc:
        _err(f"error: {exc}")
        raise typer.Exit(2) from exc
    finally:
        engine.dispose()
    typer.echo(json.dumps({"file": str(file), "rows": summary.rows, "total": summary.total}))


@app.command()
def openapi(
    check: Annotated[bool, typer.Option("--check", help="fail when the file is stale")] = False,
    output: Annotated[Path, typer.Option(help="where the document lives")] = DEFAULT_OPENAPI,
) -> None:
    """Write the OpenAPI document generated from the app (or check it is current)."""
    from service.main import create_app

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite:///{tmp}/openapi.db",
            keys_dir=Path(tmp) / "keys",
            in_process_worker=False,
        )
        document = create_app(settings).openapi()
    text = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    if check:
        current = output.read_text() if output.exists() else ""
        if current != text:
            _err(f"{output} is stale: run `imi-api openapi` and commit it")
            raise typer.Exit(1)
        _err(f"{output} is current")
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    _err(f"wrote {output}")


def _session():  # type: ignore[no-untyped-def]
    from service.core.db import make_engine, transaction

    settings = get_settings()
    _ready(settings)
    engine = make_engine(settings.database_url)
    return transaction(engine)


@clients_app.command("create")
def clients_create(
    name: Annotated[str, typer.Option(help="who the client is")],
    scope: Annotated[list[str], typer.Option(help="a scope; repeat for more")],
    school: Annotated[str | None, typer.Option(help="bind a school:self client to a school")] = None,
    organisation: Annotated[
        str | None,
        typer.Option(help="review:comment: the organisation it stands for (shown with its comments)"),
    ] = None,
    region: Annotated[
        str | None, typer.Option(help="review:comment: the organisation's region (DE, or UN M49 such as 150)")
    ] = None,
    commenter_type: Annotated[
        str | None, typer.Option(help="review:comment: association, training_school, individual or other")
    ] = None,
) -> None:
    """Register an API client; prints one line of JSON with its id and secret."""
    from service.core.errors import ServiceError
    from service.security import clients as service
    from service.standards.schemas import normalise_region

    try:
        if region is not None:
            region = normalise_region(region)
    except ValueError as exc:
        _err(f"error: --region: {exc}")
        raise typer.Exit(2) from exc
    try:
        with _session() as session:
            client, secret = service.create_client(
                session=session,
                name=name,
                scopes=scope,
                school_id=school,
                organisation=organisation,
                region=region,
                commenter_type=commenter_type,
            )
    except ServiceError as exc:
        _err(f"error: {exc.detail}")
        raise typer.Exit(2) from exc
    typer.echo(json.dumps({"client_id": client.id, "client_secret": secret}))


@clients_app.command("list")
def clients_list() -> None:
    """List clients, one JSON object per line (no secrets)."""
    from service.core.jsonutil import dumps
    from service.security import clients as service

    with _session() as session:
        for c in service.list_clients(session=session):
            row: dict[str, object] = {
                "client_id": c.id,
                "name": c.name,
                "scopes": c.scopes.split(),
                "school_id": c.school_id,
                "created_at": c.created_at,
                "revoked_at": c.revoked_at,
            }
            if c.organisation is not None:  # a review:comment client: whom it stands for
                row.update(organisation=c.organisation, region=c.region, commenter_type=c.commenter_type)
            typer.echo(dumps(row).decode())


@clients_app.command("revoke")
def clients_revoke(client_id: str) -> None:
    """Revoke a client: its tokens stop working at once."""
    from service.core.errors import ServiceError
    from service.security import clients as service

    try:
        with _session() as session:
            service.revoke_client(session=session, client_id=client_id)
    except ServiceError as exc:
        _err(f"error: {exc.detail}")
        raise typer.Exit(2) from exc
    _err(f"revoked {client_id}")


@clients_app.command("rotate-secret")
def clients_rotate(client_id: str) -> None:
    """Give a client a new secret; prints one line of JSON with it."""
    from service.core.errors import ServiceError
    from service.security import clients as service

    try:
        with _session() as session:
            secret = service.rotate_secret(session=session, client_id=client_id)
    except ServiceError as exc:
        _err(f"error: {exc.detail}")
        raise typer.Exit(2) from exc
    typer.echo(json.dumps({"client_id": client_id, "client_secret": secret}))


def _keys():  # type: ignore[no-untyped-def]
    from service.main import build_keys

    return build_keys(get_settings())


@keys_app.command("generate")
def keys_generate() -> None:
    """Create a signing key, a secret-encryption key and the transparency log's key where there
    are none (the first start does this too), so a read-only mounted IMI_KEYS_DIR can be
    prepared ahead."""
    from service.security import secretbox
    from service.transparency.signer import load_signer

    key = _keys().ensure()
    secretbox.ensure_key(get_settings().keys_dir)
    log_key = load_signer(get_settings())
    typer.echo(json.dumps({"kid": key.kid, "log_vkey": log_key.vkey}))


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Start signing with a new key; old keys keep verifying until what they signed expires."""
    key = _keys().rotate()
    typer.echo(json.dumps({"kid": key.kid}))


@keys_app.command("list")
def keys_list() -> None:
    """Every key on disk with its state, one JSON object per line."""
    store = _keys()
    published = {k.kid for k in store.published()}
    for key in store.all():
        state = "active" if key.retired_at is None else ("retired" if key.kid in published else "expired")
        typer.echo(
            json.dumps(
                {"kid": key.kid, "state": state, "created_at": key.created_at, "retired_at": key.retired_at}
            )
        )


@witnesses_app.command("add")
def witnesses_add(
    name: Annotated[str, typer.Option(help="the association, e.g. 'Mindfulness Verband Deutschland'")],
    region: Annotated[str, typer.Option(help="ISO 3166-1 alpha-2 (DE) or UN M49 (150)")],
    key: Annotated[str, typer.Option(help="its cosigner vkey: <name>+<key id>+<base64(0x04||key)>")],
) -> None:
    """Register a witness; prints one line of JSON describing it."""
    from service.core.errors import ServiceError
    from service.transparency import witnesses

    try:
        with _session() as session:
            witness = witnesses.add_witness(session=session, name=name, region=region, key=key)
            described = witnesses.witness_dict(witness)
    except ServiceError as exc:
        _err(f"error: {exc.detail}")
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(described, ensure_ascii=False))


@witnesses_app.command("list")
def witnesses_list(
    removed: Annotated[bool, typer.Option("--removed", help="include removed witnesses")] = False,
) -> None:
    """Witnesses, one JSON object per line."""
    from service.transparency import witnesses

    with _session() as session:
        latest = witnesses.latest_cosigned_sizes(session)
        for w in witnesses.list_witnesses(session=session, include_removed=removed):
            described = witnesses.witness_dict(w, latest_cosigned_size=latest.get(w.id))
            described["removed"] = w.removed_at is not None
            typer.echo(json.dumps(described, ensure_ascii=False))


@witnesses_app.command("remove")
def witnesses_remove(witness_id: str) -> None:
    """Stop trusting a witness: its cosignatures are no longer served."""
    from service.core.errors import ServiceError
    from service.transparency import witnesses

    try:
        with _session() as session:
            witnesses.remove_witness(session=session, witness_id=witness_id)
    except ServiceError as exc:
        _err(f"error: {exc.detail}")
        raise typer.Exit(2) from exc
    _err(f"removed {witness_id}")


@app.command("verify-snapshot")
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


if __name__ == "__main__":  # pragma: no cover
    app()
