"""One HTTP attempt of a webhook: send, classify the answer.

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

The bytes go out through :class:`service.webhooks.sender.Sender` (keep-alive
HTTP/1.1 connections; why not httpx there is in its docstring): the host is
resolved and checked at every attempt, and a new connection goes only to the
addresses that were checked.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import httpx

from service.webhooks import signing, urlguard
from service.webhooks.sender import Sender, SendError

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


def _text(raw: str) -> str:
    # A receiver controls these bytes; PostgreSQL text cannot hold U+0000 (the attempt could not
    # be recorded, and every result batched with it would wait forever).
    return raw.replace("\x00", "\ufffd")


def _error_text(exc: BaseException) -> str:
    text = _text(str(exc) or exc.__class__.__name__)
    if isinstance(exc, SendError):
        return text[:500]
    return f"{exc.__class__.__name__}: {text}"[:500]


@functools.lru_cache(maxsize=4096)
def _parse(url: str) -> httpx.URL:
    # Endpoints are few and their URLs fixed: parse (and normalise) each once.
    return urlguard.parse_url(url)


async def attempt(
    sender: Sender,
    *,
    url: str,
    msg_id: str,
    body: bytes,
    keys: Iterable[signing.SigningKey],
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

    headers = [("user-agent", USER_AGENT), *signing.headers(keys, msg_id, int(time.time()), body).items()]
    if extra_headers:
        headers += extra_headers.items()
    try:
        async with asyncio.timeout(timeout_s):
            parsed = _parse(url)
            port = parsed.port or (443 if parsed.scheme == "https" else 80)
            addresses = await urlguard.resolve_checked(parsed.host, port, allowed)
            answer = await sender.post(
                parsed,
                addresses=[str(a) for a in addresses],
                headers=[(k, v) for k, v in headers if k != "content-length"],
                body=body,
                read_limit=READ_LIMIT,
            )
    except urlguard.TargetRefused as exc:
        return Outcome("failure", None, elapsed(), None, f"address refused: {exc.reason}"[:500])
    except TimeoutError:
        return Outcome("failure", None, elapsed(), None, f"no complete answer within {timeout_s:g} s")
    except (SendError, OSError) as exc:
        return Outcome("failure", None, elapsed(), None, _error_text(exc))
    status, received, retry_after_header = answer.status, answer.body, answer.retry_after
    excerpt = _text(bytes(received[:EXCERPT_BYTES]).decode("utf-8", errors="replace"))
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
