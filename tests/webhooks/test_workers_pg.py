"""Scale-out on PostgreSQL: real `imi-api worker` processes sharing one database.

Two workers deliver 1,000 events to 20 endpoints with no delivery sent twice;
a worker killed with SIGKILL mid-fan-out loses nothing (its leases expire and
a new worker delivers the rest).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from service.core.config import Settings
from service.events import service as events
from service.webhooks import service as webhook_service
from service.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.helpers import wait_for
from tests.webhooks.conftest import Receiver, sample_data

IMI_API = str(Path(sys.executable).parent / "imi-api")


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"in_process_worker": False}


@pytest.fixture
def pg(settings: Settings) -> Settings:
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("scale-out workers need PostgreSQL")
    return settings


@pytest.fixture
def spawn(pg: Settings, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, **env: str) -> subprocess.Popen[bytes]:
        environ = dict(os.environ)
        environ.update(
            {
                "IMI_DATABASE_URL": pg.database_url,
                "IMI_KEYS_DIR": str(pg.keys_dir),
                "IMI_WEBHOOK_TARGETS": "loopback",
                "IMI_WEBHOOK_RETRY_SCHEDULE": "0,0.5,0.5",
                "IMI_LOG_LEVEL": "WARNING",
            }
        )
        environ.update(env)
        log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([IMI_API, "worker"], env=environ, stdout=log, stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def make_endpoints(session_factory: Callable[[], Any], settings: Settings, urls: list[str]) -> None:
    with session_factory() as session:
        for url in urls:
            webhook_service.create_endpoint(
                session=session,
                owner="cli_bench",
                url=url,
                event_types=[],
                description="",
                keys_dir=settings.keys_dir,
            )


def emit_many(session_factory: Callable[[], Any], n: int, per_tx: int = 100) -> list[str]:
    ids: list[str] = []
    for start in range(0, n, per_tx):
        with session_factory() as session:
            for i in range(start, min(n, start + per_tx)):
                ids.append(events.emit(session, "standards.version.published", sample_data(i + 1)).id)
    return ids


def statuses(session_factory: Callable[[], Any]) -> Counter[str]:
    with session_factory() as session:
        rows = session.execute(
            sa.select(WebhookDelivery.status, sa.func.count()).group_by(WebhookDelivery.status)
        ).all()
    return Counter({str(s): int(n) for s, n in rows})


def test_two_workers_deliver_1000_events_to_20_endpoints_once_each(
    pg: Settings, spawn: Callable[..., Any], receiver: Receiver, session_factory: Callable[[], Any]
) -> None:
    urls = [receiver.url() for _ in range(20)]
    make_endpoints(session_factory, pg, urls)
    workers = [spawn("a"), spawn("b")]
    started = time.monotonic()
    ids = emit_many(session_factory, 1000)
    # Generous: the figure is printed; on a quiet 2-core machine this takes well under a minute.
    wait_for(lambda: statuses(session_factory)["succeeded"] == 20_000, timeout=240, interval=0.5)
    elapsed = time.monotonic() - started
    got = receiver.received()
    pairs = Counter((r.path, r.headers["webhook-id"]) for r in got)
    assert set(pairs) == {(receiver.path(u), i) for u in urls for i in ids}
    with session_factory() as session:
        rows = session.execute(
            sa.select(WebhookEndpoint.url, WebhookDelivery.message_id, WebhookDelivery.attempt_count).join(
                WebhookEndpoint,
                WebhookEndpoint.id == WebhookDelivery.endpoint_id,  # type: ignore[arg-type]
            )
        ).all()
    attempts = {(receiver.path(url), mid): n for url, mid, n in rows}
    # Every send is a recorded attempt of the one worker holding the lease: a delivery sent by two
    # workers would arrive more often than it was attempted. (An attempt may fail before reaching
    # the receiver on a loaded machine, so fewer arrivals than attempts is fine.)
    over = {k: (n, attempts[k]) for k, n in pairs.items() if n > attempts[k]}
    assert over == {}
    assert sum(attempts.values()) - len(attempts) <= 200  # retries are rare
    assert all(w.poll() is None for w in workers)
    print(f"20,000 deliveries by two workers in {elapsed:.1f} s")


def test_a_worker_killed_mid_fan_out_loses_nothing(
    pg: Settings, spawn: Callable[..., Any], receiver: Receiver, session_factory: Callable[[], Any]
) -> None:
    urls = [receiver.url() for _ in range(5)]
    make_endpoints(session_factory, pg, urls)
    env = {"IMI_WEBHOOK_LEASE_S": "2", "IMI_WEBHOOK_TIMEOUT_S": "1"}
    first = spawn("first", **env)
    ids = emit_many(session_factory, 400)
    wait_for(lambda: len(receiver.received()) >= 200, timeout=30, interval=0.01)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    at_kill = len(receiver.received())
    assert at_kill < 2000, "the first worker finished before it could be killed"
    with session_factory() as session:
        leased = session.execute(
            sa.select(sa.func.count()).where(WebhookDelivery.lease_owner.is_not(None))  # type: ignore[union-attr]
        ).scalar_one()
    spawn("second", **env)
    wait_for(lambda: statuses(session_factory)["succeeded"] == 2000, timeout=90, interval=0.5)
    got = receiver.received()
    pairs = Counter((r.path, r.headers["webhook-id"]) for r in got)
    assert set(pairs) == {(receiver.path(u), i) for u in urls for i in ids}  # everything arrived
    duplicates = sum(n - 1 for n in pairs.values())
    assert duplicates <= leased  # only what the killed worker held in flight can arrive twice
    assert json.loads(got[-1].body)["type"] == "standards.version.published"
