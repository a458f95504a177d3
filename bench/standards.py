"""GET /v1/standards/{slug}/current (200 and 304) from the real app vs bare Starlette.

Target (issue 2): ≥ 0.7 of the bare app's requests/s for both, with everything
the service runs per request in production switched on (rate limiter with an
unreachable limit, metrics, request logging, request ids, security headers,
the in-process worker).
"""

from __future__ import annotations

import json

import httpx

from bench.common import (
    Row,
    prepare_sample_database,
    temp_dir,
    uvicorn_server,
    wrk,
)

PATH = "/v1/standards/training-standards/current"
TARGET = 0.7


def run() -> list[Row]:
    rows: list[Row] = []
    with temp_dir() as tmp:
        env = prepare_sample_database(tmp)
        with uvicorn_server("service.main:app_from_env", env=env, ready_path="/healthz") as app:
            first = httpx.get(app.base + PATH)
            first.raise_for_status()
            etag = first.headers["etag"]
            (tmp / "body").write_bytes(first.content)
            keep = {
                k: v
                for k, v in first.headers.items()
                if k in ("content-type", "etag", "cache-control", "content-language", "vary")
            }
            (tmp / "headers.json").write_text(json.dumps(keep))
            wrk(app.base + PATH, seconds=2)  # warm-up
            real_200 = wrk(app.base + PATH)
            real_304 = wrk(app.base + PATH, headers={"If-None-Match": etag})
            rss = app.peak_rss_mb()
        base_env = {"BENCH_BODY_FILE": str(tmp / "body"), "BENCH_HEADERS_FILE": str(tmp / "headers.json")}
        with uvicorn_server("bench.baseline:create_app", env=base_env, ready_path=PATH) as bare:
            wrk(bare.base + PATH, seconds=2)
            bare_200 = wrk(bare.base + PATH)
            bare_304 = wrk(bare.base + PATH, headers={"If-None-Match": etag})
    size = len(first.content)
    for label, real, bare in (("200", real_200, bare_200), ("304", real_304, bare_304)):
        ratio = real.rps / bare.rps
        rows.append(
            Row(
                name=f"standards /current {label} ({size // 1024} KB) req/s",
                value=real.rps,
                unit="req/s",
                baseline=bare.rps,
                ratio=ratio,
                target=f"≥ {TARGET}",
                ok=ratio >= TARGET and real.non_2xx_3xx == 0,
            )
        )
        rows.append(
            Row(name=f"standards /current {label} p99", value=real.p99_ms, unit="ms", baseline=bare.p99_ms)
        )
    rows.append(
        Row(name="API process peak RSS under load", value=rss, unit="MiB", target="≤ 200", ok=rss <= 200)
    )
    return rows
