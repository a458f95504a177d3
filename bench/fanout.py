"""Publish → all N endpoints have a verified delivery (issue 4), against a bare
httpx loop posting the same signed bytes at the same concurrency in the same run.

The service runs as ``imi-api serve`` does (in-process worker, SQLite, sample
data); N endpoints on one local receiver process that verifies each delivery
with the stock ``standardwebhooks`` library. The publish goes through the HTTP
API; the clock runs from the publish request to the receiver's N-th verified
delivery. During the fan-out, wrk reads ``/current`` and gives its p99.
The baseline uses the best httpx pattern of PERFORMANCE.md: several small
``AsyncClient``s (5 connections each), the worker's total concurrency.
Targets: ≤ 1.5 × the bare loop's time, ≥ 1,000 verified deliveries/s,
standards-read p99 ≤ 50 ms during the fan-out.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import httpx

from bench.common import (
    PYTHON,
    ROOT,
    Row,
    free_port,
    prepare_sample_database,
    temp_dir,
    uvicorn_server,
    wrk,
)

N = int(os.environ.get("BENCH_ENDPOINTS", "1000"))
CLIENTS, CONNECTIONS = 12, 5  # the worker's defaults: healthy_clients × connections


def _register(env: dict[str, str], receiver: str, tmp: Path) -> None:
    """Create N endpoints for one association directly through the service; write their secrets."""
    code = f"""
import json, os
from service.config import get_settings
from service.db import make_engine, transaction
from service.webhooks import service as wh
s = get_settings(); e = make_engine(s.database_url); secrets = {{}}
with transaction(e) as session:
    for n in range({N}):
        ep, secret = wh.create_endpoint(session=session, owner="cli_bench", url="{receiver}/hook/%d" % n,
                                        event_types=[], description="bench", keys_dir=s.keys_dir)
        secrets[str(n)] = secret
open("{tmp}/secrets.json", "w").write(json.dumps(secrets))
"""
    subprocess.run([PYTHON, "-c", code], cwd=ROOT, env={**os.environ, **env}, check=True)


def _editor_token(env: dict[str, str], base: str) -> str:
    out = subprocess.run(
        [
            PYTHON,
            "-m",
            "service.cli",
            "clients",
            "create",
            "--name",
            "bench editor",
            "--scope",
            "standards:write",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    creds = json.loads(out.strip().splitlines()[-1])
    r = httpx.post(
        base + "/v1/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(creds["client_id"], creds["client_secret"]),
    )
    r.raise_for_status()
    return str(r.json()["access_token"])


def _wait_for(receiver: str, count: int, timeout_s: float = 120.0) -> dict[str, float]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stats = httpx.get(receiver + "/stats").json()
        if stats["verified"] >= count:
            return dict(stats)
        time.sleep(0.02)
    raise RuntimeError(f"only {stats['verified']} of {count} deliveries verified in {timeout_s} s")


async def _bare_loop(receiver: str, secrets: dict[str, str], body: bytes) -> float:
    from service.webhooks import signing

    keys = {n: signing.secret_key(s) for n, s in secrets.items()}
    clients = [httpx.AsyncClient(limits=httpx.Limits(max_connections=CONNECTIONS)) for _ in range(CLIENTS)]
    queue: asyncio.Queue[str] = asyncio.Queue()
    for n in secrets:
        queue.put_nowait(n)

    async def runner(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            n = queue.get_nowait()
            headers = signing.headers([keys[n]], "msg_bare", int(time.time()), body)
            r = await client.post(f"{receiver}/hook/{n}", content=body, headers=dict(headers))
            r.raise_for_status()

    start = time.monotonic()
    await asyncio.gather(*(runner(c) for c in clients for _ in range(CONNECTIONS)))
    elapsed = time.monotonic() - start
    for c in clients:
        await c.aclose()
    return elapsed


def run() -> list[Row]:
    with temp_dir() as tmp:
        env = prepare_sample_database(tmp)
        receiver_port_env = {"BENCH_SECRETS_FILE": str(tmp / "secrets.json")}
        # Register the endpoints against a chosen port, then start the receiver there with their secrets.
        port = free_port()
        receiver = f"http://127.0.0.1:{port}"
        _register(env, receiver, tmp)
        with uvicorn_server(
            "bench.receiver:create_app", env=receiver_port_env, port=port, ready_path="/stats"
        ):
            with uvicorn_server("service.main:app_from_env", env=env, ready_path="/healthz") as app:
                token = _editor_token(env, app.base)
                auth = {"Authorization": f"Bearer {token}"}
                slug = "/v1/standards/training-standards"
                r = httpx.post(
                    app.base + slug + "/versions", json={"version": "2.1", "based_on": "2.0"}, headers=auth
                )
                r.raise_for_status()
                httpx.get(app.base + slug + "/current").raise_for_status()
                reads: dict[str, object] = {}

                def read_load() -> None:
                    reads["r"] = wrk(app.base + slug + "/current", seconds=4, connections=8)

                reader = threading.Thread(target=read_load)
                reader.start()
                time.sleep(0.5)
                start = time.monotonic()
                r = httpx.post(app.base + slug + "/versions/2.1/publish", headers=auth, timeout=30)
                r.raise_for_status()
                stats = _wait_for(receiver, N)
                service_s = float(stats["last"]) - start
                reader.join()
                read_p99 = reads["r"].p99_ms  # type: ignore[attr-defined]
                body = httpx.get(app.base + "/v1/events?type=standards.version.published").json()
                payload = json.dumps(body["data"][-1], ensure_ascii=False, separators=(",", ":")).encode()
            secrets = json.loads((tmp / "secrets.json").read_text())
            httpx.post(receiver + "/reset")
            bare_s = asyncio.run(_bare_loop(receiver, secrets, payload))
            bare_stats = _wait_for(receiver, N)
            assert bare_stats["rejected"] == 0
    rate = N / service_s
    return [
        Row(
            name=f"fan-out publish → {N} verified deliveries",
            value=service_s,
            unit="s",
            baseline=bare_s,
            ratio=service_s / bare_s,
            target="≤ 1.5 × bare (ratio)",
            ok=service_s / bare_s <= 1.5,
        ),
        Row(name="fan-out verified deliveries/s", value=rate, unit="/s", target="≥ 1,000", ok=rate >= 1000),
        Row(
            name="standards /current p99 during fan-out",
            value=read_p99,
            unit="ms",
            target="≤ 50",
            ok=read_p99 <= 50,
        ),
    ]
