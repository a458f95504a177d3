"""Per-client-address rate limits (DESIGN §4) on the ``limits`` library's storage.

Policies:
- ``strict`` (``IMI_RATE_LIMIT_STRICT``, default ``120/minute``): ``/v1/verify``
  and the token endpoint ``/v1/oauth/token``, each path with its own budget —
  the fuzzy matcher and argon2 are the expensive paths.
- ``reads`` (``IMI_RATE_LIMIT_READS``, default ``600/minute``): every other
  request, authenticated writes included. A token is not checked before
  limiting (that would make signature verification the attack surface, and a
  forged ``Authorization`` header would otherwise bypass the limit).
- ``/healthz`` is exempt, so a liveness probe never fails because of traffic.
  Preflights are answered by :mod:`service.web.edge` before they get here.

Counting: fixed windows aligned to the clock (window ``n`` covers
``[n·w, (n+1)·w)`` seconds of Unix time), one counter per policy, address and
window, incremented with the ``limits`` storage's atomic ``incr``. Every
replica computes the same window and reset from its own clock, so with Redis
one round trip per request is all it costs. ``memory://`` keeps counters in the
process (one replica; :class:`MemoryWindows`); ``redis://…`` shares them
between replicas (``limits``' asynchronous Redis storage). If Redis
cannot be reached the request is let through (failing open keeps the API up;
a warning is logged at most every 30 s).

Headers (draft-ietf-httpapi-ratelimit-headers, the ``RateLimit-Limit`` /
``-Remaining`` / ``-Reset`` form with ``RateLimit-Policy``) go on every limited
response; a refused request gets a 429 problem with ``Retry-After`` too.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse
from limits.storage import storage_from_string

from service.core.errors import problem_body

log = logging.getLogger("service.web.ratelimit")

STRICT_PATHS = frozenset({"/v1/verify", "/v1/oauth/token"})
EXEMPT_PATHS = frozenset({"/healthz"})
REDIS_TIMEOUT_S = 0.5
_WARN_EVERY_S = 30.0


@dataclass(frozen=True)
class Policy:
    """A named limit: ``amount`` requests per ``window`` seconds, counted in ``bucket``."""

    name: str
    bucket: str
    amount: int
    window: int
    limit_header: bytes
    policy_header: bytes

    @classmethod
    def from_setting(cls, name: str, value: str, bucket: str | None = None) -> Policy:
        """Parse ``limits`` notation (``600/minute``, ``10 per second``)."""
        item: RateLimitItem = parse(value)
        window = int(item.get_expiry())
        return cls(
            name=name,
            bucket=bucket or name,
            amount=int(item.amount),
            window=window,
            limit_header=str(item.amount).encode(),
            policy_header=f"{item.amount};w={window}".encode(),
        )


class MemoryWindows:
    """Window counters of one process (``memory://``), with the ``incr`` of ``limits`` storage.

    ``limits``' own ``MemoryStorage`` checks (and every 10 ms restarts) an expiry
    timer thread on each hit; measured in this stack that cost ~5–10 µs per
    request, most of the limiter's budget. Keys here carry their window, so
    expired ones are simply swept once a second on the request path.
    """

    SWEEP_EVERY_S = 1.0

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.expires: dict[str, float] = {}
        self._next_sweep = 0.0

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """Add ``amount`` to ``key`` (created to live ``expiry`` seconds); the new value."""
        now = time.monotonic()
        if now >= self._next_sweep:
            self._sweep(now)
        count = self.counts.get(key)
        if count is None:
            self.expires[key] = now + expiry
            count = 0
        count += amount
        self.counts[key] = count
        return count

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + self.SWEEP_EVERY_S
        expired = [k for k, at in self.expires.items() if at <= now]
        for key in expired:
            del self.expires[key]
            self.counts.pop(key, None)


class Counter:
    """Increment a window counter in memory, or in Redis through ``limits`` storage."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        if uri.startswith(("redis://", "rediss://", "redis+unix://")):
            uri = "async+" + uri
        self.is_async = uri.startswith("async+")
        self._storage_uri = uri
        #: The synchronous storage (``memory://``), or ``None`` when the storage is async.
        self.sync_storage: Any = None
        if uri.startswith("memory://"):
            self.sync_storage = MemoryWindows()
        elif not self.is_async:
            self.sync_storage = storage_from_string(uri)
        self._async: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_warning = 0.0

    def _async_storage(self) -> Any:
        # redis.asyncio connections belong to the loop that opened them.
        loop = asyncio.get_running_loop()
        if self._async is None or self._loop is not loop:
            options: dict[str, Any] = {}
            if "redis" in self._storage_uri:
                options = {
                    "implementation": "redispy",
                    "key_prefix": "imi",
                    "socket_timeout": REDIS_TIMEOUT_S,
                    "socket_connect_timeout": REDIS_TIMEOUT_S,
                }
            self._async = storage_from_string(self._storage_uri, **options)
            self._loop = loop
        return self._async

    async def incr(self, key: str, expiry: int) -> int | None:
        """The counter's value after adding one; ``None`` when the storage failed."""
        if self.sync_storage is not None:
            return int(self.sync_storage.incr(key, expiry))
        try:
            return int(await self._async_storage().incr(key, expiry))
        except Exception as exc:  # noqa: BLE001 - fail open: the API stays up without Redis
            now = time.monotonic()
            if now - self._last_warning > _WARN_EVERY_S:
                self._last_warning = now
                log.warning("rate-limit storage unavailable, not limiting: %s", exc.__class__.__name__)
            return None


class RateLimiter:
    """The policies and the counter; :class:`service.web.edge.Edge` asks it per request.

    ``reads``/``strict`` in ``limits`` notation; ``storage`` is ``memory://`` or
    ``redis://…`` (``IMI_RATE_LIMIT_STORAGE``).
    """

    def __init__(
        self,
        *,
        reads: str,
        strict: str,
        storage: str = "memory://",
        strict_paths: Iterable[str] = STRICT_PATHS,
        exempt_paths: Iterable[str] = EXEMPT_PATHS,
    ) -> None:
        self.reads = Policy.from_setting("reads", reads)
        self.counter = Counter(storage)
        # Each strict path has its own budget: verifying names does not use up token requests.
        self._policies: dict[str, Policy | None] = {
            p: Policy.from_setting("strict", strict, bucket=f"strict{p}") for p in strict_paths
        }
        self._policies.update({p: None for p in exempt_paths})

    def policy_for(self, path: str) -> Policy | None:
        """The policy that limits ``path`` (``None``: not limited)."""
        return self._policies.get(path, self.reads)

    @property
    def is_sync(self) -> bool:
        """True for ``memory://``: :meth:`hit_now` answers without I/O (no coroutine needed)."""
        return self.counter.sync_storage is not None

    def hit_now(self, policy: Policy, address: str) -> tuple[int, int]:
        """:meth:`hit` for an in-process counter (``is_sync``)."""
        now = time.time()
        window = int(now // policy.window)
        count = self.counter.sync_storage.incr(f"{policy.bucket}/{address}/{window}", policy.window)
        return count, math.ceil((window + 1) * policy.window - now)

    async def hit(self, policy: Policy, address: str) -> tuple[int, int] | None:
        """Count one request from ``address``: ``(count in this window, seconds to its end)``,
        or ``None`` when the storage is unavailable (the request is let through)."""
        if self.counter.sync_storage is not None:
            return self.hit_now(policy, address)
        now = time.time()
        window = int(now // policy.window)
        count = await self.counter.incr(f"{policy.bucket}/{address}/{window}", policy.window)
        if count is None:
            return None
        return count, math.ceil((window + 1) * policy.window - now)

    @staticmethod
    def headers(policy: Policy, count: int, reset: int) -> list[tuple[bytes, bytes]]:
        """The ``RateLimit-*`` headers of an allowed response."""
        return [
            (b"ratelimit-limit", policy.limit_header),
            (b"ratelimit-remaining", str(policy.amount - count).encode()),
            (b"ratelimit-reset", str(reset).encode()),
            (b"ratelimit-policy", policy.policy_header),
        ]

    @staticmethod
    def refusal(policy: Policy, reset: int) -> tuple[list[tuple[bytes, bytes]], bytes]:
        """Headers and body of the 429 problem (``Retry-After`` = the window's end)."""
        body = problem_body(
            429,
            "Too many requests",
            f"More than {policy.amount} requests in {policy.window} s from this address; retry in {reset} s.",
            "rate-limited",
            {"limit": policy.amount, "window_s": policy.window, "policy": policy.name},
        )
        reset_b = str(reset).encode()
        headers = [
            (b"content-type", b"application/problem+json"),
            (b"cache-control", b"no-store"),
            (b"retry-after", reset_b),
            (b"ratelimit-limit", policy.limit_header),
            (b"ratelimit-remaining", b"0"),
            (b"ratelimit-reset", reset_b),
            (b"ratelimit-policy", policy.policy_header),
            (b"content-length", str(len(body)).encode()),
        ]
        return headers, body
