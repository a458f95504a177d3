"""One HTTP attempt of a webhook, and the small HTTP clients that make them.

An attempt POSTs the message's exact bytes with the Standard Webhooks headers
(fresh ``webhook-timestamp`` and signatures per attempt) and classifies the
answer:

- ``2xx`` within the deadline — success;
- ``410 Gone`` — the receiver asks us to stop: the endpoint is disabled;
- anything else (3xx included: redirects are never followed), a timeout or a
  connection error — failure, retried on the schedule; ``Retry-After`` on 429
  and 503 is passed back to the scheduler.

The deadline (``IMI_WEBHOOK_TIMEOUT_S``) covers the whole attempt — connect,
TLS, sending, headers and body — through ``asyncio.timeout``; at most 64 KiB
of a response is read and 1 KiB kept, so a receiver that stalls or trickles
holds only its own attempt.

Clients: several small ``httpx.AsyncClient`` s (about 5 connections each; one
large pool rescans every connection per request, encode/httpx#3215, see
PERFORMANCE.md), each on a :class:`~service.webhooks.urlguard.GuardedBackend`,
so every new connection goes to an address checked at connect time.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import httpcore
import httpx

from service.webhooks import signing, urlguard

#: Bytes of a response body read at most (the rest is never received).
READ_LIMIT = 64 * 1024
EXCERPT_BYTES = 1024
USER_AGENT = "IMI-Standards-API-Webhooks/1.0 (+https://www.standardwebhooks.com)"


@dataclass
class Outcome:
    """The result of one attempt.

    ``kind`` is ``success``, ``gone`` or ``failure``; ``status_code`` is
    ``None`` when no response arrived; ``retry_after`` (seconds) only for a
    429/503 that sent one; ``error`` is a short reason for failures.
    """

    kind: str
    status_code: int | None
    duration_ms: int
    excerpt: str | None
    error: str | None
    retry_after: float | None = None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` value (delay-seconds or an HTTP-date, RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool built on :class:`urlguard.GuardedBackend`."""

    def __init__(self, *, allowed: Iterable[str], connections: int, ssl_context: object) -> None:
        super().__init__(verify=False, trust_env=False)
        # httpx 0.28 does not expose httpcore's ``network_backend``; replace the pool it built.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,  # type: ignore[arg-type]
            max_connections=connections,
            max_keepalive_connections=connections,
            keepalive_expiry=30.0,
            network_backend=urlguard.GuardedBackend(allowed),
        )


class ClientSet:
    """``count`` small clients of ``connections`` connections each; :meth:`acquire` hands out
    the endpoint's "home" client while it has room, else the least busy one, so the set never
    queues inside a pool when callers keep at most ``capacity`` attempts in flight."""

    def __init__(self, *, allowed: Iterable[str], count: int, connections: int, timeout_s: float) -> None:
        ssl_context = httpx.create_ssl_context(trust_env=False)
        self.connections = connections
        self.clients = [
            httpx.AsyncClient(
                transport=_GuardedTransport(
                    allowed=allowed, connections=connections, ssl_context=ssl_context
                ),
                timeout=httpx.Timeout(timeout_s),
                follow_redirects=False,
                trust_env=False,
                headers={"user-agent": USER_AGENT},
            )
            for _ in range(count)
        ]
        self.busy = [0] * count

    @property
    def capacity(self) -> int:
        return len(self.clients) * self.connections

    def acquire(self, key: str) -> int:
        """Index of the client to use for ``key`` (an endpoint id); pair with :meth:`release`."""
        home = hash(key) % len(self.clients)
        index = (
            home
            if self.busy[home] < self.connections
            else min(range(len(self.busy)), key=self.busy.__getitem__)
        )
        self.busy[index] += 1
        return index

    def release(self, index: int) -> None:
        self.busy[index] -= 1

    async def aclose(self) -> None:
        await asyncio.gather(*(c.aclose() for c in self.clients), return_exceptions=True)


def _error_text(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    if isinstance(exc, httpx.ConnectError) and "address refused" in text:
        return text[:500]
    return f"{exc.__class__.__name__}: {text}"[:500]


async def attempt(
    client: httpx.AsyncClient,
    *,
    url: str,
    msg_id: str,
    body: bytes,
    keys: Iterable[bytes],
    timeout_s: float,
    allowed: Iterable[str],
    extra_headers: Mapping[str, str] | None = None,
) -> Outcome:
    """POST ``body`` to ``url`` once, signed now; never raises (errors become a failure ``Outcome``).

    The host is checked against ``allowed`` before sending (and again by the
    connection backend for any new connection).
    """
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    headers = dict(signing.headers(keys, msg_id, int(time.time()), body))
    if extra_headers:
        headers.update(extra_headers)
    try:
        async with asyncio.timeout(timeout_s):
            parsed = urlguard.parse_url(url)
            port = parsed.port or (443 if parsed.scheme == "https" else 80)
            await urlguard.resolve_checked(parsed.host, port, allowed)
            async with client.stream("POST", url, content=body, headers=headers) as response:
                received = bytearray()
                async for chunk in response.aiter_raw():
                    received += chunk
                    if len(received) >= READ_LIMIT:
                        break
                status = response.status_code
                retry_after_header = response.headers.get("retry-after")
    except urlguard.TargetRefused as exc:
        return Outcome("failure", None, elapsed(), None, f"address refused: {exc.reason}"[:500])
    except TimeoutError:
        return Outcome("failure", None, elapsed(), None, f"no complete answer within {timeout_s:g} s")
    except (httpx.HTTPError, httpcore.NetworkError, OSError) as exc:
        return Outcome("failure", None, elapsed(), None, _error_text(exc))
    excerpt = bytes(received[:EXCERPT_BYTES]).decode("utf-8", errors="replace")
    duration = elapsed()
    if 200 <= status < 300:
        return Outcome("success", status, duration, excerpt, None)
    if status == 410:
        return Outcome("gone", status, duration, excerpt, "410 Gone: the receiver asked to stop")
    retry_after = parse_retry_after(retry_after_header) if status in (429, 503) else None
    if 300 <= status < 400:
        error = f"HTTP {status}: redirects are not followed; register the final URL"
    else:
        error = f"HTTP {status}"
    return Outcome("failure", status, duration, excerpt, error, retry_after)
