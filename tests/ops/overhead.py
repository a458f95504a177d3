"""Per-request cost of the edge stack, measured in-process (no sockets).

``python -m tests.ops.overhead`` builds a bare Starlette app answering
precomputed bytes, wraps it in each layer alone and in the whole stack, calls
the ASGI app in a tight loop and prints microseconds per request and the
difference to the bare app. Not a test: a measuring tool (numbers vary ±15 %).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.core import logs as observability
from service.core.metrics import HttpStats
from service.web.edge import Edge
from service.web.ratelimit import RateLimiter
from service.web.telemetry import RequestRecorder

BODY = b'{"hello":"world"}' * 20
N = 5000
ROUNDS = 12


def bare() -> Starlette:
    async def endpoint(request: Request) -> Response:
        return Response(BODY, media_type="application/json", headers={"etag": '"abc"'})

    return Starlette(routes=[Route("/v1/standards/{slug}/current", endpoint)])


def layers() -> dict[str, Callable[[Any], Any]]:
    """Each variant adds one feature of :class:`Edge` to the previous one."""
    limit = "100000000/minute"

    def edge(**kwargs: Any) -> Callable[[Any], Any]:
        return lambda app: Edge(app, https=True, **kwargs)

    return {
        "bare Starlette": lambda app: app,
        "+ security headers, CORS, request id": edge(),
        "+ metrics (route template, histogram)": edge(
            recorder=RequestRecorder(HttpStats(), access_log=False)
        ),
        "+ JSON access log": edge(recorder=RequestRecorder(HttpStats())),
        "+ rate limit (memory://) = production": edge(
            recorder=RequestRecorder(HttpStats()), limiter=RateLimiter(reads=limit, strict=limit)
        ),
        "+ trusted proxy, X-Forwarded-For": edge(
            recorder=RequestRecorder(HttpStats()),
            limiter=RateLimiter(reads=limit, strict=limit),
            trusted_proxies=["127.0.0.1"],
        ),
    }


async def run(app: Any, n: int) -> float:
    scope_base = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/v1/standards/training-standards/current",
        "raw_path": b"/v1/standards/training-standards/current",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"user-agent", b"wrk"),
            (b"accept", b"*/*"),
            (b"x-forwarded-for", b"203.0.113.7"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    # CPU time of the whole process (the log writer and timer threads included),
    # not wall time: other processes on a shared machine do not count against us.
    start = time.process_time()
    for _ in range(n):
        await app(dict(scope_base), receive, send)
    return (time.process_time() - start) / n * 1e6


def main() -> None:
    # Access lines go through the writer thread to /dev/null: real writes, as in production.
    devnull = open(os.devnull, "w")  # noqa: SIM115 - closed below
    observability.configure_logging("INFO", stream=devnull)
    # Rounds interleave the variants and the best round counts: cache and scheduler
    # effects only ever add time, so the minimum is the least disturbed figure.
    apps = {name: wrap(bare()) for name, wrap in layers().items()}
    samples: dict[str, list[float]] = {name: [] for name in apps}
    for app in apps.values():
        asyncio.run(run(app, 1000))  # warm up
    for _ in range(ROUNDS):
        for name, app in apps.items():
            samples[name].append(asyncio.run(run(app, N)))
    results = {name: min(values) for name, values in samples.items()}
    base = results["bare Starlette"]
    previous = base
    print(f"{'variant':42s} {'µs/request':>10s} {'over bare':>10s} {'this step':>10s}")
    for name, us in results.items():
        print(f"{name:42s} {us:10.2f} {us - base:10.2f} {us - previous:10.2f}", file=sys.stdout)
        previous = us
    observability.shutdown_logging()
    devnull.close()


if __name__ == "__main__":
    main()
