"""What the ``imi-api`` commands share: the ``--debug`` option, the one-line answer to an
operator's error (exit status 2), the database check and engine, logs, progress bars, a transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer

from service.core.config import Settings, get_settings

if TYPE_CHECKING:  # the commands import what they use when they run: --help stays fast
    from sqlalchemy.engine import Engine


@dataclass
class Options:
    """The options given before the command (``imi-api --debug …``)."""

    #: ``--debug``: show tracebacks of operator errors (a missing database) instead of one line.
    debug: bool = False


options = Options()


def ready(settings: Settings) -> None:
    """Stop with one line on stderr and exit status 2 unless the database is usable."""
    from service.core.db import check_ready

    _or_exit(check_ready, settings.database_url)


def reachable(settings: Settings) -> None:
    """Stop with one line on stderr and exit status 2 unless the database answers (``serve`` and
    ``migrate``, which may create it, check this before migrating)."""
    from service.core.db import check_reachable

    _or_exit(check_reachable, settings.database_url)


def _or_exit(check: Callable[[str], object], database_url: str) -> None:
    from service.core.db import DatabaseNotReady

    try:
        check(database_url)
    except DatabaseNotReady as exc:
        if options.debug:
            raise
        err(f"error: {exc}")
        raise typer.Exit(2) from None


def settings_or_exit() -> Settings:
    """The settings, or one line on stderr and exit status 2 when the environment holds a value
    they cannot take (``IMI_TOKEN_TTL_S=abc``): each bad variable by name with pydantic's reason.
    Values are not echoed, as some hold secrets (a Redis URL's password)."""
    from pydantic import ValidationError

    try:
        return get_settings()
    except ValidationError as exc:
        if options.debug:
            raise
        problems = "; ".join(
            f"IMI_{'.'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        err(f"error: {problems} (see Configuration in README.md)")
        raise typer.Exit(2) from None


def log_setup(settings: Settings) -> None:
    from service.core.logs import configure_logging

    configure_logging(settings.log_level)  # JSON lines on stderr


def err(message: str) -> None:
    typer.echo(message, err=True)


@contextmanager
def progress(description: str) -> Iterator[Any]:
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


@contextmanager
def database(*, pool_size: int = 1) -> Iterator[Engine]:
    """The configured database's engine once it is usable (else one line, exit 2), disposed after."""
    from service.core.db import make_engine

    settings = get_settings()
    ready(settings)
    engine = make_engine(settings.database_url, pool_size=pool_size)
    try:
        yield engine
    finally:
        engine.dispose()


def session():  # type: ignore[no-untyped-def]
    from service.core.db import make_engine, transaction

    settings = get_settings()
    ready(settings)
    engine = make_engine(settings.database_url)
    return transaction(engine)


@contextmanager
def operator_errors() -> Iterator[None]:
    """A domain error (an unknown client, a malformed key) as one line on stderr, exit status 2."""
    from service.core.errors import ServiceError

    try:
        yield
    except ServiceError as exc:
        err(f"error: {exc.detail}")
        raise typer.Exit(2) from exc
