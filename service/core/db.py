"""Database engines, the UTC timestamp column type, sessions and migrations.

SQLite (the embedded default) runs in WAL mode with a busy timeout so the CLI
can write while the server runs; PostgreSQL is the shared production store.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

#: Key of the PostgreSQL advisory lock that serialises `alembic upgrade`.
MIGRATION_LOCK_KEY = 0x1A11_2015
SQLITE_BUSY_TIMEOUT_MS = 15000


def utcnow() -> dt.datetime:
    """The current time, timezone-aware, in UTC."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A timestamp stored and returned as an aware UTC datetime on both databases.

    Naive input is refused (``ValueError``): every instant must carry its offset.
    SQLite stores ISO text in UTC; PostgreSQL uses ``timestamptz``.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: timestamps must carry a UTC offset")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine for ``sqlite:///path`` or ``postgresql+psycopg://…``.

    SQLite: creates the parent folder, WAL mode, busy timeout, foreign keys.
    PostgreSQL: pre-ping so a restarted database is survived.
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            pool_size=pool_size,
            max_overflow=20,
            pool_pre_ping=False,
            # Bound parameters can hold private contact details: keep them out of
            # exception messages that end up in logs.
            hide_parameters=True,
        )

        # Many-row INSERTs go out as multi-row VALUES statements (SQLAlchemy's
        # "insertmanyvalues", on by default for PostgreSQL) instead of one
        # sqlite3 step per row: each step releases the GIL, and while the event
        # loop serves requests a thread waits up to the switch interval (5 ms) to
        # get it back, so a publish fanning out to 1,000 webhook endpoints took
        # 1.5 s under read load instead of 0.1 s (bench/fanout.py).
        engine.dialect.use_insertmanyvalues_wo_returning = True

        @sa.event.listens_for(engine, "before_cursor_execute")
        def _no_nul(_conn: Any, _cur: Any, statement: str, parameters: Any, _ctx: Any, _many: bool) -> None:
            # PostgreSQL text cannot hold U+0000 and refuses it (a 422 for the client, see
            # errors.is_nul_in_text); SQLite would store it. Refuse it here too, so the API
            # answers the same on both stores.
            if _has_nul(parameters):
                raise sa.exc.DataError(
                    statement, None, ValueError("A string literal cannot contain NUL (0x00) characters.")
                )

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Python's sqlite3 opens transactions lazily; we take control so that
            # BEGIN IMMEDIATE serialises writers instead of failing on upgrade.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # Writers take the lock at BEGIN, so read-then-write transactions never
            # hit SQLITE_BUSY mid-way (the busy timeout waits instead); sessions
            # marked read-only keep WAL's concurrent readers.
            if conn.get_execution_options().get("imi_readonly"):
                conn.exec_driver_sql("BEGIN")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=20,
        hide_parameters=True,
        # A database behind a network black hole fails fast (503) instead of hanging requests.
        connect_args={"connect_timeout": 5},
    )


def _has_nul(parameters: Any) -> bool:
    """Whether any string among statement parameters (a row, rows, or nested) holds U+0000."""
    if isinstance(parameters, str):
        return "\x00" in parameters
    if isinstance(parameters, dict):
        parameters = parameters.values()
    elif not isinstance(parameters, (list, tuple)):
        return False
    return any(_has_nul(p) for p in parameters)


#: ``hook(session)`` run after every :func:`session_scope` commit (see :func:`on_session_commit`).
_after_commit_hooks: list[Callable[[Session], None]] = []
#: ``guard(session)`` context managers entered around every :func:`session_scope` commit.
_commit_guards: list[Callable[[Session], AbstractContextManager[None]]] = []


def on_session_commit(hook: Callable[[Session], None]) -> None:
    """Run ``hook(session)`` after each transaction of :func:`session_scope` commits.

    How layers above the core learn of commits without the core importing them
    (the events outbox fires its after-commit callbacks this way). Registering
    the same hook twice is a no-op.
    """
    if hook not in _after_commit_hooks:
        _after_commit_hooks.append(hook)


def guard_session_commit(guard: Callable[[Session], AbstractContextManager[None]]) -> None:
    """Enter ``guard(session)`` just before each :func:`session_scope` commit and leave it
    right after, whether the commit succeeded or failed (``core/changes.py`` marks the
    domains it touches as changing for exactly that window). Registering twice is a no-op."""
    if guard not in _commit_guards:
        _commit_guards.append(guard)


def session_scope(engine: Engine, *, readonly: bool = False) -> Iterator[Session]:
    """Yield a session that commits on success and rolls back on any error.

    ``readonly`` sessions (GET/HEAD requests) take no write lock on SQLite.
    """
    bind = engine.execution_options(imi_readonly=True) if readonly else engine
    with Session(bind, expire_on_commit=False) as session:
        try:
            yield session
            with ExitStack() as guards:
                for guard in _commit_guards:
                    guards.enter_context(guard(session))
                session.commit()
        except BaseException:
            session.rollback()
            raise
    for hook in _after_commit_hooks:
        hook(session)


@contextmanager
def transaction(engine: Engine, *, readonly: bool = False) -> Iterator[Session]:
    """``with transaction(engine) as session:`` — :func:`session_scope` as a context manager.

    Leaving the block normally (``return`` included) commits; an exception rolls back.
    """
    yield from session_scope(engine, readonly=readonly)


def alembic_config(url: str) -> Any:
    """An Alembic ``Config`` for our bundled migrations against ``url``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent.parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def run_migrations(url: str) -> None:
    """Upgrade the database at ``url`` to the newest revision.

    On PostgreSQL the upgrade holds an advisory lock, so replicas starting
    together migrate once and the others wait, then find nothing to do.
    """
    from alembic import command

    cfg = alembic_config(url)
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")
                conn.commit()
            try:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                conn.commit()
            finally:
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")
                    conn.commit()
    finally:
        engine.dispose()


class DatabaseNotReady(Exception):
    """The configured database cannot be used: missing, unreachable or not migrated.

    ``str(exc)`` is one line for an operator: the database (password hidden), the setting
    ``IMI_DATABASE_URL`` and what to run (``imi-api migrate``).
    """


#: The SQLAlchemy drivers this service runs on (``IMI_DATABASE_URL``'s scheme).
DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")


def check_url(url: str) -> None:
    """Raise :class:`DatabaseNotReady` unless ``url`` parses as an SQLAlchemy URL of one of
    :data:`DRIVERS`: ``garbage``, ``postgres://…`` or ``mysql://…`` would otherwise end in a
    SQLAlchemy or import traceback. An unparsable URL is not echoed (it may hold a password)."""
    usage = (
        "give sqlite:///path/to/imi.db or postgresql+psycopg://user@host/db in IMI_DATABASE_URL, "
        "then run `imi-api migrate`"
    )
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise DatabaseNotReady(f"IMI_DATABASE_URL is not a database URL: {usage}") from None
    if parsed.drivername not in DRIVERS:
        shown = parsed.render_as_string(hide_password=True)
        raise DatabaseNotReady(f"IMI_DATABASE_URL {shown} names a database this service cannot use: {usage}")


def describe_url(url: str) -> str:
    """``url`` with its password hidden, and a relative SQLite path also made absolute.

    Raises :class:`DatabaseNotReady` for a URL :func:`check_url` refuses."""
    check_url(url)
    shown = sa.engine.make_url(url).render_as_string(hide_password=True)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:" and not Path(path).is_absolute():
            shown += f" (= {Path(path).resolve()})"
    return shown


def check_ready(url: str) -> None:
    """Raise :class:`DatabaseNotReady` unless the database at ``url`` exists, answers and is
    migrated (to the newest revision, or a newer one of a later release). Never creates a
    database: commands other than ``serve`` and ``migrate`` call this first."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    where = f"{describe_url(url)} (IMI_DATABASE_URL)"
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:" and not Path(path).is_file():
            raise DatabaseNotReady(
                f"there is no database at {where}: create it with `imi-api migrate` "
                "(or `imi-api serve`), or set IMI_DATABASE_URL to yours"
            )
        # Read-only: looking must not turn an empty file into a database (WAL header and all).
        uri = f"file:{Path(path).resolve()}?mode=ro"
        engine = sa.create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True))
    else:
        engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            heads = set(MigrationContext.configure(conn).get_current_heads())
    except sa.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
        raise DatabaseNotReady(
            f"cannot use the database {where}: {reason}; check that it runs and IMI_DATABASE_URL, "
            "then run `imi-api migrate`"
        ) from exc
    finally:
        engine.dispose()
    script = ScriptDirectory.from_config(alembic_config(url))
    known = {rev.revision for rev in script.walk_revisions()}
    if not heads:
        raise DatabaseNotReady(f"the database {where} is not migrated: run `imi-api migrate` first")
    if heads <= known and heads != set(script.get_heads()):
        raise DatabaseNotReady(
            f"the database {where} is at revision {', '.join(sorted(heads))}, older than this release: "
            "run `imi-api migrate`"
        )


def check_reachable(url: str) -> None:
    """Raise :class:`DatabaseNotReady` unless a connection to ``url`` opens: what ``serve`` and
    ``migrate`` check before migrating, so that an unreachable PostgreSQL (or an SQLite path
    that cannot be created) is one line rather than a traceback out of Alembic. Unlike
    :func:`check_ready` it may create an SQLite database (those two commands do)."""
    where = f"{describe_url(url)} (IMI_DATABASE_URL)"
    try:
        engine = make_engine(url, pool_size=1)
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        finally:
            engine.dispose()
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
        raise DatabaseNotReady(
            f"cannot use the database {where}: {reason}; check that it runs and IMI_DATABASE_URL, "
            "then run `imi-api migrate`"
        ) from exc


def migrations_current(engine: Engine) -> bool:
    """True when the database is at the newest Alembic revision."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(str(engine.url)))
    with engine.connect() as conn:
        heads = set(MigrationContext.configure(conn).get_current_heads())
    return heads == set(script.get_heads())
