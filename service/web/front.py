"""The application object: FastAPI with a *front* that every HTTP request meets first.

FastAPI wraps its router in its own layers (server errors, exception telemetry,
a body limit, the exception middleware) and spends about a third of a cached
read's in-process time there (cProfile, 2026-12-06: a cached 304 cost ~15 µs,
~5 µs of it in those layers). The front — the edge (:class:`~service.web.edge.Edge`:
client address, request id, CORS, rate limit, security headers, metrics, access
log) around the public-representation cache
(:class:`~service.web.public_reads.PublicReads`) — therefore runs *before* FastAPI: a
cached read is answered without entering it; everything else continues into
FastAPI's full stack, where :class:`ProblemOnError` turns an exception that
escaped a handler into a problem response (the edge's headers still wrap it).

``lifespan`` and other non-HTTP scopes go straight to FastAPI.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.web.telemetry import error_answer


class ServiceApp(FastAPI):
    """FastAPI whose HTTP requests pass through :attr:`front` first (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._front: ASGIApp | None = None

    def install_front(self, build: Callable[[ASGIApp], ASGIApp]) -> None:
        """``build(inner)`` makes the front around ``inner`` (FastAPI's own stack)."""
        self._front = build(self._inner)

    async def _inner(self, scope: Scope, receive: Receive, send: Send) -> None:
        await FastAPI.__call__(self, scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        front = self._front
        if front is not None and scope["type"] == "http":
            await front(scope, receive, send)
        else:
            await FastAPI.__call__(self, scope, receive, send)


class ProblemOnError:
    """An exception that escaped a handler before it answered becomes a problem response
    (503 with ``Retry-After`` when the database is unreachable, else 500; see
    :func:`~service.web.telemetry.error_answer`). Added outermost of FastAPI's user
    middleware, inside FastAPI's own ``ServerErrorMiddleware``, which would answer plain
    text. After the response started nothing more can be told: it re-raises."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception as exc:
            if started:
                raise
            status, headers, body = error_answer(exc)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
