"""GET /v1/standards/{slug}/current (200 and 304) from the real app vs bare Starlette.

Target (issue 14): ≥ 0.9 of the bare app's requests/s for both, with every layer the
service runs per request in production switched on: the rate limiter (with a limit the
benchmark does not reach), request ids, security headers and CORS, metrics, the JSON
access log (written by its thread to stderr, which goes to /dev/null here as a log
shipper would take it), the in-process delivery worker. Both servers run side by side
and wrk alternates between them, three runs each; the ratio is of the medians
(single runs vary by ±15 % on this shared machine, PERFORMANCE.md).
"""

from __future__ import annotations

import json

import httpx

from bench.common import (
    Row,
    median,
    prepare_sample_database,
    temp_dir,
    uvicorn_server,
    wrk,
)

PATH = "/v1/standards/training-standards/current"
TARGET = 0.9
RUNS = 3


def run() -> list[Row]:
    rows: list[Row] = []
    with temp_dir() as tmp:
        env = {**prepare_sample_database(tmp), "IMI_LOG_LEVEL": "INFO"}
        with uvicorn_server("service.main:app_from_env", env=env, ready_path="/healthz", quiet=True) as app:
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
            base_env = {"BENCH_BODY_FILE": str(tmp / "body"), "BENCH_HEADERS_FILE": str(tmp / "headers.json")}
            with uvicorn_server("bench.baseline:create_app", env=base_env, ready_path=PATH) as bare:
                wrk(app.base + PATH, seconds=2)  # warm-up
                wrk(bare.base + PATH, seconds=2)
                results: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
                for _ in range(RUNS):
                    for label, headers in (("200", None), ("304", {"If-None-Match": etag})):
                        for side, server in (("real", app), ("bare", bare)):
                            r = wrk(server.base + PATH, headers=headers)
                            results.setdefault((label, side), []).append((r.rps, r.p99_ms, r.non_2xx_3xx))
            rss = app.peak_rss_mb()
    size = len(first.content)
    for label in ("200", "304"):
        real = results[(label, "real")]
        bare_runs = results[(label, "bare")]
        real_rps, bare_rps = median([r[0] for r in real]), median([r[0] for r in bare_runs])
        ratio = real_rps / bare_rps
        runs = ", ".join(f"{r[0] / b[0]:.2f}" for r, b in zip(real, bare_runs, strict=True))
        rows.append(
            Row(
                name=f"standards /current {label} ({size // 1024} KB) req/s, median of {RUNS} (runs {runs})",
                value=real_rps,
                unit="req/s",
                baseline=bare_rps,
                ratio=ratio,
                target=f"≥ {TARGET}",
                ok=ratio >= TARGET and all(r[2] == 0 for r in real),
            )
        )
        rows.append(
            Row(
                name=f"standards /current {label} p99",
                value=median([r[1] for r in real]),
                unit="ms",
                baseline=median([r[1] for r in bare_runs]),
            )
        )
    rows.append(
        Row(name="API process peak RSS under load", value=rss, unit="MiB", target="≤ 200", ok=rss <= 200)
    )
    return rows
