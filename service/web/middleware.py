"""Pure ASGI middleware that must run before routing.

- :class:`BodyLimit`: 413 problem for bodies over 1 MiB, before authentication.
- :class:`HeadAsGet`: ``HEAD`` is answered wherever ``GET`` is, without a body
  (RFC 9110 §9.3.2), and the ``Content-Length`` of the ``GET``.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.core.errors import problem_body

MAX_BODY_BYTES = 1024 * 1024


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app ``body`` (already read) as the whole request body
    once, then defers to ``receive`` (for ``http.disconnect``)."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class BodyLimit:
    """Refuse request bodies larger than ``limit`` bytes with a 413 problem.

    Checks ``Content-Length`` up front; a chunked body is read here (at most
    ``limit`` + 1 bytes are ever buffered) and handed on whole.
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunked = False
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                # The server delivers exactly Content-Length bytes: checking it is enough.
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    await self._reject(send)
                    return
                await self.app(scope, receive, send)
                return
            if name == b"transfer-encoding":
                chunked = True
        if not chunked:  # no body at all (GET, HEAD, …)
            await self.app(scope, receive, send)
            return
        # A chunked body has no announced size: read it here, at most limit + 1 bytes,
        # so the app never sees a truncated body (its parser would answer 400).
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._reject(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, replaying(b"".join(chunks), receive), send)

    async def _reject(self, send: Send) -> None:
        body = problem_body(
            413,
            "Content too large",
            f"The request body is larger than {self.limit} bytes.",
            "payload-too-large",
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class HeadAsGet:
    """Serve ``HEAD`` by running ``GET`` and dropping the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        get_scope: dict[str, Any] = dict(scope)
        get_scope["method"] = "GET"

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b""})
                return
            await send(message)

        await self.app(get_scope, receive, send_headers_only)
