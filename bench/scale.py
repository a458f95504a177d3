"""How each cost grows with the work (issue 14): curves over sizes, on SQLite and PostgreSQL.

``python -m bench scale`` measures, on each database:

- **schools** 1,000 / 10,000 / 100,000: search p99 (cached: 16 connections cycling ten
  queries; uncached: distinct queries one at a time, after the one-time build of the name
  index behind the suggestions of a page that found nothing), affiliation req/s against bare
  Starlette serving the same bytes, ``/v1/snapshot`` time to first byte and in total, and
  the API process's peak RSS while serving it;
- **events** 10,000 / 100,000 / 1,000,000: feed p99 at the start, the middle and the end
  of the log (``after`` = 0, half, last − 10), and how long retention takes to prune the
  older half;
- **endpoints** 100 / 1,000 / 10,000: the publish's answer time and verified deliveries/s
  in the production shape (the API with ``--no-worker`` next to one ``imi-api worker``);
- **backup** 1,000 / 10,000 / 100,000 schools: ``imi-api export`` to a file and ``imi-api
  import`` of it into a fresh, empty database, each a process of its own: wall time, peak
  RSS, the file's size, and the round trip checked table by table (row counts and a digest
  of every row).

Each curve is printed as a small table with its growth per 10× (``p99 × 1.3 per 10×``),
and the issue's targets are rows of the summary table with ok/MISSED. Databases are
filled with SQL bulk inserts (``bench/bulk.py``), not through the API. ``--quick`` (or
``BENCH_QUICK=1``) runs the two smaller sizes only; ``BENCH_SCALE_DB=sqlite`` (or
``postgresql``) one database; PostgreSQL needs ``BENCH_POSTGRES_URL`` or
``IMI_TEST_POSTGRES_URL`` (an admin URL: a database is created and dropped per size).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import sqlalchemy as sa

from bench import fanout
from bench.common import PYTHON, ROOT, Row, free_port, service_env, temp_dir, uvicorn_server, wrk

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
SIZES = {
    "schools": [1_000, 10_000, 100_000],
    "events": [10_000, 100_000, 1_000_000],
    "endpoints": [100, 1_000, 10_000],
}
FEED_P99_MS = 20.0
PUBLISH_ANSWER_S = 0.5
AFFILIATION_RATIO = 0.5
SNAPSHOT_TTFB_S = 1.0
SNAPSHOT_RSS_MB = 200.0
BACKUP_RSS_MB = 200.0


def _sizes(curve: str) -> list[int]:
    sizes = SIZES[curve]
    return sizes[:2] if QUICK else sizes


def _pg_admin() -> str | None:
    return os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("IMI_TEST_POSTGRES_URL") or None


def backends() -> list[str]:
    """The databases to measure: ``BENCH_SCALE_DB``, else SQLite and (when configured) PostgreSQL."""
    wanted = os.environ.get("BENCH_SCALE_DB")
    if wanted:
        return [w.strip() for w in wanted.split(",") if w.strip()]
    return ["sqlite", "postgresql"] if _pg_admin() else ["sqlite"]


@contextmanager
def database(tmp: Path, backend: str, *, sample: bool = True) -> Iterator[dict[str, str]]:
    """The service environment of a fresh, migrated database (SQLite under ``tmp``, or a
    PostgreSQL database dropped afterwards), with the sample data unless ``sample=False``."""
    env = service_env(tmp)
    drop: Callable[[], None] | None = None
    if backend == "postgresql":
        admin = _pg_admin()
        if admin is None:
            raise SystemExit("PostgreSQL curves need BENCH_POSTGRES_URL or IMI_TEST_POSTGRES_URL")
        name = f"imi_bench_{uuid.uuid4().hex[:10]}"
        engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        env["IMI_DATABASE_URL"] = admin.rsplit("/", 1)[0] + "/" + name

        def drop() -> None:
            with engine.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            engine.dispose()

    try:
        for command in [["migrate"], *([["load-sample"]] if sample else [])]:
            subprocess.run(
                [PYTHON, "-m", "service.cli", *command],
                cwd=ROOT,
                env={**os.environ, **env},
                check=True,
                capture_output=True,
            )
        yield env
    finally:
        if drop is not None:
            drop()


def _in_service(env: dict[str, str], code: str) -> str:
    """Run ``code`` in a fresh Python process against ``env``'s database; its stdout."""
    done = subprocess.run(
        [PYTHON, "-c", code], cwd=ROOT, env={**os.environ, **env}, check=True, capture_output=True, text=True
    )
    return done.stdout


def _limit_row(name: str, value: float, unit: str, limit: float, *, at_least: bool = False) -> Row:
    """A summary row judged against a target: ``value`` at most ``limit`` (or at least)."""
    ok = value >= limit if at_least else value <= limit
    return Row(name=name, value=value, unit=unit, target=f"{'≥' if at_least else '≤'} {limit:g}", ok=ok)


def growth(values: list[float]) -> float | None:
    """The mean growth factor per 10× of consecutive sizes (sizes are 10× apart)."""
    steps = [b / a for a, b in zip(values, values[1:], strict=False) if a > 0]
    if not steps:
        return None
    return float(statistics.geometric_mean(steps))


def curve_table(title: str, unit_of_size: str, sizes: list[int], columns: dict[str, list[float]]) -> None:
    """Print one curve: a row per size, a column per metric, and the growth per 10×."""
    names = list(columns)
    print(f"\n{title}", flush=True)
    print(f"  {unit_of_size:>12}  " + "  ".join(f"{n:>22}" for n in names))
    for i, size in enumerate(sizes):
        print(f"  {size:>12,}  " + "  ".join(f"{columns[n][i]:>22,.2f}" for n in names))
    factors = []
    for n in names:
        g = growth(columns[n])
        factors.append(f"{'—' if g is None else f'× {g:.2f} per 10×':>22}")
    print(f"  {'growth':>12}  " + "  ".join(factors), flush=True)


# --- schools ------------------------------------------------------------------------------------


def _snapshot_read(base: str) -> tuple[float, float, int]:
    """``(seconds to the first byte, seconds in total, bytes)`` of one ``/v1/snapshot`` read."""
    start = time.perf_counter()
    first = None
    size = 0
    with httpx.stream("GET", base + "/v1/snapshot", timeout=600) as r:
        r.raise_for_status()
        for chunk in r.iter_raw():
            if first is None:
                first = time.perf_counter() - start
            size += len(chunk)
    return first or 0.0, time.perf_counter() - start, size


def schools_curve(backend: str) -> list[Row]:
    from bench import registry as reg

    sizes = _sizes("schools")
    cols: dict[str, list[float]] = {
        "search p99 ms": [],
        "uncached p99 ms": [],
        "first empty page s": [],
        "affiliation ratio": [],
        "snapshot TTFB s": [],
        "snapshot total s": [],
        "RSS serving it MiB": [],
    }
    for size in sizes:
        with temp_dir() as tmp, database(tmp, backend) as env:
            code = f"""
from service.core.config import get_settings
from service.core.db import make_engine
from service.main import backfill
from bench.bulk import analyze, insert_schools
s = get_settings()
print(insert_schools(make_engine(s.database_url), {size}, base_url=s.public_base_url))
backfill(s)  # the log's leaves for the school.listed events, a status list entry per school
analyze(make_engine(s.database_url))
"""
            _in_service(env, code)
            api_env = {**env, "IMI_IN_PROCESS_WORKER": "false"}
            # A fresh process for the snapshot: its peak RSS is the snapshot's, not the load's.
            api = "service.main:app_from_env"
            with uvicorn_server(api, env=api_env, ready_path="/healthz", quiet=True) as app:
                ttfb, total, _bytes = _snapshot_read(app.base)
                cols["snapshot TTFB s"].append(ttfb)
                cols["snapshot total s"].append(total)
                cols["RSS serving it MiB"].append(app.peak_rss_mb())
            with uvicorn_server(api, env=api_env, ready_path="/healthz", quiet=True) as app:
                search_paths = [f"/v1/schools?q={reg.quote(q)}" for q in reg.QUERIES]
                for p in search_paths:
                    httpx.get(app.base + p).raise_for_status()
                search = wrk(app.base + "/", seconds=4, connections=16, script=reg._lua(tmp, search_paths))
                cols["search p99 ms"].append(search.p99_ms)
                # The first page that finds nothing builds the process's name index for its
                # suggestions (kept up to date incrementally afterwards): a one-time cost, its
                # own column, so the uncached p99 is the steady state's.
                began = time.perf_counter()
                httpx.get(app.base + "/v1/schools?q=qzxv+vxzq", timeout=120).raise_for_status()
                cols["first empty page s"].append(time.perf_counter() - began)
                queries = reg.distinct_queries(200, taken=[*reg.QUERIES, "zur"])
                uncached, _cpu = reg.uncached_latencies(app.base, app.proc.pid, queries)
                cols["uncached p99 ms"].append(uncached[int(len(uncached) * 0.99)])
                school_id = httpx.get(app.base + "/v1/schools?q=mindful&limit=1").json()["data"][0]["id"]
                path = f"/v1/schools/{school_id}/affiliation"
                first = httpx.get(app.base + path)
                first.raise_for_status()
                (tmp / "body").write_bytes(first.content)
                kept = ("content-type", "etag", "cache-control")
                keep = {k: v for k, v in first.headers.items() if k in kept}
                (tmp / "headers.json").write_text(json.dumps(keep))
                files = {"BENCH_BODY_FILE": tmp / "body", "BENCH_HEADERS_FILE": tmp / "headers.json"}
                base_env = {k: str(v) for k, v in files.items()}
                with uvicorn_server("bench.baseline:create_app", env=base_env, ready_path=path) as bare:
                    wrk(app.base + path, seconds=2)
                    wrk(bare.base + path, seconds=2)
                    real = wrk(app.base + path, seconds=3).rps
                    baseline = wrk(bare.base + path, seconds=3).rps
                cols["affiliation ratio"].append(real / baseline)
    curve_table(f"schools on {backend}: search, affiliation, snapshot", "schools", sizes, cols)
    n = f"{sizes[-1]:,}"
    return [
        _limit_row(
            f"scale {backend}: search p99 at {n} schools (16 conns)",
            cols["search p99 ms"][-1],
            "ms",
            reg.SEARCH_P99_MS,
        ),
        _limit_row(
            f"scale {backend}: search uncached p99 at {n} schools (1 conn)",
            cols["uncached p99 ms"][-1],
            "ms",
            reg.SEARCH_P99_MS,
        ),
        _limit_row(
            f"scale {backend}: affiliation vs bare Starlette at {n} schools",
            cols["affiliation ratio"][-1],
            "×",
            AFFILIATION_RATIO,
            at_least=True,
        ),
        _limit_row(
            f"scale {backend}: snapshot first byte at {n} schools",
            cols["snapshot TTFB s"][-1],
            "s",
            SNAPSHOT_TTFB_S,
        ),
        _limit_row(
            f"scale {backend}: API RSS serving the snapshot at {n} schools",
            cols["RSS serving it MiB"][-1],
            "MiB",
            SNAPSHOT_RSS_MB,
        ),
    ]


# --- events -------------------------------------------------------------------------------------


def _prune_seconds(env: dict[str, str]) -> float:
    code = """
import datetime as dt, time
from service.core.config import get_settings
from service.core.db import make_engine, transaction
from service.ops.retention import prune_events
engine = make_engine(get_settings().database_url)
start = time.perf_counter()
with transaction(engine) as session:
    removed = prune_events(session, now=dt.datetime.now(dt.UTC), retention_days=400)
print(time.perf_counter() - start, removed)
"""
    seconds, _removed = _in_service(env, code).split()
    return float(seconds)


def events_curve(backend: str) -> list[Row]:
    sizes = _sizes("events")
    cols: dict[str, list[float]] = {"feed p99 start ms": [], "feed p99 middle ms": [], "feed p99 end ms": []}
    cols["prune older half s"] = []
    for size in sizes:
        with temp_dir() as tmp, database(tmp, backend) as env:
            last = int(
                _in_service(
                    env,
                    f"""
from service.core.config import get_settings
from service.core.db import make_engine
from bench.bulk import analyze, insert_events
print(insert_events(make_engine(get_settings().database_url), {size}))
analyze(make_engine(get_settings().database_url))
""",
                )
            )
            api_env = {**env, "IMI_IN_PROCESS_WORKER": "false"}
            with uvicorn_server(
                "service.main:app_from_env", env=api_env, ready_path="/healthz", quiet=True
            ) as app:
                for column, after in (
                    ("feed p99 start ms", 0),
                    ("feed p99 middle ms", last // 2),
                    ("feed p99 end ms", max(last - 10, 0)),
                ):
                    url = f"{app.base}/v1/events?after={after}&limit=50"
                    httpx.get(url).raise_for_status()
                    cols[column].append(wrk(url, seconds=3, connections=16).p99_ms)
            cols["prune older half s"].append(_prune_seconds(env))
    curve_table(f"events on {backend}: the feed and retention", "events", sizes, cols)
    worst = max(max(cols[c][-1] for c in cols if c.startswith("feed")), 0.0)
    return [
        _limit_row(
            f"scale {backend}: feed p99 at {sizes[-1]:,} events (worst position)", worst, "ms", FEED_P99_MS
        ),
        Row(
            name=f"scale {backend}: prune the older half of {sizes[-1]:,} events",
            value=cols["prune older half s"][-1],
            unit="s",
        ),
    ]


# --- endpoints ----------------------------------------------------------------------------------


def endpoints_curve(backend: str) -> list[Row]:
    sizes = _sizes("endpoints")
    cols: dict[str, list[float]] = {"publish answer s": [], "verified deliveries/s": []}
    for size in sizes:
        with temp_dir() as tmp, database(tmp, backend) as env:
            port = free_port()
            receiver = f"http://127.0.0.1:{port}"
            fanout._register(env, receiver, tmp, count=size)
            receiver_env = {"BENCH_SECRETS_FILE": str(tmp / "secrets.json")}
            with uvicorn_server(
                "bench.receiver:create_app", env=receiver_env, port=port, ready_path="/stats"
            ):
                answers: list[float] = []
                versions = [f"2.{n}" for n in range(1, fanout.ROUNDS + 1)]
                times, _p99s, _body, _cpus = fanout._fan_out(
                    env, receiver, versions, separate=True, count=size, answers=answers
                )
            cols["publish answer s"].append(statistics.median(answers))
            cols["verified deliveries/s"].append(size / statistics.median(times))
    curve_table(
        f"endpoints on {backend}: publish and fan-out (API + imi-api worker)", "endpoints", sizes, cols
    )
    answer = cols["publish answer s"][-1]
    return [
        _limit_row(
            f"scale {backend}: publish answered, {sizes[-1]:,} endpoints (median of {fanout.ROUNDS})",
            answer,
            "s",
            PUBLISH_ANSWER_S,
        ),
        Row(
            name=f"scale {backend}: verified deliveries/s with {sizes[-1]:,} endpoints",
            value=cols["verified deliveries/s"][-1],
            unit="/s",
        ),
    ]


# --- backup -------------------------------------------------------------------------------------

#: Every table's row count and a digest of its rows (primary-key order), as JSON: what a
#: restored database must show exactly as the original does. Read through SQLAlchemy, not
#: the backup module, so that a value the backup format changed would show.
_TABLE_DIGESTS = """
import hashlib, json
import sqlalchemy as sa
from service.core.config import get_settings
from service.core.db import make_engine
from service.models import metadata
engine = make_engine(get_settings().database_url)
out = {}
with engine.connect() as conn:
    for table in metadata.sorted_tables:
        order = list(table.primary_key.columns) or list(table.columns)
        digest = hashlib.sha256()
        count = 0
        for row in conn.execution_options(yield_per=5000).execute(sa.select(table).order_by(*order)):
            digest.update(repr(tuple(row)).encode())
            count += 1
        out[table.name] = [count, digest.hexdigest()]
print(json.dumps(out))
"""


def _table_digests(env: dict[str, str]) -> dict[str, tuple[int, str]]:
    """``{table: (rows, sha256 of its rows)}`` of ``env``'s database."""
    return {name: (int(n), str(h)) for name, (n, h) in json.loads(_in_service(env, _TABLE_DIGESTS)).items()}


def _measured_cli(env: dict[str, str], *args: str) -> tuple[float, float, str]:
    """Run ``imi-api *args`` against ``env``'s database: ``(wall seconds, the process's peak RSS
    in MiB, its stdout)``. ``wait4`` gives that one child's own peak (``RUSAGE_CHILDREN``
    would be the largest of every child so far); stderr is not a terminal, so no bar is drawn."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [PYTHON, "-m", "service.cli", *args], cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=err
        )
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(
                f"imi-api {' '.join(args)} exited {proc.returncode}: {err.read().decode()[-2000:]}"
            )
        return seconds, usage.ru_maxrss / 1024, out.read().decode()  # ru_maxrss: KiB on Linux


def backup_curve(backend: str) -> list[Row]:
    """``imi-api export`` of a registry of N schools to a file and ``imi-api import`` of it into
    a fresh, empty database: wall time and peak RSS of each process, the file's size, and the
    round trip checked (every table's row count and a digest of its rows equal)."""
    sizes = _sizes("schools")
    cols: dict[str, list[float]] = {
        "export s": [],
        "export RSS MiB": [],
        "import s": [],
        "import RSS MiB": [],
        "file MiB": [],
    }
    compared = 0
    differ: list[str] = []
    for size in sizes:
        with temp_dir() as tmp, database(tmp, backend, sample=False) as env:
            code = f"""
from service.core.config import get_settings
from service.core.db import make_engine
from service.main import backfill
from bench.bulk import insert_schools
s = get_settings()
print(insert_schools(make_engine(s.database_url), {size}, base_url=s.public_base_url))
backfill(s)  # the log's leaves and the status list entries: the backup carries them too
"""
            _in_service(env, code)
            backup = tmp / "backup.jsonl"
            seconds, rss, _out = _measured_cli(env, "export", str(backup))
            cols["export s"].append(seconds)
            cols["export RSS MiB"].append(rss)
            cols["file MiB"].append(backup.stat().st_size / 2**20)
            (tmp / "restored").mkdir()
            with database(tmp / "restored", backend, sample=False) as restored:
                seconds, rss, _out = _measured_cli(restored, "import", str(backup))
                cols["import s"].append(seconds)
                cols["import RSS MiB"].append(rss)
                before, after = _table_digests(env), _table_digests(restored)
            if before["schools"][0] != size:
                differ.append(f"{size:,}: {before['schools'][0]} schools populated")
            differ += [f"{size:,}: {name}" for name in before if before[name] != after.get(name)]
            compared += sum(count for count, _digest in before.values())
    curve_table(
        f"backup on {backend}: imi-api export, then import into an empty database", "schools", sizes, cols
    )
    if differ:
        print(f"  round trip differs: {', '.join(differ)}", flush=True)
    n = f"{sizes[-1]:,}"
    return [
        _limit_row(
            f"scale {backend}: export peak RSS at {n} schools",
            cols["export RSS MiB"][-1],
            "MiB",
            BACKUP_RSS_MB,
        ),
        _limit_row(
            f"scale {backend}: import peak RSS at {n} schools",
            cols["import RSS MiB"][-1],
            "MiB",
            BACKUP_RSS_MB,
        ),
        Row(name=f"scale {backend}: export of {n} schools", value=cols["export s"][-1], unit="s"),
        Row(name=f"scale {backend}: import of {n} schools", value=cols["import s"][-1], unit="s"),
        Row(
            name=f"scale {backend}: export/import round trip, every table equal (all sizes)",
            value=compared,
            unit="rows",
            target="all equal",
            ok=not differ,
        ),
    ]


CURVES: dict[str, Callable[[str], list[Row]]] = {
    "schools": schools_curve,
    "events": events_curve,
    "endpoints": endpoints_curve,
    "backup": backup_curve,
}


def run() -> list[Row]:
    wanted = [
        c.strip() for c in os.environ.get("BENCH_SCALE_CURVES", ",".join(CURVES)).split(",") if c.strip()
    ]
    rows: list[Row] = []
    for backend in backends():
        for name in wanted:
            started = time.monotonic()
            rows.extend(CURVES[name](backend))
            print(f"  ({name} on {backend}: {time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
    return rows


if __name__ == "__main__":  # python -m bench.scale [--quick]
    if "--quick" in sys.argv:
        QUICK = True
    for row in run():
        print(json.dumps(row.__dict__))
