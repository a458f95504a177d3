"""Public search pages (``GET /v1/schools``) kept serialised in each process.

Sites call the registry search as people type, with the same few queries over
and over; a page is therefore built once and served as bytes until something
public changes:

- :class:`SearchCache` (one per application) maps a page's key — its
  normalised filters (:class:`~service.registry.search.Filters`), cursor and
  limit — to its body, strong ETag and next cursor, in LRU order, bounded in
  entries and bytes.
- A page is served while the :class:`~service.registry.changes.ChangeClock`
  stamp it was built under is unchanged: at once after this process commits an
  event (read-your-writes on this replica), within ``POLL_S`` (0.5 s) of another
  process's commit. Erasing contact details writes no event but touches the
  public ``updated_at``; pages are therefore also rebuilt after ``MAX_AGE_S``,
  the ``max-age`` every client may already cache them for.
- Only anonymous requests use it: a request with ``Authorization`` (a
  steward sees delisted schools) always runs the query.

The raw query string of every page answered is remembered with its key and
its ``Link`` parameters, so :class:`~service.registry.fastpath.CachedSearchPages`
can answer the same request again before routing. A key is built from the
stamp read *before* the query runs, so a page is never labelled newer than
its data.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from service.registry.changes import ChangeClock, Stamp
from service.registry.search import Filters
from service.web.http import CACHE_SHORT, make_etag, next_link

#: The list's path (its ``Link`` header repeats it).
PATH = "/v1/schools"
#: Most pages kept, and most bytes of page bodies kept.
MAX_ENTRIES = 4096
MAX_BYTES = 64 * 1024 * 1024
#: Pages older than this are rebuilt even when no event was written (seconds).
MAX_AGE_S = 60.0
#: Most raw query strings remembered for the fast path.
MAX_QUERIES = 8192

PageKey = tuple[Filters, str | None, int]
#: The next page's query without its cursor, in ``Link`` order.
LinkParams = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Page:
    """A serialised public page: ``body`` (UTF-8 JSON), its strong ``etag`` and ``next_cursor``."""

    stamp: Stamp
    built_at: float
    body: bytes
    etag: str
    next_cursor: str | None


def page_headers(page: Page, *, base_url: str, link_params: LinkParams) -> dict[str, str]:
    """The response headers of a public page (``Content-Type`` and ``Content-Length`` aside).

    The same as :func:`service.web.http.page_response` gives an uncached page.
    """
    headers = {"ETag": page.etag, "Cache-Control": CACHE_SHORT, "Vary": "Accept, Accept-Encoding"}
    if page.next_cursor:
        headers["Link"] = next_link(base_url, PATH, [*link_params, ("cursor", page.next_cursor)])
    return headers


class SearchCache:
    """Serialised public search pages of one application (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_entries: int = MAX_ENTRIES,
        max_bytes: int = MAX_BYTES,
        max_age_s: float = MAX_AGE_S,
    ) -> None:
        self.clock = ChangeClock(engine)
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self._pages: OrderedDict[PageKey, Page] = OrderedDict()
        self._bytes = 0
        self._queries: dict[bytes, tuple[PageKey, LinkParams]] = {}
        self._lock = threading.Lock()
        self._building: dict[PageKey, threading.Lock] = {}

    def __len__(self) -> int:
        return len(self._pages)

    def lookup(self, key: PageKey, stamp: Stamp | None) -> Page | None:
        """The page for ``key`` when it is still valid under ``stamp``; else ``None``. No I/O."""
        page = self._pages.get(key)
        if (
            page is None
            or stamp is None
            or page.stamp != stamp
            or time.monotonic() - page.built_at >= self.max_age_s
        ):
            return None
        with self._lock:
            if key in self._pages:
                self._pages.move_to_end(key)
        return page

    def get(self, key: PageKey, build: Callable[[], tuple[bytes, str | None]]) -> Page:
        """The valid page for ``key``, built by ``build() -> (body, next_cursor)`` when missing
        (blocking: call from a worker thread). Concurrent misses of one key build it once."""
        stamp = self.clock.current()
        page = self.lookup(key, stamp)
        if page is not None:
            return page
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        with building:
            stamp = self.clock.current()
            page = self.lookup(key, stamp)
            if page is None:
                body, next_cursor = build()
                page = Page(
                    stamp=stamp,
                    built_at=time.monotonic(),
                    body=body,
                    etag=make_etag(body),
                    next_cursor=next_cursor,
                )
                self._store(key, page)
        with self._lock:
            if self._building.get(key) is building and not building.locked():
                del self._building[key]
        return page

    def _store(self, key: PageKey, page: Page) -> None:
        with self._lock:
            old = self._pages.pop(key, None)
            if old is not None:
                self._bytes -= len(old.body)
            if len(page.body) > self.max_bytes:
                return
            self._pages[key] = page
            self._bytes += len(page.body)
            while len(self._pages) > self.max_entries or self._bytes > self.max_bytes:
                _, evicted = self._pages.popitem(last=False)
                self._bytes -= len(evicted.body)

    def remember(self, query_string: bytes, key: PageKey, link_params: LinkParams) -> None:
        """Note that ``query_string`` asks for the page ``key`` (for the fast path)."""
        if self._queries.get(query_string, (None, None))[0] == key:
            return
        with self._lock:
            if len(self._queries) >= MAX_QUERIES:
                self._queries.clear()
            self._queries[query_string] = (key, link_params)

    def recall(self, query_string: bytes) -> tuple[PageKey, LinkParams] | None:
        """The key and ``Link`` parameters a remembered query string asks for."""
        return self._queries.get(query_string)


def cache_for(app_state: Any) -> SearchCache:
    """The application's cache (created on first use)."""
    cache = getattr(app_state, "imi_search_cache", None)
    if cache is None:
        cache = SearchCache(app_state.engine)
        app_state.imi_search_cache = cache
    return cache
