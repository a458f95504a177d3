"""An ASGI layer that answers cached standards reads before FastAPI routing.

``GET``/``HEAD`` of ``/v1/standards/{slug}/current`` and
``/v1/standards/{slug}/versions/{version}`` whose representation is in the
app's :class:`~service.standards.cache.RepresentationCache` are answered here
— a 200 with the stored bytes, or a 304 (``If-None-Match`` with weak
comparison, else ``If-Modified-Since``; RFC 9110 §13.1) — without a database
session, validation or routing (PERFORMANCE.md: routing alone costs about half
of the bare app's throughput). Everything else, and every miss, goes on to the
app, which fills the cache. It sits inside the rate limiter, request logging,
metrics and security headers, so those run for these requests too.

Also runs the cross-replica invalidation: :func:`poll_generation` checks the
newest standards event every ``interval_s`` seconds (DESIGN §4: a publish
through one replica is served by every replica within 2 seconds).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from email.utils import parsedate_to_datetime

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from service.standards.cache import PREFIX, CacheKey, RepresentationCache, for_app, request_key
from service.web.http import PreparedAnswer, none_match
from service.web.telemetry import ROUTE_KEY

log = logging.getLogger("service.standards.fastpath")

#: The route templates these answers count under in metrics and logs.
ROUTE_CURRENT = "/v1/standards/{slug}/current"
ROUTE_VERSION = "/v1/standards/{slug}/versions/{version}"


def _content_type(media_type: str) -> bytes:
    if media_type.startswith("text/"):
        return f"{media_type}; charset=utf-8".encode()
    return media_type.encode()


def _not_modified_since(value: bytes, last_modified: dt.datetime | None) -> bool:
    if last_modified is None:
        return False
    try:
        since = parsedate_to_datetime(value.decode("latin-1"))
    except (TypeError, ValueError, IndexError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=dt.UTC)
    return last_modified.replace(microsecond=0) <= since


class CachedStandardsReads:
    """Pure ASGI middleware; see the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._prepared: dict[object, PreparedAnswer] = {}
        # (path, query, Accept) -> cache key: parsing the query and negotiating
        # Accept cost more than the rest of a hit; clients repeat the same few.
        self._keys: dict[tuple[str, bytes, str | None], CacheKey | None] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or not scope["path"].startswith(PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        cache: RepresentationCache | None = getattr(scope["app"].state, "standards_cache", None)
        if cache is None or not len(cache):
            await self.app(scope, receive, send)
            return
        accept = inm = ims = None
        for name, value in scope["headers"]:
            if name == b"accept":
                accept = value.decode("latin-1")
            elif name == b"if-none-match":
                inm = value.decode("latin-1")
            elif name == b"if-modified-since":
                ims = value
        memo = (scope["path"], scope["query_string"], accept)
        if memo in self._keys:
            key = self._keys[memo]
        else:
            if len(self._keys) > 4096:
                self._keys.clear()
            key = self._keys[memo] = request_key(*memo)
        entry = cache.lookup(key) if key is not None else None
        if entry is None or key is None:
            await self.app(scope, receive, send)
            return
        prepared = self._prepared.get(key)
        if prepared is None or prepared.source is not entry:
            if len(self._prepared) > 4096:
                self._prepared.clear()
            prepared = self._prepared[key] = PreparedAnswer(
                entry, entry.headers(), entry.body, _content_type(entry.media_type)
            )
        scope[ROUTE_KEY] = ROUTE_CURRENT if key.version == "current" else ROUTE_VERSION
        await prepared.send(
            send,
            not_modified=(
                (inm == entry.etag or none_match(inm, entry.etag))
                if inm is not None
                else ims is not None and _not_modified_since(ims, entry.last_modified)
            ),
            head=scope["method"] == "HEAD",
        )


async def poll_generation(app: object, engine: Engine, *, interval_s: float = 0.5) -> None:
    """Forever: clear the app's cache when another replica committed a standards event."""
    cache = for_app(app)
    while True:
        try:
            await run_in_threadpool(cache.refresh_generation, engine)
        except Exception:  # noqa: BLE001 - the database may be down; cached versions stay served
            log.debug("standards cache refresh failed", exc_info=True)
        await asyncio.sleep(interval_s)
