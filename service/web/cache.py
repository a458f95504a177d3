"""The public-representation cache: one mechanism for every public read.

A *public read* is a ``GET`` whose answer is the same for every anonymous caller
(a standards version, ``/current``, a diff, a school's affiliation, a search
page, the snapshot, a feed…). Its route declares a :class:`Resource` (the route
template, the change domains its answer depends on, a maximum age) and answers
through :meth:`PublicCache.serve` with a key it computes from the request (path
parameters, normalised query, negotiated media type and language) and a blocking
``build`` that renders the representation. The cache then owns everything else:

- **Storage**: the bytes and the headers as prepared ASGI header lists
  (:class:`Entry`; it, :class:`Resource`, :class:`Built` and :class:`Streamed` live in
  ``representation.py`` and are importable from here), in one LRU bounded in entries and bytes
  (``IMI_CACHE_MAX_ENTRIES``, ``IMI_CACHE_MAX_BYTES``).
- **Conditional requests** (RFC 9110 §13): a strong ``ETag``; ``If-None-Match``
  with weak comparison (lists, ``W/``, ``*``) answers 304; ``If-Modified-Since``
  is honoured where ``Last-Modified`` is sent and ``If-None-Match`` is absent.
- **Single-flight builds**: anonymous readers that miss one key together share
  one build (after a publish every reader misses at once).
- **Invalidation by what changed**: an entry records the generations of its
  domains (``service.core.changes``) read *before* its build, so it is never
  labelled newer than its data, and is served only while they are unchanged —
  at once after a commit in this process, within :data:`POLL_S` of another
  process's (one small query; DESIGN §4 allows 2 seconds; the clock is
  ``generations.py``) — and younger than
  its resource's ``max_age_s``. A resource may add its own check
  (``still_valid``: the affiliation's signing key) and an entry its own expiry
  (a credential near its end).
- **Answering before routing**: ``public_reads.PublicReads``, one ASGI layer inside the
  edge (so rate limits, logs, metrics and security headers still apply),
  answers a request whose exact signature — path, query string, ``Accept``,
  ``Accept-Language`` — a route has answered from a still-valid entry before.
  The signature maps to the entry's *key*, so a thousand spellings of one
  header share one entry (the memo of signatures is bounded too). Anything
  else goes on to the route, which computes the key, builds on a miss, and
  teaches the layer the signature.

All state is touched on the event loop thread only; builds run in the thread
pool and their results are stored back on the loop.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Scope

from service.core import changes
from service.web.generations import POLL_S as POLL_S
from service.web.generations import Generations as Generations
from service.web.http import none_match
from service.web.representation import ENTRY_OVERHEAD as ENTRY_OVERHEAD
from service.web.representation import Built as Built
from service.web.representation import Entry as Entry
from service.web.representation import EntryResponse as EntryResponse
from service.web.representation import Key as Key
from service.web.representation import Resource as Resource
from service.web.representation import Streamed as Streamed

#: Default bounds of one application's cache.
MAX_ENTRIES = 50_000
MAX_BYTES = 64 * 1024 * 1024
#: Most request signatures remembered for answering before routing.
MAX_SIGNATURES = 16_384

Signature = tuple[str, bytes, bytes | None, bytes | None]


class PublicCache:
    """One application's public representations (see the module docstring)."""

    def __init__(self, engine: Engine, *, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.clock = Generations(engine)
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Key, Entry] = OrderedDict()
        self._bytes = 0
        #: key -> (the key whose entry answers it, that entry's stamp): language fallbacks.
        self._aliases: dict[Key, tuple[Key, tuple[int, ...]]] = {}
        #: request signature -> (key, the stamp of the entry it was answered with).
        self._signatures: dict[Signature, tuple[Key, tuple[int, ...]]] = {}
        self._flights: dict[tuple[Key, tuple[int, ...]], asyncio.Future[Entry]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """Bytes counted for the stored entries (bodies plus a fixed overhead each)."""
        return self._bytes

    # --- reading ----------------------------------------------------------------------------

    def _valid(self, entry: Entry) -> bool:
        clock = self.clock
        # The generations are compared only when anything changed since the last validation.
        local = changes.local_version()
        if entry.seen_clock != clock.version or entry.seen_local != local:
            if entry.stamp != clock.stamp(entry.resource.domains):
                return False
            entry.seen_clock, entry.seen_local = clock.version, local
        now = time.time()
        if now >= entry.expires_at or now - entry.built_at >= entry.resource.max_age_s:
            return False
        check = entry.resource.still_valid
        return check is None or check(entry)

    def get(self, key: Key) -> Entry | None:
        """The still-valid entry answering ``key`` (following a fallback alias), or ``None``.

        Assumes the generations are fresh enough (:meth:`Generations.refresh`).
        """
        entry = self._entries.get(key)
        if entry is None:
            alias = self._aliases.get(key)
            if alias is None:
                return None
            entry = self._entries.get(alias[0])
            if entry is None or entry.stamp != alias[1]:
                return None
        if not self._valid(entry):
            return None
        self._entries.move_to_end(entry.key)
        return entry

    def stored(self, key: Key) -> Entry | None:
        """The entry stored under exactly ``key``, valid or not (tests, diagnostics)."""
        return self._entries.get(key)

    def recall(self, known: tuple[Key, tuple[int, ...]]) -> Entry | None:
        """The still-valid entry a route answered a request signature with; ``known`` is what
        the signature maps to: ``(key, the stamp of the entry it was answered with)``."""
        key, stamp = known
        entry = self._entries.get(key)
        if entry is None or entry.stamp != stamp or not self._valid(entry):
            return None
        self._entries.move_to_end(key)
        return entry

    # --- writing ----------------------------------------------------------------------------

    def _store(self, entry: Entry) -> None:
        old = self._entries.pop(entry.key, None)
        if old is not None:
            self._bytes -= old.size
        if entry.size > self.max_bytes:
            return
        self._entries[entry.key] = entry
        self._bytes += entry.size
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.size

    def _remember(self, signature: Signature, entry: Entry) -> None:
        if len(self._signatures) >= MAX_SIGNATURES:
            self._signatures.clear()
        self._signatures[signature] = (entry.key, entry.stamp)

    def clear(self) -> None:
        """Drop every entry, alias and remembered signature."""
        self._entries.clear()
        self._aliases.clear()
        self._signatures.clear()
        self._bytes = 0

    # --- answering --------------------------------------------------------------------------

    async def fetch(
        self,
        resource: Resource,
        key: Key,
        build: Callable[[Entry | None], Built | Entry],
        *,
        shared: bool = True,
    ) -> Entry:
        """The entry for ``key``: a valid stored one, else ``build(previous)`` run in the thread pool.

        ``previous`` is the stale entry under ``key`` (or ``None``); ``build`` may
        return it unchanged to have it re-stamped instead of rendered again (the
        affiliation's credential is re-signed only when the school changed).
        ``shared`` builds are joined by concurrent callers of the same key and
        stamp; pass ``False`` when the caller may see something the public does not.
        An entry whose ``Built.storable`` is false is returned but not kept; one built
        under another key (``Built.key``) is found from ``key`` through an alias.
        """
        await self.clock.refresh()
        entry = self.get(key)
        if entry is not None:
            return entry
        stamp = self.clock.stamp(resource.domains)
        if not shared:
            return self._keep(await self._build(resource, key, build, stamp), key)
        flight = (key, stamp)
        running = self._flights.get(flight)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        self._flights[flight] = future
        try:
            entry = self._keep(await self._build(resource, key, build, stamp), key)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it; none waiting is no error
            raise
        else:
            future.set_result(entry)
            return entry
        finally:
            del self._flights[flight]

    async def _build(
        self,
        resource: Resource,
        key: Key,
        build: Callable[[Entry | None], Built | Entry],
        stamp: tuple[int, ...],
    ) -> Entry:
        previous = self._entries.get(key)
        result = await run_in_threadpool(build, previous)
        if isinstance(result, Entry):
            return result.restamped(stamp)
        if result.stamp is not None:
            stamp = result.stamp
        if result.resource is not None and result.resource is not resource:
            stamp = narrowed(stamp, resource.domains, result.resource.domains)
            resource = result.resource
        return Entry(resource, result.key if result.key is not None else key, result, stamp)

    def _keep(self, entry: Entry, key: Key) -> Entry:
        # -1 in a stamp: a local commit of a domain it depends on was under way while it was
        # read; it answers this request but is never kept.
        if entry.storable and -1 not in entry.stamp:
            self._store(entry)
            if entry.key != key:
                self.alias(key, entry)
        return entry

    def alias(self, key: Key, entry: Entry) -> None:
        """Answer ``key`` with ``entry`` (stored under another key) while the entry is valid."""
        if len(self._aliases) >= MAX_SIGNATURES:
            self._aliases.clear()
        self._aliases[key] = (entry.key, entry.stamp)

    async def serve(
        self,
        request: Request,
        resource: Resource,
        key: Key,
        build: Callable[[Entry | None], Built | Entry],
    ) -> Response:
        """Answer ``request`` from the entry for ``key`` (fetched or built), conditionally.

        Requests with ``Authorization`` build on their own for ``anonymous_only``
        resources, and never share a build. The request's signature is remembered,
        so the next identical request is answered before routing.
        """
        anonymous = b"authorization" not in _header_names(request.scope)
        if resource.anonymous_only and not anonymous:
            entry = await self._uncached(resource, key, build)
        else:
            entry = await self.fetch(resource, key, build, shared=anonymous)
            if entry.storable and -1 not in entry.stamp:
                self._remember(signature_of(request.scope), entry)
        headers = request.headers
        return EntryResponse(
            entry,
            not_modified=entry.not_modified(headers.get("if-none-match"), headers.get("if-modified-since")),
        )

    async def serve_streamed(
        self,
        request: Request,
        resource: Resource,
        key: Key,
        open_stream: Callable[[], Streamed],
        *,
        keep_up_to: int | None = None,
    ) -> Response:
        """Answer ``request`` from a valid entry for ``key``, else by streaming ``open_stream()``.

        For representations too large to build in memory (the snapshot of a large registry):
        the chunks go to the client as they are read (chunked transfer), and only a body of at
        most ``keep_up_to`` bytes (default: a quarter of the cache) is kept as an entry once
        it was read to its end. A matching ``If-None-Match`` is answered 304 before any body
        is read. Streams are not shared between concurrent readers.
        """
        await self.clock.refresh()
        signature = signature_of(request.scope)
        entry = self.get(key)
        headers = request.headers
        if entry is not None:
            self._remember(signature, entry)
            return EntryResponse(
                entry,
                not_modified=entry.not_modified(
                    headers.get("if-none-match"), headers.get("if-modified-since")
                ),
            )
        stamp = self.clock.stamp(resource.domains)
        stream = await run_in_threadpool(open_stream)
        if none_match(headers.get("if-none-match"), stream.headers["ETag"]):
            await run_in_threadpool(stream.close)
            return Response(status_code=304, headers=stream.headers)
        limit = self.max_bytes // 4 if keep_up_to is None else keep_up_to
        loop = asyncio.get_running_loop()

        def tee() -> Iterator[bytes]:
            kept: list[bytes] | None = []
            size = 0
            try:
                for chunk in stream.chunks:
                    if kept is not None:
                        size += len(chunk)
                        if size <= limit:
                            kept.append(chunk)
                        else:
                            kept = None  # too large to keep: stream it, keep nothing
                    yield chunk
            finally:
                stream.close()
            # Reached only when every chunk was read (an early close raises above).
            if kept is not None:
                built = Built(
                    body=b"".join(kept),
                    media_type=stream.media_type,
                    headers=stream.headers,
                    expires_at=stream.expires_at,
                )
                loop.call_soon_threadsafe(self._keep_read, Entry(resource, key, built, stamp), signature)

        return StreamingResponse(tee(), headers=stream.headers, media_type=stream.media_type)

    def _keep_read(self, entry: Entry, signature: Signature) -> None:
        kept = self._keep(entry, entry.key)
        if kept.storable and -1 not in kept.stamp and self._entries.get(kept.key) is kept:
            self._remember(signature, kept)

    async def _uncached(
        self, resource: Resource, key: Key, build: Callable[[Entry | None], Built | Entry]
    ) -> Entry:
        result = await run_in_threadpool(build, None)
        if isinstance(result, Entry):
            return result
        built = Built(**{**result.__dict__, "storable": False})
        return Entry(resource, key, built, ())


def narrowed(stamp: tuple[int, ...], domains: tuple[str, ...], fewer: tuple[str, ...]) -> tuple[int, ...]:
    """The part of ``stamp`` (taken for ``domains``) that stamps ``fewer`` (a subset of them)."""
    out: list[int] = []
    for domain in fewer:
        at = 2 * domains.index(domain)  # ValueError: not a subset, a programming error
        out += stamp[at : at + 2]
    return tuple(out)


def _header_names(scope: Scope) -> frozenset[bytes]:
    return frozenset(name for name, _ in scope["headers"])


def signature_of(scope: Scope) -> Signature:
    """``(path, query string, Accept, Accept-Language)`` of a request, as sent."""
    accept = language = None
    for name, value in scope["headers"]:
        if name == b"accept":
            accept = value
        elif name == b"accept-language":
            language = value
    return (scope["path"], scope.get("query_string", b""), accept, language)


def cache_of(app_state: Any) -> PublicCache:
    """The application's cache (``create_app`` makes it: ``app.state.public_cache``)."""
    cache: PublicCache = app_state.public_cache
    return cache
