"""Fixtures of the operations tests: a SQLite-only database for tests that are
about the HTTP edge rather than storage, Redis, a PostgreSQL admin URL, and the
``imi-api`` command line pointed at the test database."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from service.core.config import get_settings
from tests.conftest import fresh_database

REDIS_ENV = "IMI_TEST_REDIS_URL"


@pytest.fixture
def sqlite_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh migrated SQLite database (for tests of behaviour that does not depend on the backend)."""
    with fresh_database(request, sqlite=True, path=tmp_path / "test.sqlite") as url:
        yield url


@pytest.fixture
def second_db_url(request: pytest.FixtureRequest, db_url: str, tmp_path: Path) -> Iterator[str]:
    """Another freshly migrated, empty database on the same backend as ``db_url``."""
    with fresh_database(request, sqlite=db_url.startswith("sqlite"), path=tmp_path / "second.sqlite") as url:
        yield url


@pytest.fixture
def redis_url() -> str:
    """``IMI_TEST_REDIS_URL`` when set and reachable; the test is skipped (with the reason) otherwise."""
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"Redis tests need {REDIS_ENV} (set by .ci/run)")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"Redis at {REDIS_ENV} is unreachable: {exc.__class__.__name__}")
    return url


@pytest.fixture
def pg_admin_url() -> str:
    """The PostgreSQL admin URL of the test run; skipped when PostgreSQL is not configured."""
    url = os.environ.get("IMI_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("PostgreSQL tests need IMI_TEST_POSTGRES_URL (set by .ci/run)")
    try:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"PostgreSQL is unreachable: {exc.__class__.__name__}")
    return url


@pytest.fixture
def cli(db_url: str, keys_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """``cli("clients", "list")`` runs ``imi-api`` against the test database; returns the result."""
    from service.cli import app

    monkeypatch.setenv("IMI_DATABASE_URL", db_url)
    monkeypatch.setenv("IMI_KEYS_DIR", str(keys_dir))
    monkeypatch.setenv("IMI_PUBLIC_BASE_URL", "http://testserver")
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(app, list(args), catch_exceptions=False)

    yield run
    get_settings.cache_clear()


def wait_unless_window_lasts(period_s: int, needed_s: float = 5.0) -> None:
    """Sleep past the next clock-aligned rate-limit window boundary when fewer than
    ``needed_s`` seconds of the current window remain (so a test's requests share one)."""
    left = period_s - (time.time() % period_s)
    if left < needed_s:
        time.sleep(left + 0.05)
