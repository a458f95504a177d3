"""Readiness and database outages: ``/readyz`` says 503 while the database is
unreachable or behind, every other request gets a 503 problem with
``Retry-After``, and the process recovers by itself."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from service.core.config import Settings
from service.core.db import run_migrations
from service.main import create_app
from tests.conftest import BASE_URL, assert_problem


def _settings(url: str, keys_dir: Path) -> Settings:
    return Settings(
        database_url=url,
        keys_dir=keys_dir,
        public_base_url=BASE_URL,
        in_process_worker=False,
        rate_limit_reads="100000/minute",
        rate_limit_strict="100000/minute",
    )


def test_readyz_is_ready_on_a_migrated_database(client: TestClient) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {
        "status": "ready",
        "checks": {"database": True, "migrations": True, "schema": "current"},
    }
    assert r.headers["cache-control"] == "no-store"


def test_readyz_stays_ready_when_a_newer_release_migrated_ahead(client: TestClient, engine: Any) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '2099_12_31_9999_future'"))
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"]["schema"] == "ahead"


def test_readyz_503_and_requests_503_when_migrations_are_behind(tmp_path: Path, keys_dir: Path) -> None:
    app = create_app(_settings(f"sqlite:///{tmp_path}/empty.sqlite", keys_dir))
    with TestClient(app, base_url=BASE_URL, raise_server_exceptions=False) as c:
        r = c.get("/readyz")
        assert r.status_code == 503
        assert r.headers["retry-after"] == "5"
        assert r.json()["checks"] == {"database": True, "migrations": False, "schema": "behind"}
        events = c.get("/v1/events")  # no such table: the database is not usable yet
        assert_problem(events, 503)
        assert events.headers["retry-after"] == "5"
        assert c.get("/healthz").status_code == 200


@pytest.mark.parametrize("settings_overrides", [{"load_sample": True}])
def test_readyz_waits_for_the_sample_data_when_asked(client: TestClient) -> None:
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["sample"] is False


@pytest.mark.postgres
def test_postgres_outage_answers_503_and_recovers(pg_admin_url: str, keys_dir: Path) -> None:
    name = f"imi_outage_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    base, _, _ = pg_admin_url.rpartition("/")
    url = f"{base}/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        run_migrations(url)
        settings = _settings(url, keys_dir)
        app = create_app(settings)
        from service.sample.standards import load

        load(engine=app.state.engine, settings=settings)
        current = "/v1/standards/training-standards/current"
        with TestClient(app, base_url=BASE_URL, raise_server_exceptions=False) as c:
            assert c.get("/v1/events").status_code == 200
            assert c.get("/readyz").status_code == 200
            served = c.get(current)  # now cached in memory
            assert served.status_code == 200

            with admin.connect() as conn:  # the database goes away under the running app
                conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                conn.execute(
                    sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                    {"n": name},
                )
            during = c.get(current)  # published versions stay served from memory
            assert during.status_code == 200
            assert during.content == served.content
            # So does a feed page read before (the feed is a cached public read since issue 14);
            # one never read needs the database.
            assert c.get("/v1/events").status_code == 200
            for path in ("/v1/events?after=1", "/v1/schools"):
                r = c.get(path)
                body = assert_problem(r, 503)
                assert body["type"] == "/problems/unavailable"
                assert r.headers["retry-after"] == "5"
                assert r.headers["x-content-type-options"] == "nosniff"
            token = c.post("/v1/oauth/token", data={"grant_type": "client_credentials"}, auth=("cli_x", "y"))
            assert_problem(token, 503)
            ready = c.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"] is False
            assert c.get("/healthz").status_code == 200
            assert c.get("/metrics").status_code == 200  # collectors that need the database are skipped

            with admin.connect() as conn:  # back again: the pool reconnects by itself
                conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            assert c.get("/v1/events").status_code == 200
            assert c.get("/readyz").status_code == 200
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
