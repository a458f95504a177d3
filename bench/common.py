"""Benchmark plumbing: servers in subprocesses, wrk as the load generator, ratios.

Every figure is compared with a baseline measured in the same run on the same
machine (absolute numbers drift ±15 % between runs, see PERFORMANCE.md). The
load generator is wrk (Debian package; ``make bench`` installs it when missing).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
#: Load-generator settings shared by every scenario (PERFORMANCE.md: 64 connections).
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "64"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
DURATION_S = int(os.environ.get("BENCH_DURATION_S", "8"))


@dataclass
class Row:
    """One line of the result table; ``ratio`` = value / baseline (higher is better unless noted)."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    ratio: float | None = None
    target: str = ""
    ok: bool | None = None


@dataclass
class WrkResult:
    """Requests per second and latency percentiles in milliseconds."""

    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx_3xx: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not become ready")


@dataclass
class Server:
    """A server subprocess listening on 127.0.0.1:``port``."""

    proc: subprocess.Popen[bytes]
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def peak_rss_mb(self) -> float:
        """Peak resident set size (VmHWM) of the server process, in MiB."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        return int(match.group(1)) / 1024 if match else float("nan")


@contextmanager
def uvicorn_server(
    target: str,
    *,
    env: Mapping[str, str] | None = None,
    factory: bool = True,
    ready_path: str = "/",
    port: int | None = None,
    quiet: bool = False,
) -> Iterator[Server]:
    """Run ``uvicorn target`` (uvloop + httptools, no access log) like production does,
    on ``port`` or a free one; ``quiet`` sends the server's stderr (its JSON logs) to
    /dev/null, as a log shipper would take them away."""
    port = port or free_port()
    cmd = [
        PYTHON,
        "-m",
        "uvicorn",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    if factory:
        cmd.append("--factory")
    full_env = {**os.environ, **(env or {})}
    stderr = subprocess.DEVNULL if quiet else None
    proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stderr=stderr)
    server = Server(proc=proc, port=port)
    try:
        wait_ready(server.base + ready_path)
        yield server
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def wrk(
    url: str,
    *,
    seconds: int = DURATION_S,
    headers: Mapping[str, str] | None = None,
    connections: int = CONNECTIONS,
    script: str | None = None,
) -> WrkResult:
    """Run wrk against ``url`` and parse requests/s and latency percentiles."""
    exe = shutil.which("wrk")
    if exe is None:
        raise SystemExit("wrk is not installed: `apt-get install wrk` (make bench does this)")
    cmd = [exe, "-t", str(THREADS), "-c", str(connections), "-d", f"{seconds}s", "--latency"]
    for name, value in (headers or {}).items():
        cmd += ["-H", f"{name}: {value}"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)

    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)", out, re.M)
        if not m:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return WrkResult(rps=rps, p50_ms=pct("50"), p99_ms=pct("99"), non_2xx_3xx=int(non.group(1)) if non else 0)


def service_env(tmp: Path, **extra: str) -> dict[str, str]:
    """Environment for the real service: SQLite under ``tmp``, production middleware on."""
    env = {
        "IMI_DATABASE_URL": f"sqlite:///{tmp}/bench.db",
        "IMI_KEYS_DIR": str(tmp / "keys"),
        "IMI_WEBHOOK_TARGETS": "loopback",
        # The limiter runs, with a limit the benchmark does not reach.
        "IMI_RATE_LIMIT_READS": "1000000000/minute",
        "IMI_RATE_LIMIT_STRICT": "1000000000/minute",
        "IMI_LOG_LEVEL": "WARNING",
    }
    env.update(extra)
    return env


def prepare_sample_database(tmp: Path) -> dict[str, str]:
    """Migrate a fresh SQLite database under ``tmp`` and load the sample data; returns its env."""
    env = service_env(tmp)
    subprocess.run(
        [PYTHON, "-m", "service.cli", "migrate"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [PYTHON, "-m", "service.cli", "load-sample"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    return env


@contextmanager
def temp_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="imi-bench-") as tmp:
        yield Path(tmp)


def median(values: list[float]) -> float:
    """The median of ``values`` (the middle one of an odd count)."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


@dataclass
class AgainstBare:
    """A public read measured on the real app and on bare Starlette serving its bytes."""

    body: bytes
    real_200: WrkResult
    real_304: WrkResult
    bare_200: WrkResult
    bare_304: WrkResult
    rss_mb: float
    ratios_200: list[float]
    ratios_304: list[float]


def against_bare(
    tmp: Path, env: Mapping[str, str], path: str, *, keep: tuple[str, ...], runs: int = 3
) -> AgainstBare:
    """GET ``path`` (200, then 304 with its ETag) from the real service on the database of ``env``
    with every per-request layer on (the JSON access log included, its stderr going to /dev/null
    as a log shipper would take it) and from bare Starlette (``bench/baseline.py``) answering the
    same body and the headers named in ``keep``. Both servers run side by side and wrk alternates
    between them ``runs`` times (single runs vary by ±15 % here); each result is the run with the
    median requests/s, and ``ratios_*`` are the per-run ratios."""
    env = {**env, "IMI_LOG_LEVEL": "INFO"}
    with uvicorn_server("service.main:app_from_env", env=env, ready_path="/healthz", quiet=True) as app:
        first = httpx.get(app.base + path)
        first.raise_for_status()
        etag = first.headers["etag"]
        (tmp / "body").write_bytes(first.content)
        (tmp / "headers.json").write_text(json.dumps({k: v for k, v in first.headers.items() if k in keep}))
        base_env = {"BENCH_BODY_FILE": str(tmp / "body"), "BENCH_HEADERS_FILE": str(tmp / "headers.json")}
        with uvicorn_server("bench.baseline:create_app", env=base_env, ready_path=path) as bare:
            wrk(app.base + path, seconds=2)  # warm-up
            wrk(bare.base + path, seconds=2)
            results: dict[tuple[str, str], list[WrkResult]] = {}
            for _ in range(runs):
                for label, headers in (("200", None), ("304", {"If-None-Match": etag})):
                    for side, server in (("real", app), ("bare", bare)):
                        results.setdefault((label, side), []).append(wrk(server.base + path, headers=headers))
        rss = app.peak_rss_mb()

    def mid(label: str, side: str) -> WrkResult:
        ordered = sorted(results[(label, side)], key=lambda r: r.rps)
        return ordered[len(ordered) // 2]

    def ratios(label: str) -> list[float]:
        pairs = zip(results[(label, "real")], results[(label, "bare")], strict=True)
        return [r.rps / b.rps for r, b in pairs]

    return AgainstBare(
        first.content,
        mid("200", "real"),
        mid("304", "real"),
        mid("200", "bare"),
        mid("304", "bare"),
        rss,
        ratios("200"),
        ratios("304"),
    )


def against_bare_rows(m: AgainstBare, what: str, target: float) -> list[Row]:
    """One row per answer (200 and 304) of an :func:`against_bare` measurement: the real app's
    median requests/s against bare Starlette's, with the per-run ratios, ok when the ratio is at
    least ``target`` and no answer was an error."""
    rows: list[Row] = []
    for label, real, bare, runs in (
        ("200", m.real_200, m.bare_200, m.ratios_200),
        ("304", m.real_304, m.bare_304, m.ratios_304),
    ):
        ratio = real.rps / bare.rps
        each = ", ".join(f"{r:.2f}" for r in runs)
        rows.append(
            Row(
                name=f"{what} {label} ({len(m.body) / 1024:.1f} KB) req/s, median of {len(runs)} ({each})",
                value=real.rps,
                unit="req/s",
                baseline=bare.rps,
                ratio=ratio,
                target=f"≥ {target}",
                ok=ratio >= target and real.non_2xx_3xx == 0,
            )
        )
    return rows


def client_token(env: Mapping[str, str], base: str, *scopes: str, name: str = "bench") -> str:
    """A bearer token of a new OAuth 2.0 client (client credentials) holding ``scopes``, made with
    ``imi-api clients create`` on the database of ``env`` and exchanged at ``base``."""
    command = [PYTHON, "-m", "service.cli", "clients", "create", "--name", name]
    for scope in scopes:
        command += ["--scope", scope]
    out = subprocess.run(
        command, cwd=ROOT, env={**os.environ, **env}, check=True, capture_output=True, text=True
    ).stdout
    creds = json.loads(out.strip().splitlines()[-1])
    r = httpx.post(
        base + "/v1/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(creds["client_id"], creds["client_secret"]),
    )
    r.raise_for_status()
    return str(r.json()["access_token"])
