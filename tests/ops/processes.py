"""Helpers of the end-to-end operations tests (test_topology.py, test_soak.py): ``imi-api``
processes started as a deployment starts them, a webhook receiver on 127.0.0.1, tokens and
the change feed read over HTTP.

Every process gets an environment without the caller's ``IMI_*`` variables plus what the test
sets, writes its stdout and stderr to a log file under the test's tmp dir (shown when a check
fails), and is stopped with SIGTERM by :meth:`Processes.close` if the test did not stop it.
Nothing here talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import wait_for
from tests.webhooks.conftest import Receiver, ReceiverServer

IMI_API = str(Path(sys.executable).parent / "imi-api")


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment(**values: str) -> dict[str, str]:
    """``os.environ`` without any ``IMI_*`` variable, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMI_")}
    env.update(values)
    return env


@dataclass
class Proc:
    """One started process and its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        """Everything the process wrote so far (stdout and stderr)."""
        return self.log.read_text(errors="replace")

    def running(self) -> bool:
        return self.popen.poll() is None


class Processes:
    """Starts ``imi-api`` processes for one test and stops whatever is left at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: list[Proc] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> Proc:
        """Start ``imi-api *args`` with ``env``; output goes to ``<folder>/<name>.log``."""
        log = self.folder / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen([IMI_API, *args], env=env, stdout=out, stderr=subprocess.STDOUT)
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def run(self, *commands: list[str], env: dict[str, str], timeout: float = 60) -> list[str]:
        """Run the ``imi-api`` ``commands`` side by side to completion; returns their stdouts
        (fails when one exits non-zero)."""
        running = [
            (
                args,
                subprocess.Popen([IMI_API, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE),
            )
            for args in commands
        ]
        outputs = []
        for args, popen in running:
            out, err = popen.communicate(timeout=timeout)
            assert popen.returncode == 0, f"imi-api {' '.join(args)}: {err.decode(errors='replace')}"
            outputs.append(out.decode())
        return outputs

    def create_clients(self, env: dict[str, str], *clients: tuple[str, list[str]]) -> list[tuple[str, str]]:
        """``imi-api clients create --name NAME --scope …`` for each ``(name, scopes)``, side by side;
        returns each one's JSON line as ``(client_id, client_secret)``."""
        commands = [
            ["clients", "create", "--name", name, *(f"--scope={s}" for s in scopes)]
            for name, scopes in clients
        ]
        created = []
        for out in self.run(*commands, env=env):
            [line] = out.splitlines()  # exactly one line of JSON
            body = json.loads(line)
            created.append((body["client_id"], body["client_secret"]))
        return created

    def stop(self, procs: list[Proc], *, timeout: float) -> dict[str, tuple[int | None, float]]:
        """SIGTERM to every process of ``procs`` at once; returns ``{name: (exit code, seconds)}``
        (exit code ``None`` when it was still running after ``timeout`` s: it is then killed)."""
        started = time.monotonic()
        for proc in procs:
            if proc.running():
                proc.popen.send_signal(signal.SIGTERM)
        result: dict[str, tuple[int | None, float]] = {}
        for proc in procs:
            left = max(0.0, timeout - (time.monotonic() - started))
            try:
                code: int | None = proc.popen.wait(timeout=left)
            except subprocess.TimeoutExpired:
                code = None
                proc.popen.kill()
                proc.popen.wait()
            result[proc.name] = (code, time.monotonic() - started)
        return result

    def close(self) -> None:
        """Stop (SIGTERM, then SIGKILL after 15 s) every process still running."""
        self.stop([p for p in self.procs if p.running()], timeout=15)


@contextmanager
def processes(folder: Path) -> Iterator[Processes]:
    """A :class:`Processes` whose leftovers are stopped on exit."""
    procs = Processes(folder)
    try:
        yield procs
    finally:
        procs.close()


@contextmanager
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1 answering 200 on every path (tests/webhooks' server)."""
    server = ReceiverServer()
    server.start()
    try:
        yield Receiver(server)
    finally:
        server.stop()


def wait_ready(base: str, proc: Proc, *, timeout: float) -> None:
    """Wait until ``base/readyz`` answers 200 (fails at once when the process exited)."""

    def ready() -> bool:
        assert proc.running(), f"{proc.name} exited:\n{proc.output()}"
        try:
            return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(ready, timeout=timeout, what=f"{proc.name} ready at {base}", interval=0.1)


def bearer(base: str, client_id: str, secret: str) -> dict[str, str]:
    """Headers with an access token from ``base``'s token endpoint (client credentials, HTTP Basic)."""
    r = httpx.post(
        f"{base}/v1/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def read_feed(base: str, *, after: int = 0) -> list[dict[str, Any]]:
    """The whole change feed after ``after``, page by page (``next_cursor``)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = str(after)
    while cursor is not None:
        r = httpx.get(f"{base}/v1/events", params={"after": cursor, "limit": 200}, timeout=30)
        assert r.status_code == 200, r.text
        page = r.json()
        items.extend(page["data"])
        cursor = page["next_cursor"]
    return items


def matches(event_types: list[str], event_type: str) -> bool:
    """Whether an endpoint subscribed to ``event_types`` (empty: every type) gets ``event_type``."""
    return not event_types or event_type in event_types
