"""What the transparency log costs writers, and how fast its proofs are served.

- **Write cost, log on vs off**: two services side by side on the sample data, one with the
  log (the default), one with ``IMI_TRANSPARENCY_LOG=false`` (a switch for this benchmark
  only). Requests alternate between them one at a time, so the machine's drift hits both
  alike: ``PATCH /v1/schools/{id}`` (``school.updated``: one leaf) and minor publishes
  (``POST …/publish``: one leaf). Target: the median with the log ≤ 1.2 × without.
- **Inclusion proofs**: ``GET /v1/log/proof/inclusion`` from the real app (everything on,
  as in production) against bare Starlette serving the same bytes (PERFORMANCE.md's 1.00),
  for one proof and cycling through a proof for every event. Target ≥ 0.5 ×.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

from bench.common import (
    Row,
    Server,
    client_token,
    prepare_sample_database,
    temp_dir,
    uvicorn_server,
    wrk,
)

WRITE_TARGET = 1.2
PROOF_TARGET = 0.5
EDITS = int(os.environ.get("BENCH_LOG_EDITS", "80"))
PUBLISHES = int(os.environ.get("BENCH_LOG_PUBLISHES", "20"))
SLUG = "/v1/standards/training-standards"


class Writer:
    """One service under test and the state its writes need (tokens, ETags)."""

    def __init__(self, server: Server, env: dict[str, str]) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.base, timeout=30)
        self.auth = {
            "Authorization": f"Bearer {client_token(env, server.base, 'standards:write', 'registry:write')}"
        }
        schools = self.http.get("/v1/schools", params={"limit": 200}).json()["data"]
        self.etags = {s["id"]: self.http.get(f"/v1/schools/{s['id']}").headers["etag"] for s in schools}
        self.ids = sorted(self.etags)
        self.edits: list[float] = []
        self.publishes: list[float] = []

    def edit(self, n: int) -> None:
        school = self.ids[n % len(self.ids)]
        headers = {
            **self.auth,
            "If-Match": self.etags[school],
            "Content-Type": "application/merge-patch+json",
        }
        body = json.dumps({"city": f"City {n}"})
        start = time.perf_counter()
        r = self.http.patch(f"/v1/schools/{school}", content=body, headers=headers)
        self.edits.append(time.perf_counter() - start)
        r.raise_for_status()
        self.etags[school] = r.headers["etag"]

    def publish(self, n: int) -> None:
        version = f"2.{n + 1}"
        draft = self.http.post(
            f"{SLUG}/versions", json={"version": version, "based_on": "2.0"}, headers=self.auth
        )
        draft.raise_for_status()
        start = time.perf_counter()
        r = self.http.post(f"{SLUG}/versions/{version}/publish", headers=self.auth)
        self.publishes.append(time.perf_counter() - start)
        r.raise_for_status()


def _write_rows(on: Writer, off: Writer) -> list[Row]:
    for n in range(5):  # warm-up: first statements compiled, caches filled
        on.edit(n)
        off.edit(n)
    on.edits.clear()
    off.edits.clear()
    for n in range(EDITS):
        first, second = (on, off) if n % 2 else (off, on)
        first.edit(n)
        second.edit(n)
    for n in range(PUBLISHES):
        first, second = (on, off) if n % 2 else (off, on)
        first.publish(n)
        second.publish(n)
    rows = []
    for label, with_log, without in (
        ("school edit (PATCH)", on.edits, off.edits),
        ("minor publish (POST …/publish)", on.publishes, off.publishes),
    ):
        a, b = statistics.median(with_log) * 1000, statistics.median(without) * 1000
        rows.append(
            Row(
                name=f"{label}, log on vs off: median",
                value=a,
                unit="ms",
                baseline=b,
                ratio=a / b,
                target=f"≤ {WRITE_TARGET}",
                ok=a / b <= WRITE_TARGET,
            )
        )
    return rows


def _proof_rows(tmp: Path, app: Server) -> list[Row]:
    size = int(httpx.get(app.base + "/v1/log/checkpoint").text.split("\n")[1])
    path = f"/v1/log/proof/inclusion?sequence={size // 2}&size={size}"
    first = httpx.get(app.base + path)
    first.raise_for_status()
    (tmp / "body").write_bytes(first.content)
    keep = {k: v for k, v in first.headers.items() if k in ("content-type", "etag", "cache-control", "vary")}
    (tmp / "headers.json").write_text(json.dumps(keep))
    paths = [f"/v1/log/proof/inclusion?sequence={s}&size={size}" for s in range(1, size + 1)]
    script = tmp / "proofs.lua"
    script.write_text(
        "local paths = {" + ", ".join(json.dumps(p) for p in paths) + "}\nlocal i = 0\n"
        "request = function()\n  i = i % #paths + 1\n  return wrk.format(nil, paths[i])\nend\n"
    )
    wrk(app.base + path, seconds=2)  # warm-up
    wrk(app.base + "/", seconds=2, script=str(script))  # every proof built once
    one = wrk(app.base + path)
    every = wrk(app.base + "/", script=str(script))
    base_env = {"BENCH_BODY_FILE": str(tmp / "body"), "BENCH_HEADERS_FILE": str(tmp / "headers.json")}
    with uvicorn_server("bench.baseline:create_app", env=base_env, ready_path=path) as bare:
        wrk(bare.base + path, seconds=2)
        bare_result = wrk(bare.base + path)
    rows = []
    for label, real in (
        (f"one proof ({len(first.content)} B)", one),
        (f"a proof of each of {size} events", every),
    ):
        ratio = real.rps / bare_result.rps
        rows.append(
            Row(
                name=f"inclusion proof, {label} req/s",
                value=real.rps,
                unit="req/s",
                baseline=bare_result.rps,
                ratio=ratio,
                target=f"≥ {PROOF_TARGET}",
                ok=ratio >= PROOF_TARGET and real.non_2xx_3xx == 0,
            )
        )
    rows.append(
        Row(
            name="inclusion proof p99 (each event)",
            value=every.p99_ms,
            unit="ms",
            baseline=bare_result.p99_ms,
        )
    )
    return rows


def run() -> list[Row]:
    with temp_dir() as tmp_on, temp_dir() as tmp_off:
        env_on = prepare_sample_database(tmp_on)
        env_off = {**prepare_sample_database(tmp_off), "IMI_TRANSPARENCY_LOG": "false"}
        with ExitStack() as stack:
            on_server = stack.enter_context(
                uvicorn_server("service.main:app_from_env", env=env_on, ready_path="/healthz")
            )
            off_server = stack.enter_context(
                uvicorn_server("service.main:app_from_env", env=env_off, ready_path="/healthz")
            )
            on, off = Writer(on_server, env_on), Writer(off_server, env_off)
            rows = _write_rows(on, off)
            on.http.close()
            off.http.close()
            stack.close()  # the proof benchmark has the machine to itself
            with uvicorn_server("service.main:app_from_env", env=env_on, ready_path="/healthz") as app:
                rows += _proof_rows(tmp_on, app)
    return rows
