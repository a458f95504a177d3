"""Request ids, structured JSON logs and Prometheus metrics.

- Request ids: :func:`request_id_from` accepts the client's ``X-Request-ID``
  (1–128 safe characters) or makes one; :class:`service.edge.Edge` echoes it
  and :data:`request_id_var` carries it into every log record of the request.
- :class:`RequestRecorder`: after each request, counts it by route *template*
  (never the raw path) and writes one JSON access line.
- :func:`configure_logging`: every log record becomes one JSON object per line
  on stderr, written by a background thread so the event loop never waits on
  the terminal or a pipe.
- ``GET /metrics`` (:data:`router`): Prometheus text exposition (format 0.0.4)
  of the request counters and latency histograms, the last event sequence, and
  whatever :func:`register_collector` callbacks add (the webhooks package adds
  its delivery gauges there).

What never reaches a log line: query strings (their values may carry secrets),
headers (``Authorization`` above all), bodies, and private contact details.
"""

from __future__ import annotations

import asyncio
import atexit
import datetime as dt
import itertools
import json
import logging
import os
import re
import sys
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from pathlib import Path
from queue import SimpleQueue
from typing import Any, TextIO

import sqlalchemy as sa
from fastapi import APIRouter, Request
from prometheus_client import PLATFORM_COLLECTOR, PROCESS_COLLECTOR
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import Scope

from service.errors import DB_RETRY_AFTER_S, is_database_unavailable, problem_body

log = logging.getLogger("service.observability")

#: Scope key a layer that answers before routing (e.g. a cache in front of the
#: router) sets to the route template it served, e.g. ``/v1/standards/{slug}/current``.
ROUTE_KEY = "imi.route"
#: Scope key holding the request id (``str``) for layers further in.
REQUEST_ID_KEY = "imi.request_id"
#: The request id of the request being handled, for log records written during it.
request_id_var: ContextVar[str] = ContextVar("imi_request_id", default="")

UNMATCHED = "unmatched"
#: Methods kept as a metric label; anything else is counted as ``other`` (bounded cardinality).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Upper bounds (seconds) of the latency histogram buckets.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: An incoming ``X-Request-ID`` is echoed only when it is 1–128 of these characters;
#: anything else (too long, spaces, quotes, control characters) is replaced.
_REQUEST_ID_RE = re.compile(rb"[A-Za-z0-9._:/+=@-]{1,128}")
_ROUTE_CACHE_MAX = 4096


# --- JSON logs -----------------------------------------------------------------------

_quote = json.encoder.encode_basestring  # type: ignore[attr-defined]  # C speedup, keeps non-ASCII


_ts_second = -1
_ts_prefix = ""


def log_timestamp(now: float) -> str:
    """RFC 3339 UTC with milliseconds, e.g. ``2026-11-29T08:00:00.123Z`` (memoised per second)."""
    global _ts_second, _ts_prefix
    sec = int(now)
    if sec != _ts_second:
        _ts_prefix = dt.datetime.fromtimestamp(sec, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        _ts_second = sec
    return f"{_ts_prefix}{int((now - sec) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts``, ``level``, ``logger``, ``msg``, ``request_id``
    (when logged during a request), ``exc`` (the formatted traceback, if any) and
    the ``extra={"imi": {...}}`` fields of the call."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": log_timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id_var.get()
        if rid:
            out["request_id"] = rid
        fields = record.__dict__.get("imi")
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, separators=(",", ":"), default=str)


class _Writer(threading.Thread):
    """Drains a queue of finished lines into a stream, batching what piles up.

    The queue also carries ``threading.Event`` markers (set once everything
    before them is written) and ``None`` (stop).
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__(name="imi-log-writer", daemon=True)
        self.stream = stream
        self.queue: SimpleQueue[str | threading.Event | None] = SimpleQueue()
        self.put = self.queue.put

    def run(self) -> None:
        q = self.queue
        while True:
            item = q.get()
            batch: list[str] = []
            markers: list[threading.Event] = []
            stop = False
            while True:
                if item is None:
                    stop = True
                elif isinstance(item, threading.Event):
                    markers.append(item)
                else:
                    batch.append(item)
                if stop or q.empty() or len(batch) >= 512:
                    break
                item = q.get()
            if batch:
                try:
                    self.stream.write("\n".join(batch) + "\n")
                    self.stream.flush()
                except (OSError, ValueError):  # a closed pipe must not kill the process
                    pass
            for marker in markers:
                marker.set()
            if stop:
                return

    def flush(self, timeout: float = 2.0) -> None:
        """Wait until every line queued before this call is written."""
        marker = threading.Event()
        self.queue.put(marker)
        marker.wait(timeout)


class _QueueHandler(logging.Handler):
    """Formats in the calling thread (so arguments are rendered as they were) and
    hands the finished line to the writer thread."""

    def __init__(self, writer: _Writer) -> None:
        super().__init__()
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.writer.put(self.format(record))
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


class _AccessBuffer:
    """Collects access lines on the event loop and hands them to the writer in
    batches (every 50 ms, or 4096 lines), so the writer thread wakes at most
    20 times a second instead of once per request: each wake-up costs the event
    loop a GIL hand-over."""

    BATCH = 4096
    DELAY_S = 0.05

    def __init__(self, writer: _Writer) -> None:
        self.writer = writer
        self.lines: list[str] = []
        self.scheduled = False

    def __call__(self, line: str) -> None:
        lines = self.lines
        lines.append(line)
        if len(lines) >= self.BATCH:
            self.flush()
        elif not self.scheduled:
            try:
                asyncio.get_running_loop().call_later(self.DELAY_S, self.flush)
                self.scheduled = True
            except RuntimeError:  # no loop in this thread: write at once
                self.flush()

    def flush(self) -> None:
        self.scheduled = False
        if self.lines:
            batch, self.lines = self.lines, []
            self.writer.put("\n".join(batch))


_writer: _Writer | None = None
_atexit_registered = False
_buffer: _AccessBuffer | None = None
_access_logger = logging.getLogger("service.access")


def _access_via_logging(line: str) -> None:
    # Used until configure_logging() runs (tests, embedding): an ordinary record
    # whose message is the JSON line, so caplog and other handlers see it.
    _access_logger.info(line)


def _drop(_line: str) -> None:
    return None


#: Where finished access lines go; :func:`configure_logging` swaps in the batching buffer.
_access_sink: Callable[[str], None] = _access_via_logging


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Route every log record to ``stream`` (default stderr) as JSON lines.

    Replaces the root logger's handlers; uvicorn's loggers propagate to it
    (start uvicorn with ``log_config=None``). Safe to call again (the old
    writer is flushed and stopped).
    """
    global _writer, _buffer, _access_sink, _atexit_registered
    shutdown_logging()
    writer = _Writer(stream or sys.stderr)
    writer.start()
    handler = _QueueHandler(writer)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # Our own access line replaces uvicorn's (which would log query strings).
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers.clear()
    uvicorn_access.propagate = False
    uvicorn_access.disabled = True
    # httpx logs every request URL at INFO; webhook URLs may carry tokens in their query.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    _writer = writer
    _buffer = _AccessBuffer(writer)
    if not _atexit_registered:
        atexit.register(shutdown_logging)
        _atexit_registered = True
    _access_sink = _buffer if _access_logger.isEnabledFor(logging.INFO) else _drop


def flush_logs(timeout: float = 2.0) -> None:
    """Block until the lines logged so far are written (tests, shutdown)."""
    if _buffer is not None:
        _buffer.flush()
    if _writer is not None:
        _writer.flush(timeout)


def shutdown_logging() -> None:
    """Flush and stop the writer thread; logging falls back to the standard machinery."""
    global _writer, _buffer, _access_sink
    if _writer is None:
        return
    flush_logs()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _QueueHandler):
            root.removeHandler(handler)
    _writer.queue.put(None)
    _writer.join(timeout=2.0)
    _writer = None
    _buffer = None
    _access_sink = _access_via_logging


async def touch_heartbeat(path: Path, interval_s: float = 10.0) -> None:
    """Touch ``path`` every ``interval_s`` seconds for as long as the event loop runs.

    A worker's liveness probe checks the file's age (e.g. older than 60 s means
    the loop is stuck or the process is gone). Cancel the task to stop.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        path.touch()
        await asyncio.sleep(interval_s)


# --- metrics -------------------------------------------------------------------------

#: ``fn(engine)`` returning metric families; run in a worker thread at scrape time.
CollectorFn = Callable[[Engine], Iterable[Metric]]
_collectors: dict[str, CollectorFn] = {}


def register_collector(name: str, fn: CollectorFn) -> None:
    """Add (or replace) the scrape-time collector ``name``.

    ``fn(engine)`` returns ``prometheus_client.core`` metric families (e.g.
    ``GaugeMetricFamily("imi_webhook_deliveries_due", "…", value=n)``). It runs
    in a worker thread for every scrape of ``/metrics``; a collector that
    raises is skipped (and logged) so one broken query never hides the rest.
    Names should start with ``imi_``.
    """
    _collectors[name] = fn


def registered_collectors() -> list[str]:
    """Names of the registered scrape-time collectors."""
    return sorted(_collectors)


def _event_metrics(engine: Engine) -> Iterable[Metric]:
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT value, pruned_through FROM event_counter WHERE id = 1")).first()
    last, pruned = (int(row[0]), int(row[1])) if row else (0, 0)
    yield GaugeMetricFamily("imi_events_last_sequence", "Sequence of the newest committed event.", last)
    yield GaugeMetricFamily(
        "imi_events_pruned_through", "Highest event sequence removed by retention.", pruned
    )


register_collector("events", _event_metrics)


class HttpStats:
    """Request counts and latency histograms kept in one plain dict.

    Updated only from the event loop thread (the edge middleware) and read
    there too (``/metrics`` is an ``async`` endpoint), so no locks are needed;
    one dict lookup per request instead of prometheus-client's locked children.
    """

    def __init__(self) -> None:
        #: (method, route, status) -> [per-bucket counts..., +Inf count, sum of seconds]
        self.series: dict[tuple[str, str, int], list[float]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        key = (method, route, status)
        h = self.series.get(key)
        if h is None:
            h = self.series[key] = [0.0] * (len(DURATION_BUCKETS) + 2)
        h[bisect_left(DURATION_BUCKETS, seconds)] += 1
        h[-1] += seconds

    def families(self) -> list[Metric]:
        """The current values as metric families: requests by status, latency by route."""
        requests = CounterMetricFamily(
            "imi_http_requests",
            "HTTP requests by method, route template and status.",
            labels=["method", "route", "status"],
        )
        per_route: dict[tuple[str, str], list[float]] = {}
        for (method, route, status), h in sorted(self.series.items()):
            requests.add_metric([method, route, str(status)], sum(h[:-1]))
            total = per_route.setdefault((method, route), [0.0] * len(h))
            for i, value in enumerate(h):
                total[i] += value
        latency = HistogramMetricFamily(
            "imi_http_request_duration_seconds",
            "Time from request start to the end of the response body, by method and route template.",
            labels=["method", "route"],
        )
        for (method, route), h in per_route.items():
            cumulative = 0.0
            buckets: list[tuple[str, float]] = []
            for bound, in_bucket in zip(DURATION_BUCKETS, h, strict=False):
                cumulative += in_bucket
                buckets.append((repr(bound), cumulative))
            cumulative += h[len(DURATION_BUCKETS)]
            buckets.append(("+Inf", cumulative))
            latency.add_metric([method, route], buckets=buckets, sum_value=h[-1])
        return [requests, latency]


class _Families:
    """A one-shot collector over already computed families (for ``generate_latest``)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def _collect_scrape_time(engine: Engine) -> list[Metric]:
    families: list[Metric] = []
    for name, fn in list(_collectors.items()):
        try:
            families.extend(fn(engine))
        except Exception as exc:  # noqa: BLE001 - one failing collector must not hide the others
            log.warning("metrics collector %s failed: %s", name, exc.__class__.__name__)
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR):
        families.extend(collector.collect())
    return families


router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format 0.0.4)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
async def metrics(request: Request) -> Response:
    """Request counters and latency by route template, event sequence, webhook
    delivery gauges and process metrics. Restrict it at the ingress in production."""
    stats: HttpStats = request.app.state.http_stats
    families = stats.families()  # on the loop thread: the only writer runs here too
    families.extend(await run_in_threadpool(_collect_scrape_time, request.app.state.engine))
    return Response(
        generate_latest(_Families(families)),  # type: ignore[arg-type]
        media_type=CONTENT_TYPE_PLAIN_0_0_4,
        headers={"Cache-Control": "no-store"},
    )


# --- the middleware --------------------------------------------------------------------


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
        sink = _access_sink
        if sink is _drop or not self.access_log:
            return
        client = scope.get("client")
        sink(
            f'{{"ts":"{log_timestamp(time.time())}","level":"INFO","logger":"service.access",'
            # Route templates come from the code (no quotes or backslashes): no escaping.
            f'"msg":"request","method":"{method}","route":"{template}",'
            f'"path":{_quote(scope["path"])},"status":{status},"duration_ms":{elapsed * 1000:.3f},'
            f'"request_id":"{rid}","client":{_quote(client[0]) if client else "null"}}}'
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
