"""Per-request telemetry at the HTTP edge: request ids, the route template a
request counts under, its access-log line, and the answer for an exception
that escaped the app before it answered.

- Request ids: :func:`request_id_from` accepts the client's ``X-Request-ID``
  (1–128 safe characters) or makes one; :class:`service.web.edge.Edge` echoes
  it and :data:`service.core.logs.request_id_var` carries it into every log
  record of the request.
- :class:`RequestRecorder`: after each request, counts it by route *template*
  (never the raw path) and writes one JSON access line.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from collections.abc import Iterable
from typing import Any

from starlette.routing import compile_path
from starlette.types import Scope

from service.core.errors import DB_RETRY_AFTER_S, is_database_unavailable, problem_body
from service.core.logs import access_sink, log_timestamp, quote_json
from service.core.metrics import HttpStats

log = logging.getLogger(__name__)

#: Scope key a layer that answers before routing (e.g. a cache in front of the
#: router) sets to the route template it served, e.g. ``/v1/standards/{slug}/current``.
ROUTE_KEY = "imi.route"
#: Scope key holding the request id (``str``) for layers further in.
REQUEST_ID_KEY = "imi.request_id"
UNMATCHED = "unmatched"
#: Methods kept as a metric label; anything else is counted as ``other`` (bounded cardinality).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: An incoming ``X-Request-ID`` is echoed only when it is 1–128 of these characters;
#: anything else (too long, spaces, quotes, control characters) is replaced.
_REQUEST_ID_RE = re.compile(rb"[A-Za-z0-9._:/+=@-]{1,128}")
_ROUTE_CACHE_MAX = 4096

#: Request ids need to be unique, not secret: 64 random bits per process and a
#: counter (32 hex characters, the size of a UUID) cost half of a random UUID.
_ID_PREFIX = os.urandom(8).hex()
_id_counter = itertools.count(1)


def request_id_from(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The client's ``X-Request-ID`` when it is 1–128 safe characters, else a new one
    (32 hex characters: a random per-process prefix and a counter)."""
    for name, value in headers:
        if name == b"x-request-id":
            if _REQUEST_ID_RE.fullmatch(value):
                return value.decode("ascii")
            break
    return f"{_ID_PREFIX}{next(_id_counter):016x}"


class RequestRecorder:
    """Counts a finished request in :class:`HttpStats` and writes its access line.

    The route label is the matched route's path template
    (``scope["route"].path_format``), else ``scope[ROUTE_KEY]`` set by a layer
    that answered before routing, else a (memoised, bounded) match against the
    app's routes; ``unmatched`` when no route matches.
    """

    def __init__(self, stats: HttpStats | None, *, access_log: bool = True) -> None:
        self.stats = stats
        self.access_log = access_log
        self._routes: dict[tuple[str, str], str] = {}
        self._table: list[tuple[re.Pattern[str], str, frozenset[str] | None]] | None = None
        self._table_size = -1

    def record(self, scope: Scope, status: int, elapsed: float, rid: str) -> None:
        """Metrics and the access log line for one request (``elapsed`` in seconds)."""
        method = scope["method"]
        if method not in KNOWN_METHODS:
            method = "other"
        route = scope.get("route")
        template = getattr(route, "path_format", None) if route is not None else None
        if template is None:
            template = scope.get(ROUTE_KEY) or self._lookup(scope)
        if self.stats is not None:
            self.stats.observe(method, template, status, elapsed)
        sink = access_sink()
        if sink is None or not self.access_log:
            return
        client = scope.get("client")
        sink(
            f'{{"ts":"{log_timestamp(time.time())}","level":"INFO","logger":"service.access",'
            # Route templates come from the code (no quotes or backslashes): no escaping.
            f'"msg":"request","method":"{method}","route":"{template}",'
            f'"path":{quote_json(scope["path"])},"status":{status},"duration_ms":{elapsed * 1000:.3f},'
            f'"request_id":"{rid}","client":{quote_json(client[0]) if client else "null"}}}'
        )

    def _lookup(self, scope: Scope) -> str:
        # Requests the router did not tag: answered before routing, HEAD (run as
        # GET on a copy of the scope), or no route at all.
        method = "GET" if scope["method"] == "HEAD" else scope["method"]
        path = scope["path"]
        key = (method, path)
        template = self._routes.get(key)
        if template is not None:
            return template
        app = scope.get("app")
        routes = getattr(getattr(app, "router", None), "routes", None) or []
        if self._table is None or self._table_size != len(routes):
            self._table = route_table(routes)
            self._table_size = len(routes)
        template = partial = None
        for regex, fmt, methods in self._table:
            if regex.match(path):
                if methods is None or method in methods:
                    template = fmt
                    break
                if partial is None:
                    partial = fmt
        template = template or partial or UNMATCHED
        if len(self._routes) >= _ROUTE_CACHE_MAX:
            self._routes.clear()
        self._routes[key] = template
        return template


def error_answer(exc: Exception) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """``(status, headers, body)`` for an exception that escaped the app before it
    answered: 503 with ``Retry-After`` when the database is unreachable, else 500.
    Logs it (the traceback only for the 500)."""
    headers = [(b"content-type", b"application/problem+json"), (b"cache-control", b"no-store")]
    if is_database_unavailable(exc):
        log.warning("database unavailable: %s", exc.__class__.__name__)
        status = 503
        body = problem_body(
            503, "Service unavailable", "The database is unreachable; retry shortly.", "unavailable"
        )
        headers.append((b"retry-after", str(DB_RETRY_AFTER_S).encode()))
    else:
        log.exception("unhandled error")
        status = 500
        body = problem_body(
            500,
            "Internal server error",
            "The server failed to answer this request; it has been logged.",
            "internal-error",
        )
    headers.append((b"content-length", str(len(body)).encode()))
    return status, headers, body


def route_table(routes: Iterable[Any]) -> list[tuple[re.Pattern[str], str, frozenset[str] | None]]:
    """``(regex, path template, methods)`` for every route, included routers flattened.

    ``methods`` is ``None`` for routes that take any method (mounts).
    """
    table: list[tuple[re.Pattern[str], str, frozenset[str] | None]] = []
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:  # FastAPI's included routers
            for ctx in contexts():
                fmt = ctx.path_format
                original = getattr(ctx, "original_route", None)
                source = getattr(original, "path", None)
                if source is None or getattr(original, "path_format", None) != fmt:
                    source = fmt
                methods = getattr(ctx, "methods", None)
                table.append((compile_path(source)[0], fmt, frozenset(methods) if methods else None))
            continue
        fmt = getattr(route, "path_format", None)
        regex = getattr(route, "path_regex", None)
        if fmt is None or regex is None:
            continue
        methods = getattr(route, "methods", None)
        table.append((regex, fmt, frozenset(methods) if methods else None))
    return table
