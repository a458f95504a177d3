"""Publish → all N endpoints have a verified delivery (issue 4), against a bare
httpx loop posting the same signed bytes at the same concurrency in the same run.

The service runs on SQLite with the sample data in both of DESIGN §6's shapes:
``imi-api serve`` with its in-process worker, then the API with ``--no-worker``
next to one ``imi-api worker`` process. N endpoints on one local receiver
process that verifies each delivery with the stock ``standardwebhooks`` library.
The publish goes through the HTTP API; the clock runs from the publish request
to the receiver's N-th verified delivery. During each fan-out, wrk reads
``/current`` on 8 connections and gives its p99.

Each shape publishes :data:`ROUNDS` versions one after another on one running
service, and the bare loop runs as often. The targets are judged on the
medians: capacity is a property of a running service, and on this shared
2-core machine single runs vary by ±30 % (the bare loop alone took 0.7-1.3 s
within an hour). The first publish after the service started is printed
beside them (it also decrypts every endpoint's secret, opens the connections
and compiles the statements), and the read p99 row is the worst publish's.
The baseline uses the best httpx pattern of PERFORMANCE.md: several small
``AsyncClient``s (5 connections each), 60 in flight like the worker's slots.
Targets: ≤ 1.5 × the bare loop's time, ≥ 1,000 verified deliveries/s,
standards-read p99 ≤ 50 ms during the fan-out.

Comparing HTTP clients (issue 13): ``BENCH_SENDERS=hand-written,aiohttp`` runs each shape
with each client in turn (a fresh service each time: hand-written in-process, aiohttp
in-process, hand-written separate, aiohttp separate), ``BENCH_SENDER_RUNS`` times over, and
adds rows with each client's median over the runs (each run the median of its :data:`ROUNDS`
publishes) and the ratio aiohttp / hand-written. The aiohttp client is bench/aiohttp_sender.py,
swapped into the worker by its own entry points; the service has no setting for it. In the
separate shape the worker process's CPU time per delivery is shown too.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.common import (
    PYTHON,
    ROOT,
    Row,
    Server,
    WrkResult,
    client_token,
    free_port,
    prepare_sample_database,
    temp_dir,
    uvicorn_server,
    wrk,
)

N = int(os.environ.get("BENCH_ENDPOINTS", "1000"))
CLIENTS, CONNECTIONS = 12, 5  # 60 in flight: the worker's healthy_slots
#: Publishes per shape (and bare loops): the targets are judged on the median.
ROUNDS = 3
#: The worker's HTTP clients to run, each with the API's uvicorn factory and the worker's command.
SENDERS = {
    "hand-written": ("service.main:app_from_env", ["service.cli", "worker"]),
    "aiohttp": ("bench.aiohttp_sender:app_from_env", ["bench.aiohttp_sender", "worker"]),
}
CHOSEN = os.environ.get("BENCH_SENDERS", "hand-written").split(",")
#: Services started per shape and client when comparing clients (each: ROUNDS publishes).
SENDER_RUNS = int(os.environ.get("BENCH_SENDER_RUNS", "1"))


def _register(env: dict[str, str], receiver: str, tmp: Path, count: int = N) -> None:
    """Create ``count`` endpoints directly through the service; write their secrets."""
    code = f"""
import json, os
from service.core.config import get_settings
from service.core.db import make_engine, transaction
from service.webhooks import service as wh
s = get_settings(); e = make_engine(s.database_url); secrets = {{}}
with transaction(e) as session:
    for n in range({count}):
        # An association may own at most 1,000 endpoints: one owner per thousand.
        ep, secret = wh.create_endpoint(session=session, owner="cli_bench%d" % (n // 1000),
                                        url="{receiver}/hook/%d" % n, event_types=[],
                                        description="bench", keys_dir=s.keys_dir)
        secrets[str(n)] = secret
open("{tmp}/secrets.json", "w").write(json.dumps(secrets))
"""
    subprocess.run([PYTHON, "-c", code], cwd=ROOT, env={**os.environ, **env}, check=True)


def _wait_for(receiver: str, count: int, timeout_s: float = 120.0) -> dict[str, float]:
    """Wait until the receiver counted ``count`` verified deliveries; return its stats.

    The receiver stamps each delivery itself, so polling gently (one kept-alive
    connection, every 0.1 s) costs the machine little and loses no precision.
    """
    deadline = time.monotonic() + timeout_s
    with httpx.Client() as client:
        while time.monotonic() < deadline:
            stats = client.get(receiver + "/stats").json()
            if stats["verified"] >= count:
                return dict(stats)
            time.sleep(0.1)
    raise RuntimeError(f"only {stats['verified']} of {count} deliveries verified in {timeout_s} s")


async def _bare_loop(receiver: str, secrets: dict[str, str], body: bytes) -> float:
    from service.webhooks import signing

    keys = {n: signing.secret_key(s) for n, s in secrets.items()}
    clients = [httpx.AsyncClient(limits=httpx.Limits(max_connections=CONNECTIONS)) for _ in range(CLIENTS)]
    queue: asyncio.Queue[str] = asyncio.Queue()
    for n in secrets:
        queue.put_nowait(n)

    async def runner(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            n = queue.get_nowait()
            headers = signing.headers([keys[n]], "msg_bare", int(time.time()), body)
            r = await client.post(f"{receiver}/hook/{n}", content=body, headers=dict(headers))
            r.raise_for_status()

    start = time.monotonic()
    await asyncio.gather(*(runner(c) for c in clients for _ in range(CONNECTIONS)))
    elapsed = time.monotonic() - start
    for c in clients:
        await c.aclose()
    return elapsed


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def _service(env: dict[str, str], *, separate: bool, sender: str) -> Iterator[tuple[Server, int | None]]:
    """The API as ``imi-api serve`` runs it: with its in-process worker, or (``separate``) with
    ``--no-worker`` next to one ``imi-api worker`` process on the same database (DESIGN §6);
    yields the API server and the worker process's id (``None`` in-process)."""
    factory, worker_cmd = SENDERS[sender]
    if not separate:
        with uvicorn_server(factory, env=env, ready_path="/healthz") as app:
            yield app, None
        return
    worker = subprocess.Popen([PYTHON, "-m", *worker_cmd], cwd=ROOT, env={**os.environ, **env})
    try:
        api_env = {**env, "IMI_IN_PROCESS_WORKER": "false"}
        with uvicorn_server(factory, env=api_env, ready_path="/healthz") as app:
            yield app, worker.pid
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)


def _fan_out(
    env: dict[str, str],
    receiver: str,
    versions: list[str],
    *,
    separate: bool,
    sender: str = "hand-written",
    count: int = N,
    answers: list[float] | None = None,
) -> tuple[list[float], list[float], bytes, list[float]]:
    """Publish each of ``versions`` in turn under a read load, on one running service; returns
    the seconds from each publish request to its N-th verified delivery, each publish's read
    p99 in ms, the delivered payload's bytes, and (separate shape) the worker process's CPU
    seconds per delivery of each publish. ``count`` endpoints are expected; the seconds each
    publish took to answer are appended to ``answers`` when given."""
    mode = "separate" if separate else "in-process"
    times: list[float] = []
    p99s: list[float] = []
    cpus: list[float] = []
    with _service(env, separate=separate, sender=sender) as (app, worker_pid):
        token = client_token(env, app.base, "standards:write", name="bench editor")
        auth = {"Authorization": f"Bearer {token}"}
        slug = "/v1/standards/training-standards"
        for version in versions:
            httpx.post(receiver + "/reset").raise_for_status()
            r = httpx.post(
                app.base + slug + "/versions", json={"version": version, "based_on": "2.0"}, headers=auth
            )
            r.raise_for_status()
            httpx.get(app.base + slug + "/current").raise_for_status()
            reads: dict[str, WrkResult] = {}

            def read_load(into: dict[str, WrkResult] = reads) -> None:
                into["r"] = wrk(app.base + slug + "/current", seconds=4, connections=8)

            reader = threading.Thread(target=read_load)
            reader.start()
            time.sleep(0.5)
            cpu = _cpu_s(worker_pid) if worker_pid else 0.0
            start = time.monotonic()
            r = httpx.post(app.base + slug + f"/versions/{version}/publish", headers=auth, timeout=30)
            r.raise_for_status()
            published_s = time.monotonic() - start
            if answers is not None:
                answers.append(published_s)
            stats = _wait_for(receiver, count)
            times.append(float(stats["last"]) - start)
            cpu_note = ""
            if worker_pid:
                cpus.append((_cpu_s(worker_pid) - cpu) / count)
                cpu_note = f", worker CPU {cpus[-1] * 1e6:.0f} µs/delivery"
            print(
                f"  {mode} worker ({sender}), {version}: publish answered after {published_s:.2f} s, first "
                f"delivery verified after {float(stats['first']) - start:.2f} s, last after {times[-1]:.2f} s"
                f" ({count / times[-1]:,.0f}/s{cpu_note})",
                file=sys.stderr,
            )
            reader.join()
            p99s.append(reads["r"].p99_ms)
        body = httpx.get(app.base + "/v1/events?type=standards.version.published").json()
        payload = json.dumps(body["data"][-1], ensure_ascii=False, separators=(",", ":")).encode()
    return times, p99s, payload, cpus


def _rows(label: str, times: list[float], p99s: list[float], bare_s: float) -> list[Row]:
    """Targets on the median of the publishes (a steady service); the first publish after the
    service started (cold: secrets decrypted, connections opened, statements compiled) is shown
    beside it; the read p99 is the worst of all publishes."""
    service_s = statistics.median(times)
    rate = N / service_s
    read_p99 = max(p99s)
    return [
        Row(
            name=f"fan-out → {N} verified deliveries, {label} (median)",
            value=service_s,
            unit="s",
            baseline=bare_s,
            ratio=service_s / bare_s,
            target="≤ 1.5 × bare (ratio)",
            ok=service_s / bare_s <= 1.5,
        ),
        Row(
            name=f"verified deliveries/s, {label} (median)",
            value=rate,
            unit="/s",
            target="≥ 1,000",
            ok=rate >= 1000,
        ),
        Row(name=f"verified deliveries/s, {label}, first after start", value=N / times[0], unit="/s"),
        Row(
            name=f"/current p99 during fan-out, {label} (worst)",
            value=read_p99,
            unit="ms",
            target="≤ 50",
            ok=read_p99 <= 50,
        ),
    ]


def _compare(env: dict[str, str], receiver: str, versions: Iterator[str]) -> list[Row]:
    """Each shape with each of :data:`CHOSEN` in turn, :data:`SENDER_RUNS` times; rows of the
    medians over the runs and the ratio of each client to the first."""
    shapes = {"in-process worker": False, "API + imi-api worker": True}
    rates: dict[tuple[str, str], list[float]] = {}
    cpus: dict[tuple[str, str], list[float]] = {}
    for run_ in range(1, SENDER_RUNS + 1):
        for label, separate in shapes.items():
            for sender in CHOSEN:
                versions_now = [next(versions) for _ in range(ROUNDS)]
                times, _p99s, _payload, cpu = _fan_out(
                    env, receiver, versions_now, separate=separate, sender=sender
                )
                rate = N / statistics.median(times)
                rates.setdefault((label, sender), []).append(rate)
                if cpu:
                    cpus.setdefault((label, sender), []).append(statistics.median(cpu))
                print(f"run {run_}, {label}, {sender}: {rate:,.0f} verified deliveries/s", file=sys.stderr)
    rows = []
    for label in shapes:
        first = statistics.median(rates[(label, CHOSEN[0])])
        for sender in CHOSEN:
            rate = statistics.median(rates[(label, sender)])
            each = " ".join(f"{r:,.0f}" for r in rates[(label, sender)])
            row = Row(
                name=f"verified deliveries/s, {label}, {sender} (median of runs {each})",
                value=rate,
                unit="/s",
            )
            if sender != CHOSEN[0]:
                row.baseline, row.ratio = first, rate / first
            rows.append(row)
        for sender in CHOSEN:
            if (label, sender) in cpus:
                cpu_us = statistics.median(cpus[(label, sender)]) * 1e6
                rows.append(
                    Row(name=f"worker CPU per delivery, {label}, {sender} (median)", value=cpu_us, unit="µs")
                )
    return rows


def run() -> list[Row]:
    if CHOSEN != ["hand-written"]:
        return _run_compare()
    with temp_dir() as tmp:
        env = prepare_sample_database(tmp)
        # Register the endpoints against a chosen port, then start the receiver there with their secrets.
        port = free_port()
        receiver = f"http://127.0.0.1:{port}"
        _register(env, receiver, tmp)
        receiver_env = {"BENCH_SECRETS_FILE": str(tmp / "secrets.json")}
        with uvicorn_server("bench.receiver:create_app", env=receiver_env, port=port, ready_path="/stats"):
            versions = [f"2.{n}" for n in range(1, 2 * ROUNDS + 1)]
            in_process = _fan_out(env, receiver, versions[:ROUNDS], separate=False)
            separate = _fan_out(env, receiver, versions[ROUNDS:], separate=True)
            secrets = json.loads((tmp / "secrets.json").read_text())
            bare: list[float] = []
            for _ in range(ROUNDS):
                httpx.post(receiver + "/reset")
                bare.append(asyncio.run(_bare_loop(receiver, secrets, separate[2])))
                bare_stats = _wait_for(receiver, N)
                assert bare_stats["rejected"] == 0
            bare_s = statistics.median(bare)
    return [
        *_rows("in-process worker", in_process[0], in_process[1], bare_s),
        *_rows("API + imi-api worker", separate[0], separate[1], bare_s),
    ]


def _run_compare() -> list[Row]:
    """``BENCH_SENDERS``: the clients side by side (see the module docstring)."""
    unknown = set(CHOSEN) - set(SENDERS)
    if unknown:
        raise SystemExit(f"BENCH_SENDERS: unknown {sorted(unknown)}; known: {sorted(SENDERS)}")
    with temp_dir() as tmp:
        env = prepare_sample_database(tmp)
        port = free_port()
        receiver = f"http://127.0.0.1:{port}"
        _register(env, receiver, tmp)
        receiver_env = {"BENCH_SECRETS_FILE": str(tmp / "secrets.json")}
        with uvicorn_server("bench.receiver:create_app", env=receiver_env, port=port, ready_path="/stats"):
            versions = (f"2.{n}" for n in itertools.count(1))
            return _compare(env, receiver, versions)
