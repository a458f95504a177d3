"""GET /v1/standards/{slug}/current (200 and 304) from the real app vs bare Starlette.

Target (issue 2): ≥ 0.7 of the bare app's requests/s for both, with everything
the service runs per request in production switched on (rate limiter with an
unreachable limit, metrics, request logging, request ids, security headers,
the in-process worker).
"""

from __future__ import annotations

from bench.common import Row, against_bare, prepare_sample_database, temp_dir

PATH = "/v1/standards/training-standards/current"
TARGET = 0.7


def run() -> list[Row]:
    rows: list[Row] = []
    with temp_dir() as tmp:
        env = prepare_sample_database(tmp)
        m = against_bare(
            tmp, env, PATH, keep=("content-type", "etag", "cache-control", "content-language", "vary")
        )
    size = len(m.body)
    for label, real, bare in (("200", m.real_200, m.bare_200), ("304", m.real_304, m.bare_304)):
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
    rss = m.rss_mb
    rows.append(
        Row(name="API process peak RSS under load", value=rss, unit="MiB", target="≤ 200", ok=rss <= 200)
    )
    return rows
