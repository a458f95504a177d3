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
  Preflights are answered by :mod:`service.edge` before they get here.

Counting: fixed windows aligned to the clock (window ``n`` covers
``[n·w, (n+1)·w)`` seconds of Unix time), one counter per policy, address and
window, incremented with the ``limits`` storage's atomic ``incr``. Every
replica computes the same window and reset from its own clock, so with Redis
one round trip per request is all it costs. ``memory://`` keeps counters in the
process (one replica); ``redis://…`` shares them between replicas. If Redis
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
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import problem_body

log = logging.getLogger("service.ratelimit")

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


class Counter:
    """Increment a window counter in memory or in Redis through ``limits`` storage."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        if uri.startswith(("redis://", "rediss://", "redis+unix://")):
            uri = "async+" + uri
        self.is_async = uri.startswith("async+")
        self._storage_uri = uri
        #: The synchronous storage (``memory://``), or ``None`` when the storage is async.
        self.sync_storage: Any = None if self.is_async else storage_from_string(uri)
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


class RateLimit:
    """Pure ASGI rate limiter keyed by ``scope["client"]`` (set by :class:`service.edge.Edge`)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        reads: str,
        strict: str,
        storage: str = "memory://",
        strict_paths: Iterable[str] = STRICT_PATHS,
        exempt_paths: Iterable[str] = EXEMPT_PATHS,
    ) -> None:
        self.app = app
        self.reads = Policy.from_setting("reads", reads)
        self.counter = Counter(storage)
        # Each strict path has its own budget: verifying names does not use up token requests.
        self._policies: dict[str, Policy | None] = {
            p: Policy.from_setting("strict", strict, bucket=f"strict{p}") for p in strict_paths
        }
        self._policies.update({p: None for p in exempt_paths})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = self._policies.get(scope["path"], self.reads)
        if policy is None:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else "unknown"
        now = time.time()
        window = int(now // policy.window)
        key = f"{policy.bucket}/{address}/{window}"
        sync = self.counter.sync_storage
        if sync is not None:  # memory://: no I/O, no coroutine
            count: int | None = sync.incr(key, policy.window)
        else:
            count = await self.counter.incr(key, policy.window)
        if count is None:
            await self.app(scope, receive, send)
            return
        reset = math.ceil((window + 1) * policy.window - now)
        if count > policy.amount:
            await self._refuse(send, policy, reset)
            return
        headers = [
            (b"ratelimit-limit", policy.limit_header),
            (b"ratelimit-remaining", str(policy.amount - count).encode()),
            (b"ratelimit-reset", str(reset).encode()),
            (b"ratelimit-policy", policy.policy_header),
        ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _refuse(self, send: Send, policy: Policy, reset: int) -> None:
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
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})
