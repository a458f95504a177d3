"""The service itself: ``migrate``, ``load-sample``, ``serve``, ``worker`` and ``openapi``."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from service.cli import common
from service.core.config import Settings, get_settings

DEFAULT_OPENAPI = Path("openapi/openapi.json")


def migrate() -> None:
    """Apply the database migrations (safe to run from several processes at once)."""
    from service.core.db import run_migrations

    settings = get_settings()
    common.reachable(settings)
    common.log_setup(settings)
    run_migrations(settings.database_url)
    _backfill(settings)
    common.err("migrations applied")


def _backfill(settings: Settings) -> None:
    """Bring the transparency log and the status lists up to the data (``main.backfill``)."""
    from service.main import backfill

    leaves, entries = backfill(settings)
    if leaves or entries:
        common.err(f"transparency log: {leaves} event(s) appended; status lists: {entries} school(s) placed")


def load_sample_cmd() -> None:
    """Load the sample data into an empty database."""
    from service.core.db import make_engine
    from service.sample.loader import load_sample

    settings = get_settings()
    common.ready(settings)
    common.log_setup(settings)
    engine = make_engine(settings.database_url)
    loaded = load_sample(engine=engine, settings=settings)
    engine.dispose()
    common.err("sample data loaded" if loaded else "database not empty: sample data not loaded")


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


def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="no in-process delivery worker")] = False,
    no_migrate: Annotated[bool, typer.Option("--no-migrate", help="skip migrations at start")] = False,
) -> None:
    """Serve the API (migrating first, loading the sample data when asked)."""
    import uvicorn

    from service.core.db import make_engine, run_migrations
    from service.main import build_keys

    settings = get_settings()
    if no_migrate:
        # Nothing will migrate it: a missing or unmigrated database would be served as 500s
        # (and an empty SQLite file made), so it must be ready, as for every other command.
        common.ready(settings)
    else:
        common.reachable(settings)
    common.log_setup(settings)
    if not no_migrate:
        run_migrations(settings.database_url)
        _backfill(settings)
    build_keys(settings).ensure()
    if settings.load_sample:
        from service.sample.loader import load_sample

        engine = make_engine(settings.database_url)
        if load_sample(engine=engine, settings=settings):
            common.err("sample data loaded")
        engine.dispose()
    if no_worker:
        # Settings are read in each uvicorn worker process from the environment.
        os.environ["IMI_IN_PROCESS_WORKER"] = "false"
        get_settings.cache_clear()  # this process built its settings before the flag was set
    base = f"http://{host}:{port}"
    common.err(
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
    common.ready(settings)
    common.log_setup(settings)

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
            common.err(f"{output} is stale: run `imi-api openapi` and commit it")
            raise typer.Exit(1)
        common.err(f"{output} is current")
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    common.err(f"wrote {output}")
