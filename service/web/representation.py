"""What the public-representation cache (``cache.py``) stores and what routes give it.

A route declares a :class:`Resource` (a kind of public read), and its ``build``
returns a :class:`Built` (one representation and its headers) or, for a body too
large to build in memory, opens a :class:`Streamed`. The cache keeps each as an
:class:`Entry`: the bytes with their 200 and 304 header lists prepared once, so a
hit is two ``send`` calls; :class:`EntryResponse` answers a route from one.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from service.web.http import last_modified_value, none_match, unmodified_since

#: Bytes counted per entry beyond its body (prepared headers, bookkeeping).
ENTRY_OVERHEAD = 512

Key = Hashable
Header = tuple[bytes, bytes]


@dataclass(eq=False)
class Resource:
    """A kind of public read.

    ``route`` is its route template (metrics and logs count hits under it);
    ``domains`` the change domains its answer depends on; ``max_age_s`` how long
    (seconds) an entry may be served at most, whatever changed; with
    ``anonymous_only`` a request carrying ``Authorization`` is never answered from
    the cache (a steward sees more); ``still_valid(entry)`` a last, cheap check.
    """

    route: str
    domains: tuple[str, ...]
    max_age_s: float = 3600.0
    anonymous_only: bool = False
    still_valid: Callable[[Entry], bool] | None = field(default=None, compare=False)


@dataclass
class Built:
    """What a route's ``build`` returns: one representation and its headers.

    ``headers`` are the response headers but ``Content-Type``/``Content-Length``
    (``ETag`` required). ``last_modified`` (aware) is sent as ``Last-Modified``
    and enables ``If-Modified-Since``. ``storable=False`` answers without keeping
    it (a draft, a private answer). ``expires_at`` (Unix seconds) ends the entry
    early; ``meta`` is the route's own bookkeeping (e.g. the revision it rendered);
    ``key`` stores it under another key than the one asked for (``?lang=fr`` served in
    ``en`` is stored once, as ``en``, and found from ``fr`` through an alias).
    """

    body: bytes
    media_type: str
    headers: dict[str, str]
    last_modified: dt.datetime | None = None
    storable: bool = True
    expires_at: float | None = None
    meta: Any = None
    #: Store under this key instead of the one asked for (a language fallback).
    key: Key | None = None
    #: The stamp of the data it was rendered from, when that is older than the build (a
    #: variant of another entry: the same page with its own ``Link``).
    stamp: tuple[int, ...] | None = None
    #: The resource it belongs to when that depends on fewer domains than the one asked for
    #: (a full page of the change feed no longer changes with new events).
    resource: Resource | None = None


def _content_type(media_type: str) -> bytes:
    if media_type.startswith("text/") and "charset" not in media_type:
        return f"{media_type}; charset=utf-8".encode()
    return media_type.encode("latin-1")


class Entry:
    """One stored representation with its prepared 200 and 304 header lists."""

    __slots__ = (
        "resource",
        "key",
        "body",
        "etag",
        "headers",
        "media_type",
        "last_modified",
        "meta",
        "storable",
        "stamp",
        "expires_at",
        "built_at",
        "size",
        "seen_clock",
        "seen_local",
        "headers_200",
        "headers_304",
    )

    def __init__(self, resource: Resource, key: Key, built: Built, stamp: tuple[int, ...]) -> None:
        self.resource = resource
        self.key = key
        self.body = built.body
        headers = dict(built.headers)
        if built.last_modified is not None:
            headers["Last-Modified"] = last_modified_value(built.last_modified)
        self.headers = headers
        self.etag = headers["ETag"]
        self.media_type = built.media_type
        self.last_modified = built.last_modified
        self.meta = built.meta
        self.storable = built.storable
        self.stamp = stamp
        self.built_at = time.time()
        self.expires_at = built.expires_at if built.expires_at is not None else math.inf
        if built.last_modified is not None and built.last_modified.timestamp() > self.built_at:
            # Last-Modified lies ahead (a change given a second of its own) and was sent as
            # now: rebuilt once that time has come, so the header becomes the true one.
            self.expires_at = min(self.expires_at, built.last_modified.timestamp() + 0.001)
        self.size = len(built.body) + ENTRY_OVERHEAD
        #: The clock's and this process's change versions at the last successful validation.
        self.seen_clock = self.seen_local = -1
        self.headers_304: list[Header] = [
            (k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in headers.items()
            if k.lower() not in ("content-type", "content-length")
        ]
        self.headers_200: list[Header] = [
            *self.headers_304,
            (b"content-type", _content_type(built.media_type)),
            (b"content-length", str(len(built.body)).encode()),
        ]

    def restamped(self, stamp: tuple[int, ...], *, meta: Any = None) -> Entry:
        """The same representation, valid under ``stamp`` (a rebuild that found nothing new)."""
        clone = object.__new__(Entry)
        for name in Entry.__slots__:
            setattr(clone, name, getattr(self, name))
        clone.stamp = stamp
        clone.seen_clock = clone.seen_local = -1
        if meta is not None:
            clone.meta = meta
        clone.built_at = time.time()
        return clone

    def not_modified(self, if_none_match: str | None, if_modified_since: str | None) -> bool:
        """Whether the client's copy is current: ``If-None-Match`` (weak comparison) when sent,
        else ``If-Modified-Since`` against ``Last-Modified`` (RFC 9110 §13.1.3)."""
        if if_none_match is not None:
            return if_none_match == self.etag or none_match(if_none_match, self.etag)
        return unmodified_since(if_modified_since, self.last_modified)

    async def send(self, send: Send, *, not_modified: bool, head: bool) -> None:
        """Answer 304 (no body) when ``not_modified``, else 200 (no body for ``HEAD``)."""
        if not_modified:
            await send({"type": "http.response.start", "status": 304, "headers": self.headers_304})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": self.headers_200})
        await send({"type": "http.response.body", "body": b"" if head else self.body})


class EntryResponse(Response):
    """A route's answer from an :class:`Entry` (the same bytes and headers as a hit)."""

    def __init__(self, entry: Entry, *, not_modified: bool) -> None:
        self.entry = entry
        self.is_not_modified = not_modified
        self.status_code = 304 if not_modified else 200
        self.background = None
        self.body = b"" if not_modified else entry.body
        self.raw_headers = list(entry.headers_304 if not_modified else entry.headers_200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.entry.send(send, not_modified=self.is_not_modified, head=False)


@dataclass
class Streamed:
    """What a streamed build opens (blocking): the response ``headers`` but ``Content-Type``/
    ``Content-Length`` (``ETag`` required: it must be known before the first byte, so it is
    derived from the state being read, not from the bytes), the ``media_type``, the body's
    ``chunks``, ``close()``, which ends the read early, and ``expires_at``."""

    headers: dict[str, str]
    media_type: str
    chunks: Iterator[bytes]
    close: Callable[[], None]
    #: When a copy of it stops being true without any write (Unix seconds), or ``None``.
    expires_at: float | None = None
