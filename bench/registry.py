"""The registry's hot reads on a registry of 10,000 schools.

- ``GET /v1/schools/{id}/affiliation`` against bare Starlette serving the same
  bytes; target ≥ 0.2 of its requests/s (a plain FastAPI + SQLModel read
  reaches 0.04–0.09 here).
- ``GET /v1/schools?q=…`` cycling through prefix queries; target p99 ≤ 50 ms.
"""

from __future__ import annotations

import json
import os
import subprocess

import httpx

from bench.common import PYTHON, ROOT, Row, prepare_sample_database, temp_dir, uvicorn_server, wrk

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
            from urllib.parse import quote

            search_paths = [f"/v1/schools?q={quote(q)}" for q in QUERIES]
            hits = [len(httpx.get(app.base + p).json()["data"]) for p in search_paths]
            script = _lua(tmp, search_paths)
            search = wrk(app.base + "/", connections=16, script=script)
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
    ]
