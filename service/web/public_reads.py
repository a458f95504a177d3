"""Answering public reads before routing: the ASGI layer of the public-representation cache.

:class:`PublicReads` sits inside the edge (so rate limits, logs, metrics and
security headers still apply) and answers a ``GET``/``HEAD`` whose exact
signature — path, query string, ``Accept``, ``Accept-Language`` — a route has
answered before (``PublicCache.serve`` remembers it), from a still-valid entry:
no routing, no database. It reads the cache's memo of signatures directly: it is
the cache's own front, on the path measured in microseconds.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from service.web.cache import PublicCache
from service.web.telemetry import ROUTE_KEY


class PublicReads:
    """Pure ASGI middleware: answers ``GET``/``HEAD`` public reads from ``cache`` (the app's
    :class:`PublicCache`) before routing (see the module docstring); every miss, every other
    method and every request the cache cannot answer go on to the app."""

    def __init__(self, app: ASGIApp, cache: PublicCache) -> None:
        self.app = app
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cache = self.cache
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD") or not cache._signatures:
            await self.app(scope, receive, send)
            return
        accept = language = inm = ims = None
        authorized = False
        for name, value in scope["headers"]:
            if name == b"accept":
                accept = value
            elif name == b"accept-language":
                language = value
            elif name == b"if-none-match":
                inm = value.decode("latin-1")
            elif name == b"if-modified-since":
                ims = value.decode("latin-1")
            elif name == b"authorization":
                authorized = True
        known = cache._signatures.get((scope["path"], scope.get("query_string", b""), accept, language))
        if known is None:
            await self.app(scope, receive, send)
            return
        if cache.clock.poll_due():
            await cache.clock.refresh()
        entry = cache.recall(known)
        if entry is None or (authorized and entry.resource.anonymous_only):
            await self.app(scope, receive, send)
            return
        scope[ROUTE_KEY] = entry.resource.route
        await entry.send(send, not_modified=entry.not_modified(inm, ims), head=scope["method"] == "HEAD")
