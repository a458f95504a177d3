"""The registry's hot reads on a registry of 10,000 schools.

- ``GET /v1/schools/{id}/affiliation`` against bare Starlette serving the same
  bytes; target ≥ 0.2 of its requests/s (a plain FastAPI + SQLModel read
  reaches 0.04–0.09 here).
- ``GET /v1/schools?q=…`` cycling through prefix queries; target p99 ≤ 50 ms. After the
  first round these are answered from the in-process page cache, so two informational rows
  say what a query costs when it is not: ``UNCACHED`` distinct queries (never asked before,
  none sharing a cache key), one at a time over HTTP: median and p99 latency, and the server
  process's CPU time per query.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import time
from urllib.parse import quote

import httpx

from bench.common import PYTHON, ROOT, Row, prepare_sample_database, temp_dir, uvicorn_server, wrk
from bench.populate import CITIES, WORDS
from service.registry.folding import query_words

SCHOOLS = int(os.environ.get("BENCH_SCHOOLS", "10000"))
QUERIES = [
    "zur",
    "sao paulo",
    "mindful centre",
    "kyo",
    "istanbul",
    "heart",
    "river garden",
    "θεσσ",
    "montreal",
    "insight 12",
]
AFFILIATION_TARGET = 0.2
SEARCH_P99_MS = 50.0
UNCACHED = int(os.environ.get("BENCH_UNCACHED_QUERIES", "400"))


def distinct_queries(count: int, *, taken: list[str]) -> list[str]:
    """``count`` queries a registry filled by ``bench.populate`` answers, each with its own
    search-cache key and none sharing one with ``taken``: every word and city cut to 3–8
    letters, then two such prefixes, or a prefix and a number (deterministic)."""
    rng = random.Random(7)
    words = [w.lower() for w in WORDS] + [city.lower() for _, city in CITIES if " " not in city]
    candidates = [w[:n] for w in words for n in range(3, min(len(w), 8) + 1)]
    seen = {tuple(query_words(q)) for q in taken}
    out: list[str] = []
    while len(out) < count:
        if candidates:
            q = candidates.pop(0)
        elif rng.random() < 0.7:
            a, b = rng.sample(words, 2)
            q = f"{a[: rng.randint(3, 6)]} {b[: rng.randint(3, 6)]}"
        else:
            q = f"{rng.choice(words)[: rng.randint(3, 7)]} {rng.randint(1, 99)}"
        key = tuple(query_words(q))
        if key not in seen:
            seen.add(key)
            out.append(q)
    return out


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def uncached_latencies(base: str, pid: int, queries: list[str]) -> tuple[list[float], float]:
    """Milliseconds per query, one request at a time over one connection (sorted), and the
    server's CPU milliseconds per query."""
    times = []
    cpu = _cpu_s(pid)
    with httpx.Client(base_url=base, timeout=60) as client:  # a slow query is a figure, not a crash
        for q in queries:
            began = time.perf_counter()
            r = client.get(f"/v1/schools?q={quote(q)}")
            times.append((time.perf_counter() - began) * 1000)
            r.raise_for_status()
    return sorted(times), (_cpu_s(pid) - cpu) * 1000 / len(queries)


def _lua(tmp: os.PathLike[str], paths: list[str]) -> str:
    script = os.path.join(tmp, "paths.lua")
    items = ", ".join(json.dumps(p) for p in paths)
    with open(script, "w") as fh:
        fh.write(
            f"local paths = {{{items}}}\nlocal i = 0\n"
            "request = function()\n  i = i % #paths + 1\n"
            "  return wrk.format(nil, paths[i])\nend\n"
        )
    return script


def run() -> list[Row]:
    with temp_dir() as tmp:
        env = prepare_sample_database(tmp)
        subprocess.run(
            [PYTHON, "-m", "bench.populate", str(SCHOOLS)], cwd=ROOT, env={**os.environ, **env}, check=True
        )
        with uvicorn_server("service.main:app_from_env", env=env, ready_path="/healthz") as app:
            listed = httpx.get(app.base + "/v1/schools?q=zur&limit=1").json()["data"]
            school_id = listed[0]["id"]
            path = f"/v1/schools/{school_id}/affiliation"
            first = httpx.get(app.base + path)
            first.raise_for_status()
            (tmp / "body").write_bytes(first.content)
            keep = {k: v for k, v in first.headers.items() if k in ("content-type", "etag", "cache-control")}
            (tmp / "headers.json").write_text(json.dumps(keep))
            wrk(app.base + path, seconds=2)
            affiliation = wrk(app.base + path)
            search_paths = [f"/v1/schools?q={quote(q)}" for q in QUERIES]
            hits = [len(httpx.get(app.base + p).json()["data"]) for p in search_paths]
            script = _lua(tmp, search_paths)
            search = wrk(app.base + "/", connections=16, script=script)
            uncached, uncached_cpu = uncached_latencies(
                app.base, app.proc.pid, distinct_queries(UNCACHED, taken=[*QUERIES, "zur"])
            )
        base_env = {"BENCH_BODY_FILE": str(tmp / "body"), "BENCH_HEADERS_FILE": str(tmp / "headers.json")}
        with uvicorn_server("bench.baseline:create_app", env=base_env, ready_path=path) as bare:
            wrk(bare.base + path, seconds=2)
            baseline = wrk(bare.base + path)
    ratio = affiliation.rps / baseline.rps
    return [
        Row(
            name=f"registry affiliation ({len(first.content)} B) req/s",
            value=affiliation.rps,
            unit="req/s",
            baseline=baseline.rps,
            ratio=ratio,
            target=f"≥ {AFFILIATION_TARGET}",
            ok=ratio >= AFFILIATION_TARGET and affiliation.non_2xx_3xx == 0,
        ),
        Row(
            name=f"registry search p99 at {SCHOOLS:,} schools (16 conns)",
            value=search.p99_ms,
            unit="ms",
            target=f"≤ {SEARCH_P99_MS:.0f}",
            ok=search.p99_ms <= SEARCH_P99_MS and search.non_2xx_3xx == 0,
        ),
        Row(
            name=f"registry search req/s ({min(hits)}–{max(hits)} hits/page)", value=search.rps, unit="req/s"
        ),
        Row(
            name=f"registry search uncached median ({len(uncached)} distinct q, 1 conn)",
            value=statistics.median(uncached),
            unit="ms",
        ),
        Row(
            name=f"registry search uncached p99 ({len(uncached)} distinct q, 1 conn)",
            value=uncached[int(len(uncached) * 0.99)],
            unit="ms",
        ),
        Row(name="registry search uncached server CPU per query", value=uncached_cpu, unit="ms"),
    ]
