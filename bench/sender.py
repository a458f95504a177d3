"""CPU per POST of the webhook sender against aiohttp's client (issue 13), same receiver, same run.

:data:`POSTS` signed POSTs of a 2 KB body, :data:`CONCURRENCY` at a time, from this process
(on uvloop, as the worker runs) to the fan-out benchmark's receiver (bench/receiver.py under
uvicorn, verifying every delivery) in another process. Each client's figure is this process's
CPU time (user + system) over the POSTs; the headers are signed before the clock starts, so
only the HTTP client is measured. The clients alternate (one warm-up each, then
:data:`ROUNDS` rounds of hand-written, aiohttp) and the table shows the medians and the ratio
aiohttp / hand-written (lower is better for aiohttp).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

from bench.common import Row, temp_dir, uvicorn_server

POSTS = int(os.environ.get("BENCH_SENDER_POSTS", "3000"))
CONCURRENCY = 50
ROUNDS = int(os.environ.get("BENCH_SENDER_ROUNDS", "5"))
BODY = json.dumps({"type": "standards.version.published", "data": {"pad": "x" * 1950}}).encode()


def _clients() -> dict[str, Callable[[], Any]]:
    from bench.aiohttp_sender import AiohttpSender
    from service.webhooks.sender import Sender

    return {"hand-written": Sender, "aiohttp": AiohttpSender}


async def _posts(
    make: Callable[[], Any], base: str, secrets: dict[str, str], tag: str
) -> tuple[float, float]:
    """POST :data:`POSTS` times through a new sender; returns (CPU seconds, wall seconds)."""
    from service.webhooks import signing
    from service.webhooks.attempt import READ_LIMIT, USER_AGENT

    endpoints = sorted(secrets)
    keys = {n: signing.secret_key(s) for n, s in secrets.items()}
    now = int(time.time())
    requests = []
    for i in range(POSTS):
        n = endpoints[i % len(endpoints)]
        headers = signing.headers([keys[n]], f"msg_{tag}_{i}", now, BODY)
        requests.append(
            (
                httpx.URL(f"{base}/hook/{n}"),
                [("user-agent", USER_AGENT), *((k, v) for k, v in headers.items() if k != "content-length")],
            )
        )
    sender = make()
    queue = iter(requests)

    async def runner() -> None:
        for url, headers in queue:
            answer = await sender.post(
                url, addresses=["127.0.0.1"], headers=headers, body=BODY, read_limit=READ_LIMIT
            )
            assert answer.status == 204, answer

    cpu, wall = time.process_time(), time.monotonic()
    await asyncio.gather(*(runner() for _ in range(CONCURRENCY)))
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    await sender.aclose()
    return cpu, wall


def _run_all(base: str, secrets: dict[str, str]) -> dict[str, list[tuple[float, float]]]:
    import uvloop

    clients = _clients()
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}

    async def main() -> None:
        for round_ in range(ROUNDS + 1):
            for name, make in clients.items():
                httpx.post(base + "/reset").raise_for_status()
                cpu, wall = await _posts(make, base, secrets, f"{round_}{name}")
                stats = httpx.get(base + "/stats").json()
                assert (stats["verified"], stats["rejected"]) == (POSTS, 0), stats
                label = "warm-up" if round_ == 0 else f"round {round_}"
                print(
                    f"  {label}, {name}: {cpu / POSTS * 1e6:.1f} µs CPU/POST, {POSTS / wall:,.0f} POSTs/s",
                    file=sys.stderr,
                )
                if round_:
                    results[name].append((cpu, wall))

    uvloop.run(main())
    return results


def run() -> list[Row]:
    with temp_dir() as tmp:
        secrets_file = tmp / "secrets.json"
        from service.webhooks import signing

        secrets = {str(n): signing.new_secret() for n in range(CONCURRENCY)}
        secrets_file.write_text(json.dumps(secrets))
        env = {"BENCH_SECRETS_FILE": str(secrets_file)}
        with uvicorn_server("bench.receiver:create_app", env=env, ready_path="/stats") as receiver:
            results = _run_all(receiver.base, secrets)
    cpu = {name: statistics.median(c for c, _ in runs) / POSTS * 1e6 for name, runs in results.items()}
    rate = {name: statistics.median(POSTS / w for _, w in runs) for name, runs in results.items()}
    own, other = cpu["hand-written"], cpu["aiohttp"]
    return [
        Row(name=f"CPU per POST, hand-written sender (median of {ROUNDS})", value=own, unit="µs"),
        Row(
            name=f"CPU per POST, aiohttp (median of {ROUNDS})",
            value=other,
            unit="µs",
            baseline=own,
            ratio=other / own,
        ),
        Row(name="POSTs/s, hand-written sender (median)", value=rate["hand-written"], unit="/s"),
        Row(
            name="POSTs/s, aiohttp (median)",
            value=rate["aiohttp"],
            unit="/s",
            baseline=rate["hand-written"],
            ratio=rate["aiohttp"] / rate["hand-written"],
        ),
    ]
