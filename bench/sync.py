"""Issue 11's figures: filtered fan-out cost, and the Atom feed against bare Starlette.

1. **Filtered fan-out.** A publish through the HTTP API on a service with 10,000 webhook
   endpoints of which 100 match (9,900 filtered to another document) against the same
   publish with only those 100 endpoints, each measured as the median of
   :data:`ROUNDS` minor-version publishes (a minor version emits one event: the cost
   measured is the publish and its fan-out, not the schools' re-affirmations). The
   fan-out stays one ``INSERT … SELECT``, so the 9,900 rows it skips cost SQL time
   only. Target: ≤ 1.5 ×. The in-process worker is off: what is measured is the
   request, not the sending.
2. **The feed.** ``GET /v1/feeds/standards.atom`` (200 and 304) from the real app with
   everything production runs per request, against bare Starlette answering the same
   bytes (``bench/baseline.py``) in the same run. Target: ≥ 0.7 ×, as for standards reads.

Both on SQLite with the sample data (``bench/common.py``).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from pathlib import Path

import httpx

from bench.common import (
    PYTHON,
    ROOT,
    Row,
    against_bare,
    against_bare_rows,
    client_token,
    prepare_sample_database,
    temp_dir,
    uvicorn_server,
)

MATCHING = int(os.environ.get("BENCH_SYNC_MATCHING", "100"))
TOTAL = int(os.environ.get("BENCH_SYNC_TOTAL", "10000"))
ROUNDS = int(os.environ.get("BENCH_SYNC_ROUNDS", "7"))
FEED = "/v1/feeds/standards.atom"
FANOUT_TARGET = 1.5
FEED_TARGET = 0.7


def _register(env: dict[str, str], matching: int, filtered: int) -> None:
    """``matching`` endpoints for every event and ``filtered`` ones narrowed to another document
    (their filter is written straight into the rows: what is measured is matching, not checking)."""
    code = f"""
import sqlalchemy as sa
from service.core.config import get_settings
from service.core.db import make_engine, transaction
from service.webhooks import service as wh
from service.webhooks.models import WebhookEndpoint
s = get_settings(); e = make_engine(s.database_url)
with transaction(e) as session:
    for n in range({matching} + {filtered}):
        wh.create_endpoint(session=session, owner="cli_sync%d" % (n // 1000), url="http://127.0.0.1:9/%d" % n,
                           event_types=[], description="bench", keys_dir=s.keys_dir)
    ids = [r[0] for r in session.execute(sa.select(WebhookEndpoint.id).order_by(WebhookEndpoint.id))]
    narrowed = ids[{matching}:]
    for start in range(0, len(narrowed), 500):
        session.execute(sa.update(WebhookEndpoint).where(WebhookEndpoint.id.in_(narrowed[start:start + 500]))
                        .values(filter_documents=["another-document"]))
"""
    subprocess.run([PYTHON, "-c", code], cwd=ROOT, env={**os.environ, **env}, check=True)


def _publish_times(env: dict[str, str], tmp: Path, label: str) -> tuple[list[float], int]:
    """Seconds of each publish request (minor versions 2.1, 2.2, …) and deliveries made by the last."""
    times: list[float] = []
    service_env = {**env, "IMI_IN_PROCESS_WORKER": "false"}
    with uvicorn_server("service.main:app_from_env", env=service_env, ready_path="/healthz") as app:
        token = client_token(service_env, app.base, "standards:write", name="bench editor")
        auth = {"Authorization": f"Bearer {token}"}
        slug = "/v1/standards/training-standards"
        for n in range(1, ROUNDS + 1):
            version = f"2.{n}"
            r = httpx.post(
                app.base + slug + "/versions", json={"version": version, "based_on": "2.0"}, headers=auth
            )
            r.raise_for_status()
            time.sleep(0.3)
            start = time.perf_counter()
            r = httpx.post(app.base + slug + f"/versions/{version}/publish", headers=auth, timeout=60)
            r.raise_for_status()
            times.append(time.perf_counter() - start)
    code = """
import sqlalchemy as sa
from service.core.config import get_settings
from service.core.db import make_engine
e = make_engine(get_settings().database_url)
with e.connect() as c:
    last = c.execute(sa.text("SELECT id FROM events ORDER BY sequence DESC LIMIT 1")).scalar_one()
    q = sa.text("SELECT count(*) FROM webhook_deliveries WHERE message_id = :m")
    print(c.execute(q, {"m": last}).scalar_one())
"""
    out = subprocess.run(
        [PYTHON, "-c", code], cwd=ROOT, env={**os.environ, **env}, check=True, capture_output=True, text=True
    ).stdout
    print(f"  {label}: publishes {', '.join(f'{t * 1000:.0f}' for t in times)} ms", flush=True)
    return times, int(out.strip().splitlines()[-1])


def _fan_out_rows() -> list[Row]:
    results: dict[str, float] = {}
    made: dict[str, int] = {}
    for label, filtered in (("few", 0), ("many", TOTAL - MATCHING)):
        with temp_dir() as tmp:
            env = prepare_sample_database(tmp)
            _register(env, MATCHING, filtered)
            times, deliveries = _publish_times(env, tmp, f"{MATCHING + filtered} endpoints")
            results[label] = statistics.median(times[1:])  # the first compiles statements, warms caches
            made[label] = deliveries
    ratio = results["many"] / results["few"]
    return [
        Row(name=f"publish, {MATCHING} endpoints (median)", value=results["few"] * 1000, unit="ms"),
        Row(
            name=f"publish, {TOTAL} endpoints, {MATCHING} match (median)",
            value=results["many"] * 1000,
            unit="ms",
            baseline=results["few"] * 1000,
            ratio=ratio,
            target=f"≤ {FANOUT_TARGET}",
            ok=ratio <= FANOUT_TARGET and made["many"] == made["few"] == MATCHING,
        ),
    ]


def _feed_rows() -> list[Row]:
    rows: list[Row] = []
    with temp_dir() as tmp:
        env = prepare_sample_database(tmp)
        m = against_bare(
            tmp, env, FEED, keep=("content-type", "etag", "cache-control", "vary", "last-modified")
        )
    rows.extend(against_bare_rows(m, "feed standards.atom", FEED_TARGET))
    return rows


def run() -> list[Row]:
    return _fan_out_rows() + _feed_rows()
