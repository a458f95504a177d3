"""The scale-out layout of deploy/compose.yaml, started as plain processes (no container engine):
one ``imi-api migrate``, two API replicas (``serve --no-worker --no-migrate``) and two
``imi-api worker`` processes sharing one fresh PostgreSQL database and one keys directory,
with a real webhook receiver on 127.0.0.1.

Checked end to end: a publish through replica A is served by both replicas within 2 s (DESIGN
§4), both replicas show the same gap-free feed, every endpoint gets each matching event exactly
once (two workers never send the same delivery), every signature verifies with the stock
``standardwebhooks`` library, ``/readyz`` is 200 on both replicas, and every process stops on
SIGTERM within seconds (the workers gracefully, releasing their leases).
"""

from __future__ import annotations

import json
import re
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook

from tests.helpers import SLUG, publish_version, wait_for
from tests.ops.processes import (
    Processes,
    bearer,
    environment,
    free_port,
    matches,
    processes,
    read_feed,
    receiver,
    wait_ready,
)
from tests.webhooks.conftest import Receiver

#: Event types per endpoint: three take everything, two only publications.
FILTERS: list[list[str]] = [[], [], [], ["standards.version.published"], ["standards.version.published"]]


@pytest.fixture
def topology_db(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty (not migrated) PostgreSQL database; dropped afterwards."""
    name = f"imi_topology_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base, _, _ = pg_admin_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def procs(topology_db: str, tmp_path: Path) -> Iterator[Processes]:
    with processes(tmp_path) as p:  # stopped before the database is dropped
        yield p


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def publish(base: str, editor: dict[str, str], version: str, based_on: str | None) -> dict[str, Any]:
    """Draft ``version`` (creating the document for the first), edit it, publish it; the 200 body."""
    versions = f"{base}/v1/standards/{SLUG}/versions"
    return publish_version(httpx, versions, editor, version, new_document=based_on is None, based_on=based_on)


def current_version(base: str) -> str | None:
    r = httpx.get(f"{base}/v1/standards/{SLUG}/current", timeout=5)
    return str(r.json()["version"]) if r.status_code == 200 else None


@pytest.mark.timeout(90)
def test_two_replicas_and_two_workers_on_one_database(
    topology_db: str, procs: Processes, hooks: Receiver, tmp_path: Path
) -> None:
    began = time.monotonic()
    port_a, port_b = free_port(), free_port()
    base_a, base_b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
    keys = tmp_path / "keys"  # the shared secret directory of every process
    env = environment(
        IMI_DATABASE_URL=topology_db,
        IMI_KEYS_DIR=str(keys),
        # One public address (a load balancer's) for links and the tokens' iss/aud, as in compose.
        IMI_PUBLIC_BASE_URL=base_a,
        IMI_WEBHOOK_TARGETS="loopback",
        IMI_WEBHOOK_RETRY_SCHEDULE="0,0.5,0.5,1",
        IMI_WEBHOOK_TIMEOUT_S="5",
        IMI_RATE_LIMIT_READS="100000/minute",
        IMI_RATE_LIMIT_STRICT="100000/minute",
        IMI_LOG_LEVEL="INFO",
    )

    # What compose does before the replicas start: the keys (README), the one-shot migration.
    procs.run(["keys", "generate"], ["migrate"], env=env)
    api_a = procs.start("api-a", ["serve", "--no-worker", "--no-migrate", "--port", str(port_a)], env)
    api_b = procs.start("api-b", ["serve", "--no-worker", "--no-migrate", "--port", str(port_b)], env)
    beats = [tmp_path / "worker-1.heartbeat", tmp_path / "worker-2.heartbeat"]
    workers = [
        procs.start(f"worker-{i + 1}", ["worker", "--heartbeat", str(beat)], env)
        for i, beat in enumerate(beats)
    ]
    association, editor_client, steward_client = procs.create_clients(
        env,
        ("Association", ["webhooks:manage"]),
        ("Standards editor", ["standards:write"]),
        ("Registry steward", ["registry:write"]),
    )
    wait_ready(base_a, api_a, timeout=40)
    wait_ready(base_b, api_b, timeout=40)
    wait_for(lambda: all(b.exists() for b in beats), timeout=30, what="both workers alive (heartbeat)")
    assert all(w.running() for w in workers), [w.output() for w in workers]
    started = time.monotonic() - began

    # Tokens come from either replica and work on both: the signing keys are shared.
    manager = bearer(base_b, *association)
    editor = bearer(base_a, *editor_client)
    steward = bearer(base_b, *steward_client)

    urls = [hooks.url(f"endpoint-{i}") for i in range(len(FILTERS))]
    secrets: dict[str, str] = {}
    for url, types in zip(urls, FILTERS, strict=True):
        r = httpx.post(
            f"{base_a}/v1/webhooks/endpoints", json={"url": url, "event_types": types}, headers=manager
        )
        assert r.status_code == 201, r.text
        secrets[hooks.path(url)] = r.json()["secret"]

    publish(base_a, editor, "1.0", None)
    # Both replicas serve 1.0 (and B has it in its representation cache from now on).
    for base in (base_a, base_b):
        wait_for(lambda b=base: current_version(b) == "1.0", timeout=2, what=f"1.0 current at {base}")
    r = httpx.post(
        f"{base_b}/v1/schools",
        json={"name": "Zürcher Institut für Achtsamkeit", "country": "CH"},
        headers=steward,
    )
    assert r.status_code == 201, r.text

    publish(base_a, editor, "1.1", "1.0")
    published = time.monotonic()
    seen: dict[str, float] = {}
    while len(seen) < 2 and time.monotonic() - published < 3:
        for base in (base_a, base_b):
            if base not in seen and current_version(base) == "1.1":
                seen[base] = time.monotonic() - published
        time.sleep(0.02)
    assert set(seen) == {base_a, base_b}, f"1.1 served by {sorted(seen)} only"
    assert max(seen.values()) < 2.0, seen

    # One gap-free feed, the same through both replicas.
    feed = read_feed(base_a)
    assert [e["sequence"] for e in feed] == [1, 2, 3]
    assert [e["type"] for e in feed] == [
        "standards.version.published",
        "school.listed",
        "standards.version.published",
    ]
    assert read_feed(base_b) == feed

    # Every endpoint gets exactly its events, once each, signed with its own secret.
    expected = {
        (hooks.path(url), e["id"])
        for url, types in zip(urls, FILTERS, strict=True)
        for e in feed
        if matches(types, e["type"])
    }
    assert len(expected) == 3 * 3 + 2 * 2

    def arrived() -> set[tuple[str, str]]:
        return {(r.path, r.headers["webhook-id"]) for r in hooks.received()}

    wait_for(lambda: arrived() >= expected, timeout=15, what="every delivery received")
    delivered = time.monotonic() - published
    time.sleep(1.0)  # a duplicate sent by a second worker would arrive meanwhile
    got = hooks.received()
    counts = Counter((r.path, r.headers["webhook-id"]) for r in got)
    assert set(counts) == expected
    assert {k: n for k, n in counts.items() if n > 1} == {}
    by_id = {e["id"]: e for e in feed}
    for req in got:
        payload = Webhook(secrets[req.path]).verify(req.body, req.headers)
        assert payload == json.loads(json.dumps(by_id[req.headers["webhook-id"]]))

    # The delivery log agrees: one successful attempt each.
    r = httpx.get(f"{base_a}/v1/webhooks/endpoints", headers=manager)
    assert r.status_code == 200, r.text
    for endpoint in r.json()["data"]:
        d = httpx.get(f"{base_b}/v1/webhooks/endpoints/{endpoint['id']}/deliveries", headers=manager)
        assert d.status_code == 200, d.text
        assert [(x["status"], x["attempt_count"]) for x in d.json()["data"]] == [("succeeded", 1)] * (
            3 if not endpoint["event_types"] else 2
        )

    for base in (base_a, base_b):
        r = httpx.get(f"{base}/readyz")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "ready"

    # SIGTERM to all four at once: each stops within a few seconds, gracefully. uvicorn re-raises
    # the signal after its graceful shutdown (so the exit status says SIGTERM); the workers exit 0.
    stopped = procs.stop([api_a, api_b, *workers], timeout=15)
    codes = {name: code for name, (code, _) in stopped.items()}
    assert codes == {"api-a": -signal.SIGTERM, "api-b": -signal.SIGTERM, "worker-1": 0, "worker-2": 0}, {
        p.name: p.output()[-2000:] for p in (api_a, api_b, *workers)
    }
    assert max(seconds for _, seconds in stopped.values()) < 10, stopped
    for api in (api_a, api_b):
        log = api.output()
        # The last lines of a graceful shutdown reach the log (nothing buffered is lost).
        assert "Application shutdown complete" in log and "Finished server process" in log, log[-1500:]
    for w in workers:
        log = w.output()
        # SIGTERM seen, then the worker finished its attempts and released its leases.
        assert re.search(r"stopping the webhook worker.*webhook worker \S+ stopped", log, re.S), log[-1500:]
    for proc in (api_a, api_b, *workers):
        assert "Traceback" not in proc.output(), proc.output()
    engine = sa.create_engine(topology_db)
    with engine.connect() as conn:
        leased = conn.execute(
            sa.text("SELECT count(*) FROM webhook_deliveries WHERE lease_owner IS NOT NULL")
        )
        assert leased.scalar_one() == 0
    engine.dispose()
    total = time.monotonic() - began
    print(
        f"topology: started in {started:.1f} s; 1.1 current on A after {seen[base_a]:.2f} s, "
        f"on B after {seen[base_b]:.2f} s; all deliveries {delivered:.2f} s after the publish; "
        f"stopped in {max(s for _, s in stopped.values()):.2f} s; total {total:.1f} s"
    )
    # Starting seven Python processes is what takes time on a busy machine (the timeout mark
    # bounds it); everything after the start is quick.
    assert total - started < 30
