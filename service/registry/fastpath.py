"""An ASGI layer that answers cached affiliation reads before FastAPI routing.

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

from starlette.types import ASGIApp, Receive, Scope, Send

from service.http import none_match
from service.registry.affiliation import AffiliationCache, Entry

PREFIX = "/v1/schools/"
SUFFIX = "/affiliation"
#: The route template these answers count under in metrics and logs.
ROUTE = "/v1/schools/{school_id}/affiliation"
ROUTE_KEY = "imi.route"  # service.observability reads this scope key


class _Prepared:
    """An entry's raw ASGI header lists for 200 and 304, built once per entry."""

    __slots__ = ("entry", "headers_200", "headers_304")

    def __init__(self, entry: Entry) -> None:
        self.entry = entry
        common = [
            (k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in entry.headers.items()
            if k.lower() != "content-type"
        ]
        self.headers_304 = common
        self.headers_200 = [
            *common,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(entry.body)).encode()),
        ]


class CachedAffiliations:
    """Pure ASGI middleware; see the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._prepared: dict[str, _Prepared] = {}

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
        if prepared is None or prepared.entry is not entry:
            if len(self._prepared) > 100_000:
                self._prepared.clear()
            prepared = self._prepared[school_id] = _Prepared(entry)
        scope[ROUTE_KEY] = ROUTE
        inm = None
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                inm = value.decode("latin-1")
                break
        if inm is not None and (inm == entry.etag or none_match(inm, entry.etag)):
            await send({"type": "http.response.start", "status": 304, "headers": prepared.headers_304})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": prepared.headers_200})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else entry.body})
