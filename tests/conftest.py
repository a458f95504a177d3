"""Shared fixtures: databases (SQLite always, PostgreSQL when configured), apps,
clients and tokens.

Every database test runs once per backend. PostgreSQL runs when
``IMI_TEST_POSTGRES_URL`` names a server we can reach (``.ci/run`` sets it);
otherwise those cases are skipped with the reason shown in the summary.
Each test gets a fresh database cloned from a template migrated once per run:
a file copy on SQLite, ``CREATE DATABASE … TEMPLATE`` on PostgreSQL.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sqlite3
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from service.core.config import Settings
from service.core.db import run_migrations, transaction
from service.main import create_app

PG_ENV = "IMI_TEST_POSTGRES_URL"
BASE_URL = "http://testserver"
_counter = itertools.count()
_RUN = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"


def _pg_admin_url() -> str | None:
    return os.environ.get(PG_ENV) or None


def _pg_reachable(url: str) -> str | None:
    try:
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001
        return f"PostgreSQL at {PG_ENV} is unreachable: {exc.__class__.__name__}"


def _with_db(url: str, name: str) -> str:
    base, _, _old = url.rpartition("/")
    return f"{base}/{name}"


# --- templates ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "template.sqlite"
    run_migrations(f"sqlite:///{path}")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[tuple[str, str]]:
    admin = _pg_admin_url()
    if admin is None:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (set by .ci/run)")
    problem = _pg_reachable(admin)
    if problem:
        pytest.skip(problem)
    name = f"imi_tpl_{_RUN}"
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    run_migrations(_with_db(admin, name))
    yield admin, name
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


# --- one database per test --------------------------------------------------------------


def _fresh_pg(template: tuple[str, str]) -> tuple[str, Callable[[], None]]:
    admin, tpl = template
    name = f"imi_t_{_RUN}_{next(_counter)}"
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{tpl}"'))

    def drop() -> None:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()

    return _with_db(admin, name), drop


@contextmanager
def fresh_database(request: pytest.FixtureRequest, *, sqlite: bool, path: Path) -> Iterator[str]:
    """The URL of a freshly migrated, empty database, copied from the backend's template (on
    SQLite to ``path``), dropped on PostgreSQL when the block ends."""
    if sqlite:
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url, drop = _fresh_pg(request.getfixturevalue("pg_template"))
    try:
        yield url
    finally:
        drop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly migrated, empty database URL; the test runs once per backend."""
    with fresh_database(request, sqlite=request.param == "sqlite", path=tmp_path / "test.sqlite") as url:
        yield url


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Signing keys shared by the whole run (key generation is not what tests test)."""
    return tmp_path_factory.mktemp("keys")


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to change settings for its apps."""
    return {}


@pytest.fixture
def settings(db_url: str, keys_dir: Path, settings_overrides: dict[str, Any]) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "keys_dir": keys_dir,
        "public_base_url": BASE_URL,
        "webhook_targets": "loopback",
        "in_process_worker": False,
        "rate_limit_reads": "100000/minute",
        "rate_limit_strict": "100000/minute",
        # Client secrets: the cheapest argon2 profile (the default costs ~0.5 s per hash here).
        "secret_hash_profile": "CHEAPEST",
    }
    values.update(settings_overrides)
    return Settings(**values)


@pytest.fixture
def app(settings: Settings) -> Any:
    return create_app(settings)


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, base_url=BASE_URL, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def engine(app: Any) -> Any:
    """The app's own engine, for arranging data through service functions."""
    return app.state.engine


@pytest.fixture
def session_factory(engine: Any) -> Callable[[], Any]:
    """``with session_factory() as s: ...`` — a committing session on the test database."""
    return lambda: transaction(engine)


@pytest.fixture
def make_client(session_factory: Callable[[], Any]) -> Callable[..., tuple[str, str]]:
    """Register an API client: ``make_client("standards:write", school_id=None)``."""
    from service.security import clients as service

    def make(*scopes: str, school_id: str | None = None, name: str = "test client") -> tuple[str, str]:
        with session_factory() as session:
            c, secret = service.create_client(
                session=session, name=name, scopes=list(scopes), school_id=school_id
            )
            return c.id, secret

    return make


@pytest.fixture
def auth(client: TestClient, make_client: Callable[..., tuple[str, str]]) -> Callable[..., dict[str, str]]:
    """Headers with a bearer token for a new client: ``auth("standards:write")``."""
    cache: dict[tuple[Any, ...], dict[str, str]] = {}

    def headers(*scopes: str, school_id: str | None = None) -> dict[str, str]:
        key = (scopes, school_id)
        if key not in cache:
            cid, secret = make_client(*scopes, school_id=school_id)
            r = client.post(
                "/v1/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(cid, secret),
            )
            assert r.status_code == 200, r.text
            cache[key] = {"Authorization": f"Bearer {r.json()['access_token']}"}
        return dict(cache[key])

    return headers


def minted_auth(app: Any, session_factory: Callable[[], Any], *, name: str) -> Callable[..., dict[str, str]]:
    """Like :func:`auth`, quicker: ``headers(*scopes, school_id=None)`` inserts the client row
    directly and mints its token with the app's key, skipping two argon2 hashes (~0.7 s) per
    client (the token endpoint itself is tested in tests/core). For packages whose ``auth``
    fixture needs many clients."""
    from service.core.db import utcnow
    from service.core.ids import new_id
    from service.security.keys import issue_access_token
    from service.security.models import ApiClient

    def headers(*scopes: str, school_id: str | None = None) -> dict[str, str]:
        client_id = new_id("cli")
        with session_factory() as session:
            session.add(
                ApiClient(
                    id=client_id,
                    name=name,
                    secret_hash="-",
                    scopes=" ".join(scopes),
                    school_id=school_id,
                    created_at=utcnow(),
                )
            )
        settings = app.state.settings
        token = issue_access_token(
            app.state.keys,
            issuer=settings.public_base_url,
            client_id=client_id,
            scopes=list(scopes),
            ttl_s=settings.token_ttl_s,
        )
        return {"Authorization": f"Bearer {token}"}

    return headers


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem with ``status``; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    for member in ("type", "title", "detail"):
        assert isinstance(body[member], str) and body[member], body
    return body


# --- payload contracts: every event a test emits matches its catalogue schema ---------------------

_CONTRACT_BREACHES: list[str] = []
_TESTS = Path(__file__).resolve().parent
_OUTBOX = _TESTS.parent / "service" / "events"


def _check_event_contract(session: Any, event: Any) -> None:
    from tests.contracts import breaches

    # Events a test writes itself with made-up data (to exercise delivery, retention, backups)
    # say nothing about the contract: only what the service emits is checked. The emitter is
    # the first caller outside the outbox package.
    frame = sys._getframe(1)
    while frame is not None and Path(frame.f_code.co_filename).resolve().is_relative_to(_OUTBOX):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None or Path(frame.f_code.co_filename).resolve().is_relative_to(_TESTS):
        return
    _CONTRACT_BREACHES.extend(breaches(event.type, event.data))


@pytest.fixture(scope="session")
def _contract_listener() -> None:
    from service.events import service as events

    events.subscribe(None, _check_event_contract)


@pytest.fixture(autouse=True)
def _events_keep_their_contract(_contract_listener: None) -> Iterator[None]:
    """Every event the service emits while a test runs (through the API, the sample data, a
    job) has ``data`` that validates against its type's JSON Schema in the catalogue that
    ``GET /v1/webhooks/event-types`` and the OpenAPI ``webhooks`` section publish."""
    _CONTRACT_BREACHES.clear()
    yield
    breaches, _CONTRACT_BREACHES[:] = list(_CONTRACT_BREACHES), []
    assert not breaches, "events that break their published schema:\n" + "\n".join(breaches[:10])
