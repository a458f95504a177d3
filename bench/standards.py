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

from bench.common import Row, against_bare, against_bare_rows, prepare_sample_database, temp_dir

PATH = "/v1/standards/training-standards/current"
TARGET = 0.9


def run() -> list[Row]:
    rows: list[Row] = []
    with temp_dir() as tmp:
        env = prepare_sample_database(tmp)
        m = against_bare(
            tmp, env, PATH, keep=("content-type", "etag", "cache-control", "content-language", "vary")
        )
    rows.extend(against_bare_rows(m, "standards /current", TARGET))
    for label, real, bare in (("200", m.real_200, m.bare_200), ("304", m.real_304, m.bare_304)):
        rows.append(
            Row(name=f"standards /current {label} p99", value=real.p99_ms, unit="ms", baseline=bare.p99_ms)
        )
    rss = m.rss_mb
    peak = "API process peak RSS under load"
    rows.append(Row(name=peak, value=rss, unit="MiB", target="≤ 200", ok=rss <= 200))
    return rows
