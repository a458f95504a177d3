"""ASGI layers that answer cached registry reads before FastAPI routing:
affiliations (:class:`CachedAffiliations`) and anonymous search pages
(:class:`CachedSearchPages`, see ``registry/searchcache.py``).

``GET``/``HEAD /v1/schools/{id}/affiliation`` is what websites call on every
page view. When the app's :class:`~service.registry.affiliation.AffiliationCache`
holds a fresh answer for the school (nothing public changed since it was
built, same signing key, credential not near expiry — see
``registry/affiliation.py``), it is sent from here as prepared bytes: a 200,
or a 304 for a matching ``If-None-Match`` (weak comparison, RFC 9110 §13.1.2).
No routing, no dependency solving, no database. Every miss goes on to the
FastAPI route, which revalidates or rebuilds the entry. The layer sits inside
the rate limiter, request logging, metrics and security headers, so those
still run for these requests.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from service.registry.affiliation import AffiliationCache
from service.registry.searchcache import MAX_QUERIES, SearchCache, page_headers
from service.registry.searchcache import PATH as SEARCH_PATH
from service.web.http import PreparedAnswer, none_match
from service.web.telemetry import ROUTE_KEY

PREFIX = "/v1/schools/"
SUFFIX = "/affiliation"
#: The route template these answers count under in metrics and logs.
ROUTE = "/v1/schools/{school_id}/affiliation"


class CachedAffiliations:
    """Pure ASGI middleware; see the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._prepared: dict[str, PreparedAnswer] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or not path.endswith(SUFFIX)
            or not path.startswith(PREFIX)
            or scope.get("query_string")
        ):
            await self.app(scope, receive, send)
            return
        school_id = path[len(PREFIX) : -len(SUFFIX)]
        cache: AffiliationCache | None = getattr(scope["app"].state, "imi_affiliation_cache", None)
        entry = cache.fresh(school_id) if cache is not None and "/" not in school_id else None
        if entry is None:
            await self.app(scope, receive, send)
            return
        prepared = self._prepared.get(school_id)
        if prepared is None or prepared.source is not entry:
            if len(self._prepared) > 100_000:
                self._prepared.clear()
            prepared = self._prepared[school_id] = PreparedAnswer(
                entry, entry.headers, entry.body, b"application/json"
            )
        scope[ROUTE_KEY] = ROUTE
        inm = None
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                inm = value.decode("latin-1")
                break
        await prepared.send(
            send,
            not_modified=inm is not None and (inm == entry.etag or none_match(inm, entry.etag)),
            head=scope["method"] == "HEAD",
        )


# --- search pages -------------------------------------------------------------------------


class CachedSearchPages:
    """Pure ASGI middleware answering anonymous ``GET``/``HEAD /v1/schools?…`` from the
    app's :class:`~service.registry.searchcache.SearchCache` before routing.

    Served only for a query string the route already answered (it remembers which
    page that is) while the page is valid; anything else — a request with
    ``Authorization``, an unseen query, a stale page — goes on to the route,
    which validates, queries and fills the cache. When the change stamp is due
    for its poll, the poll runs here (in a worker thread) rather than sending the
    request through routing.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._prepared: dict[bytes, PreparedAnswer] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != SEARCH_PATH or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        cache: SearchCache | None = getattr(scope["app"].state, "imi_search_cache", None)
        query = scope.get("query_string", b"")
        recalled = cache.recall(query) if cache is not None else None
        if cache is None or recalled is None:
            await self.app(scope, receive, send)
            return
        inm = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                await self.app(scope, receive, send)
                return
            if name == b"if-none-match":
                inm = value.decode("latin-1")
        stamp = cache.clock.cached()
        if stamp is None:
            try:
                stamp = await run_in_threadpool(cache.clock.current)
            except Exception:  # noqa: BLE001 - the database may be down: the route answers that
                await self.app(scope, receive, send)
                return
        key, link_params = recalled
        page = cache.lookup(key, stamp)
        if page is None:
            await self.app(scope, receive, send)
            return
        prepared = self._prepared.get(query)
        if prepared is None or prepared.source is not page:
            if len(self._prepared) > MAX_QUERIES:
                self._prepared.clear()
            base_url = scope["app"].state.settings.public_base_url
            headers = page_headers(page, base_url=base_url, link_params=link_params)
            prepared = self._prepared[query] = PreparedAnswer(page, headers, page.body, b"application/json")
        scope[ROUTE_KEY] = SEARCH_PATH
        await prepared.send(
            send,
            not_modified=inm is not None and (inm == page.etag or none_match(inm, page.etag)),
            head=scope["method"] == "HEAD",
        )
