"""In-memory cache of serialised standards representations (PERFORMANCE.md).

Published versions never change their content, so their bodies are
serialised once per (document, version, requested language, media type) and
then served as bytes. Only non-draft representations are stored. A ``lang``
that falls back (``?lang=fr`` served in ``en``) is stored once under the
served language plus a tiny alias ``(…, "fr") -> "en"``, so arbitrary tags
cannot fill the memory with copies; :meth:`RepresentationCache.lookup`
follows the alias. Diffs between non-draft versions are stored too (keys
built by the router, ``version="diff/1.0/2.0"``).

Keys come from :func:`request_key`, a pure function of the request path,
query string and ``Accept`` header, so an ASGI fast path in front of the app
can look entries up before any routing:

- ``/v1/standards/{slug}/versions/{version}`` -> ``CacheKey(slug, version, lang, media)``
- ``/v1/standards/{slug}/current`` -> ``CacheKey(slug, "current", lang, media)``;
  the entry records the version it resolved to.

The version's status is not part of the key: every status change (publish,
supersede, withdraw) and every published translation emits a
``standards.*`` event, and every such event clears the whole cache, so an
entry never outlives the status it was rendered with.

Invalidation:

- in this process, :func:`_on_commit` clears every live cache after the
  commit of any ``standards.*`` event (``events.service.on_commit``);
- across replicas, :meth:`RepresentationCache.refresh_generation` (run every
  0.5–1 s by the app's lifespan) compares the newest standards event
  sequence with the one it saw last and clears on a change, so a publish on
  one replica is served by every replica within ~1 s;
- a request that started reading before a clear cannot store what it read
  (the ``epoch`` argument of :meth:`RepresentationCache.put`).

All methods are thread-safe (one lock; the critical sections are dict
operations).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar
from urllib.parse import parse_qsl

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col

from service.core.errors import NotAcceptable, Unprocessable
from service.events import service as events
from service.events.models import Event
from service.standards.render import OFFERED
from service.standards.schemas import normalise_language
from service.web.http import http_date, negotiate

PREFIX = "/v1/standards/"
#: Upper bound on entries; beyond it the cache is cleared (bodies are ~30 KB, so ~120 MB worst case).
MAX_ENTRIES = 4096

_V = TypeVar("_V")


class CacheKey(NamedTuple):
    """``slug``, ``version`` (``"2.0"`` or ``"current"``), requested ``lang`` (normalised, ``""``
    when absent) and the negotiated ``media`` type."""

    slug: str
    version: str
    lang: str
    media: str


@dataclass(frozen=True)
class Entry:
    """One serialised representation and the headers that go with it.

    ``last_modified`` is an aware datetime (``Last-Modified`` and
    ``If-Modified-Since``); ``version``/``status`` say what was rendered;
    ``content_location`` names the version a ``/current`` entry resolved to.
    """

    body: bytes
    etag: str
    media_type: str
    content_language: str
    cache_control: str
    last_modified: dt.datetime | None
    version: str
    status: str
    content_location: str | None = None

    def headers(self) -> dict[str, str]:
        """Response headers other than ``Content-Type``/``Content-Length``."""
        out = {"ETag": self.etag, "Cache-Control": self.cache_control, "Vary": "Accept, Accept-Encoding"}
        if self.content_language:
            out["Content-Language"] = self.content_language
        if self.last_modified is not None:
            out["Last-Modified"] = http_date(self.last_modified)
        if self.content_location:
            out["Content-Location"] = self.content_location
        return out


class RepresentationCache:
    """A small thread-safe map ``CacheKey -> Entry`` with generation-based invalidation."""

    def __init__(self, max_entries: int = MAX_ENTRIES, *, listen: bool = True) -> None:
        """``listen=False``: not cleared by this process's commits (only by :meth:`refresh_generation`)."""
        self._lock = threading.Lock()
        self._entries: dict[CacheKey, Entry] = {}
        self._aliases: dict[CacheKey, str] = {}
        self._max = max_entries
        #: Builds in progress, shared by :meth:`build_once` (event-loop side only).
        self._flights: dict[tuple[int, CacheKey], asyncio.Future[Entry]] = {}
        #: Bumped by every clear; a reader passes the epoch it started in to :meth:`put`.
        self.epoch = 0
        #: The newest standards event sequence this cache has seen (``None`` before the first refresh).
        self.generation: int | None = None
        if listen:
            _live.add(self)

    def __len__(self) -> int:
        return len(self._entries)

    async def build_once(self, key: CacheKey, build: Callable[[], Awaitable[Entry]]) -> Entry:
        """``await build()``, shared by concurrent callers for ``key`` in the current epoch.

        Only for builds whose result is the same for every caller (anonymous
        reads). Right after a publish every reader misses at once: eight
        connections used to build ``current`` eight times side by side, and
        reads stalled for the whole herd.
        """
        flight = (self.epoch, key)
        running = self._flights.get(flight)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        self._flights[flight] = future
        try:
            entry = await build()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it; none waiting is no error
            raise
        else:
            future.set_result(entry)
            return entry
        finally:
            del self._flights[flight]

    def get(self, key: CacheKey) -> Entry | None:
        """The entry stored under exactly ``key``, or ``None`` (no alias resolution)."""
        return self._entries.get(key)

    def lookup(self, key: CacheKey) -> Entry | None:
        """The entry answering ``key``, following a language fallback alias; ``None`` on a miss.

        This is what a fast path should call with :func:`request_key`'s result.
        """
        entry = self._entries.get(key)
        if entry is None and key.lang:
            served = self._aliases.get(key)
            if served is not None:
                entry = self._entries.get(key._replace(lang=served))
        return entry

    def put_alias(self, key: CacheKey, served: str, *, epoch: int | None = None) -> bool:
        """Remember that ``key``'s language is served as ``served`` (its entry is stored under that)."""
        return self._store(self._aliases, key, served, epoch)

    def put(self, key: CacheKey, entry: Entry, *, epoch: int | None = None) -> bool:
        """Store ``entry`` unless the cache was cleared since ``epoch`` (then it may be stale).

        Returns whether it was stored.
        """
        return self._store(self._entries, key, entry, epoch)

    def _store(self, table: dict[CacheKey, _V], key: CacheKey, value: _V, epoch: int | None) -> bool:
        """``table[key] = value`` unless a clear came after ``epoch``; a full table is emptied first."""
        with self._lock:
            if epoch is not None and epoch != self.epoch:
                return False
            if len(table) >= self._max:
                table.clear()
            table[key] = value
            return True

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._drop_all()

    def _drop_all(self) -> None:
        """Empty the maps and start a new epoch (the caller holds the lock)."""
        self._entries.clear()
        self._aliases.clear()
        self.epoch += 1

    def note_sequence(self, sequence: int) -> None:
        """A standards event with ``sequence`` committed here: clear and remember it."""
        with self._lock:
            self._drop_all()
            if self.generation is None or sequence > self.generation:
                self.generation = sequence

    def refresh_generation(self, engine: Engine) -> bool:
        """Clear when another process committed a standards event since the last call.

        Reads ``SELECT max(sequence) FROM events WHERE type LIKE 'standards.%'``
        (other domains' events do not change these representations). Returns
        whether the cache was cleared. Blocking: run it in a thread.
        """
        with engine.connect() as conn:
            value = conn.execute(
                sa.select(sa.func.max(col(Event.sequence))).where(col(Event.type).like("standards.%"))
            ).scalar()
        latest = int(value or 0)
        with self._lock:
            if latest == self.generation:
                return False
            self._drop_all()
            self.generation = latest
            return True


_live: weakref.WeakSet[RepresentationCache] = weakref.WeakSet()


def _on_commit(event: Event) -> None:
    if event.type.startswith("standards."):
        for cache in list(_live):
            cache.note_sequence(event.sequence)


events.on_commit(_on_commit)


def for_app(app: Any) -> RepresentationCache:
    """The app's cache at ``app.state.standards_cache``, created on first use."""
    cache = getattr(app.state, "standards_cache", None)
    if cache is None:
        with _create_lock:
            cache = getattr(app.state, "standards_cache", None)
            if cache is None:
                cache = RepresentationCache()
                app.state.standards_cache = cache
    return cache


_create_lock = threading.Lock()


def lang_param(query: str | bytes) -> str | None:
    """The raw value of the last ``lang`` query parameter (as FastAPI reads it), or ``None``."""
    text = query.decode("latin-1") if isinstance(query, bytes) else query
    value = None
    for name, item in parse_qsl(text, keep_blank_values=True):
        if name == "lang":
            value = item
    return value


def request_key(path: str, query: str | bytes, accept: str | None) -> CacheKey | None:
    """The cache key of a ``GET`` of ``/current`` or ``/versions/{version}``, or ``None``.

    ``None`` when the path is not one of those, the ``lang`` is malformed or
    nothing offered is acceptable: the app answers those (422, 406, …).
    """
    if not path.startswith(PREFIX):
        return None
    parts = path[len(PREFIX) :].split("/")
    if len(parts) == 2 and parts[1] == "current" and parts[0]:
        slug, version = parts[0], "current"
    elif len(parts) == 3 and parts[1] == "versions" and parts[0] and parts[2]:
        slug, version = parts[0], parts[2]
    else:
        return None
    return key_for(slug, version, lang_param(query), accept)


def key_for(slug: str, version: str, lang: str | None, accept: str | None) -> CacheKey | None:
    """The key for already-split parts; ``None`` for a malformed ``lang`` or an unacceptable ``Accept``."""
    try:
        media = negotiate(accept, OFFERED)
        tag = normalise_language(lang) if lang is not None else ""
    except (NotAcceptable, Unprocessable):
        return None
    return CacheKey(slug, version, tag, media)


def entry_headers(entry: Entry, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The entry's headers plus ``extra``."""
    out = entry.headers()
    out.update(extra or {})
    return out
