"""Structured JSON logs: every record one JSON object per line on stderr.

:func:`configure_logging` routes the root logger through a writer thread (the
event loop never waits on a terminal or a pipe); access lines of the HTTP edge
come in batches through :func:`access_sink`. :data:`request_id_var` carries the
request id into every record written while a request runs.

What never reaches a log line: query strings (their values may carry secrets),
headers (``Authorization`` above all), bodies, and private contact details.
"""

from __future__ import annotations

import asyncio
import atexit
import datetime as dt
import json
import logging
import sys
import threading
from collections.abc import Callable
from contextvars import ContextVar
from queue import SimpleQueue
from typing import Any, TextIO

#: The request id of the request being handled, for log records written during it.
request_id_var: ContextVar[str] = ContextVar("imi_request_id", default="")


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


def access_sink() -> Callable[[str], None] | None:
    """Where finished access lines (JSON text) go now; ``None`` when access logging is off."""
    return None if _access_sink is _drop else _access_sink


def quote_json(text: str) -> str:
    """``text`` as a JSON string literal, non-ASCII kept (the C encoder: for hot access lines)."""
    return _quote(text)
