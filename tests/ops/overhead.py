"""Per-request cost of the edge stack, measured in-process (no sockets).

``python -m tests.ops.overhead`` builds a bare Starlette app answering
precomputed bytes, wraps it in each layer alone and in the whole stack, calls
the ASGI app in a tight loop and prints microseconds per request and the
difference to the bare app. Not a test: a measuring tool (numbers vary ±15 %).
"""

from __future__ import annotations

import asyncio
import io
import sys
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service import observability
from service.edge import Edge
from service.observability import HttpStats, RequestObservability
from service.ratelimit import RateLimit

BODY = b'{"hello":"world"}' * 20
N = 4000
ROUNDS = 15


def bare() -> Starlette:
    async def endpoint(request: Request) -> Response:
        return Response(BODY, media_type="application/json", headers={"etag": '"abc"'})

    return Starlette(routes=[Route("/v1/standards/{slug}/current", endpoint)])


def layers() -> dict[str, Callable[[Any], Any]]:
    limit = "100000000/minute"
    return {
        "bare": lambda app: app,
        "edge (security headers + CORS)": lambda app: Edge(app, https=True),
        "edge + trusted proxies (XFF)": lambda app: Edge(app, https=True, trusted_proxies=["127.0.0.1"]),
        "observability (id, metrics, log)": lambda app: RequestObservability(app, stats=HttpStats()),
        "rate limit (memory://)": lambda app: RateLimit(app, reads=limit, strict=limit),
        "whole stack": lambda app: Edge(
            RequestObservability(RateLimit(app, reads=limit, strict=limit), stats=HttpStats()), https=True
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

    start = time.perf_counter()
    for _ in range(n):
        await app(dict(scope_base), receive, send)
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    # Access lines go to an in-memory stream through the writer thread, as in production.
    observability.configure_logging("INFO", stream=io.StringIO())
    # Rounds interleave the variants and the best round counts: other processes on
    # the machine only ever add time, so the minimum is the least disturbed figure.
    apps = {name: wrap(bare()) for name, wrap in layers().items()}
    samples: dict[str, list[float]] = {name: [] for name in apps}
    for app in apps.values():
        asyncio.run(run(app, 1000))  # warm up
    for _ in range(ROUNDS):
        for name, app in apps.items():
            samples[name].append(asyncio.run(run(app, N)))
    results = {name: min(values) for name, values in samples.items()}
    base = results["bare"]
    for name, us in results.items():
        print(f"{name:36s} {us:7.2f} µs/request  (+{us - base:5.2f} µs)", file=sys.stdout)
    observability.shutdown_logging()


if __name__ == "__main__":
    main()
