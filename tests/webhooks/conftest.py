"""Webhook fixtures: a programmable receiver on 127.0.0.1, endpoints, events, waiting.

The receiver is one uvicorn server per test session (a thread) answering every
path; each test gets its own path prefix and scripts the answers it wants.
No resolver ever queries DNS here: an autouse fixture installs one that knows
only the names a test gives it.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.events import service as events
from service.webhooks import urlguard


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Script:
    """Answers for one path: statuses in order (the last repeats), after ``delay`` seconds, or a
    hang (8 s)."""

    statuses: list[int] = field(default_factory=lambda: [200])
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    delay: float = 0.0
    body: bytes = b"ok"
    calls: int = 0


class ReceiverServer:
    """The shared uvicorn server; tests use :class:`Receiver` views of it."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.scripts: dict[str, Script] = {}
        self.lock = threading.Lock()
        app = Starlette(routes=[Route("/{path:path}", self.endpoint, methods=["POST", "GET"])])
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
            ws="none",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        path = request.url.path
        with self.lock:
            self.requests.append(Received(path, dict(request.headers), body, time.time()))
            script = self.scripts.get(path) or Script()
            index = min(script.calls, len(script.statuses) - 1)
            script.calls += 1
        if script.hang or script.delay:
            await asyncio.sleep(8 if script.hang else script.delay)
        return Response(script.body, status_code=script.statuses[index], headers=script.headers)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("receiver did not start")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


class Receiver:
    """A test's view of the receiver: its own path prefix."""

    def __init__(self, server: ReceiverServer) -> None:
        self.server = server
        self.prefix = f"/t{uuid.uuid4().hex[:10]}"
        self._n = itertools.count()

    def url(self, name: str | None = None) -> str:
        """A fresh URL (or the URL of ``name``) on 127.0.0.1."""
        name = name or f"r{next(self._n)}"
        return f"http://127.0.0.1:{self.server.port}{self.prefix}/{name}"

    def path(self, url: str) -> str:
        return url.split(str(self.server.port), 1)[1]

    def script(
        self,
        url: str,
        statuses: list[int],
        *,
        headers: dict[str, str] | None = None,
        body: bytes = b"ok",
        delay: float = 0.0,
    ) -> None:
        self.server.scripts[self.path(url)] = Script(
            statuses=statuses, headers=headers or {}, body=body, delay=delay
        )

    def hang(self, url: str) -> None:
        self.server.scripts[self.path(url)] = Script(hang=True)

    def received(self, url: str | None = None) -> list[Received]:
        with self.server.lock:
            items = list(self.server.requests)
        if url is None:
            return [r for r in items if r.path.startswith(self.prefix + "/")]
        return [r for r in items if r.path == self.path(url)]


@pytest.fixture(scope="session")
def receiver_server() -> Iterator[ReceiverServer]:
    server = ReceiverServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def receiver(receiver_server: ReceiverServer) -> Receiver:
    return Receiver(receiver_server)


@pytest.fixture(autouse=True)
def fixed_resolver() -> Iterator[dict[str, list[str]]]:
    """Names tests may use, with their addresses; any other name fails without DNS."""
    names: dict[str, list[str]] = {}

    async def resolve(host: str, port: int) -> list[str]:
        if host in names:
            return names[host]
        raise OSError(f"test resolver: unknown name {host!r}")

    previous = urlguard.set_resolver(resolve)
    yield names
    urlguard.set_resolver(previous)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"in_process_worker": True, "webhook_retry_schedule": "0,0.2,0.2", "webhook_timeout_s": 2.0}


@pytest.fixture
def manager(auth: Callable[..., dict[str, str]]) -> dict[str, str]:
    """Bearer headers of an association with ``webhooks:manage``."""
    return auth("webhooks:manage")


@pytest.fixture
def make_endpoint(client: Any, manager: dict[str, str]) -> Callable[..., dict[str, Any]]:
    """Register an endpoint through the API; returns the 201 body (with ``secret``)."""

    def make(
        url: str,
        event_types: list[str] | None = None,
        headers: dict[str, str] | None = None,
        description: str = "",
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"url": url, "description": description}
        if event_types is not None:
            body["event_types"] = event_types
        r = client.post("/v1/webhooks/endpoints", json=body, headers=headers or manager)
        assert r.status_code == 201, r.text
        return r.json()

    return make


def sample_data(n: int = 1, title: str = "Training Standards") -> dict[str, Any]:
    return {
        "document": "training-standards",
        "version": f"{n}.0",
        "title": title,
        "previous_version": None,
        "reaffirmation_required": True,
        "effective_from": None,
        "changes": {"added": [], "removed": [], "modified": [], "moved": []},
        "links": {"version": f"http://testserver/v1/standards/training-standards/versions/{n}.0"},
    }


@pytest.fixture
def emit(session_factory: Callable[[], Any]) -> Callable[..., list[dict[str, Any]]]:
    """Emit events in one transaction; returns their public payloads."""

    def do(
        event_type: str = "standards.version.published", data: dict[str, Any] | None = None, count: int = 1
    ) -> list[dict[str, Any]]:
        out = []
        with session_factory() as session:
            for i in range(count):
                e = events.emit(session, event_type, data if data is not None else sample_data(i + 1))
                out.append(events.event_payload(e))
        return out

    return do
