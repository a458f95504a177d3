"""aiohttp's client behind the webhook sender's interface, to measure it against
``service/webhooks/sender.py`` (issue 13): same ``post()``/``aclose()``/``idle_connections()``,
same :class:`~service.webhooks.sender.Answer` and :class:`~service.webhooks.sender.SendError`, so
``attempt.attempt`` classifies its answers exactly as it does the hand-written sender's.

The limits are kept as far as aiohttp's public options allow:

- a new connection goes only to the addresses the caller checked (a resolver that returns them,
  no DNS cache; an IP-literal host is connected to as it is), tried in order (no Happy Eyeballs
  race); TLS SNI, the certificate check and ``Host`` are the URL's name;
- TLS: httpx's CA bundle (or the ``ssl_context`` given), ALPN ``http/1.1``;
- at most ``read_limit`` bytes of body are read, then the connection is dropped;
- headers: aiohttp bounds each line and header field (set here to
  :data:`~service.webhooks.sender.MAX_HEAD_BYTES`) and their number (its default 128), not
  their sum: up to 128 × 64 KiB may be read where the hand-written sender stops at 64 KiB;
- no redirects, no cookies, no proxies from the environment, no decompression, no
  ``Accept``/``Accept-Encoding`` headers; no timeouts of aiohttp's own (the caller's deadline
  cancels the exchange); ``1xx`` answers are skipped by aiohttp, ``101`` refused here;
- idle connections: aiohttp's pool (kept :data:`~service.webhooks.sender.KEEPALIVE_S`, a stale
  kept-alive connection retried once); it has no cap on idle connections per origin or in all.

Run against tests/webhooks/test_sender.py (its ``Sender`` replaced by this class), it passed 18
of the 19 tests on 2026-12-06; the one that fails is the cap on idle connections (aiohttp keeps
every idle connection until its keep-alive timeout).

``python -m bench.aiohttp_sender worker`` runs ``imi-api worker`` with this sender, and
:func:`app_from_env` is the API's uvicorn factory with it (bench/fanout.py, ``BENCH_SENDERS``).
"""

from __future__ import annotations

import contextvars
import functools
import socket
import ssl
from collections.abc import Sequence
from typing import Any

import aiohttp
import httpx
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult

from service.webhooks import sender as own
from service.webhooks.sender import Answer, SendError

#: The addresses ``post()`` was given, for the resolver of the connection it may open.
_checked: contextvars.ContextVar[Sequence[str]] = contextvars.ContextVar("checked_addresses")


class _CheckedResolver(AbstractResolver):
    """Resolves a host to the addresses the caller checked for this exchange, in order."""

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in _checked.get(())
        ]

    async def close(self) -> None:
        pass


@functools.lru_cache(maxsize=4096)
def _yarl(url: str) -> yarl.URL:
    # Endpoints are few and their URLs fixed (attempt.py caches its httpx.URL the same way).
    return yarl.URL(url, encoded=True)


def _head_error(exc: BaseException) -> bool:
    text = str(exc)
    return "Got more than" in text or "Too many headers" in text or "too long" in text.lower()


class AiohttpSender:
    """One ``aiohttp.ClientSession`` per sender (the worker has one per lane). Use from one loop."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:  # built on first https use, as the hand-written sender does
            context = httpx.create_ssl_context(trust_env=False)
            context.set_alpn_protocols(["http/1.1"])
            self._ssl = context
        return self._ssl

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=0,  # the worker's slots bound the exchanges in flight
                limit_per_host=0,
                keepalive_timeout=own.KEEPALIVE_S,
                use_dns_cache=False,
                resolver=_CheckedResolver(),
                happy_eyeballs_delay=None,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, connect=None, sock_read=None, sock_connect=None),
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                trust_env=False,
                skip_auto_headers=("Accept", "Accept-Encoding"),
                max_line_size=own.MAX_HEAD_BYTES,
                max_field_size=own.MAX_HEAD_BYTES,
            )
        return self._session

    def idle_connections(self) -> int:
        """How many connections are kept for reuse now."""
        if self._session is None:
            return 0
        conns: dict[Any, list[Any]] = getattr(self._session.connector, "_conns", {})
        return sum(len(idle) for idle in conns.values())

    async def post(
        self,
        url: httpx.URL,
        *,
        addresses: Sequence[str],
        headers: Sequence[tuple[str, str]],
        body: bytes,
        read_limit: int,
    ) -> Answer:
        """As :meth:`service.webhooks.sender.Sender.post`."""
        session = self._client()
        token = _checked.set(addresses)
        tls = self._ssl_context() if url.scheme == "https" else None
        try:
            async with session.post(
                _yarl(str(url)),
                data=body,
                headers=headers,
                allow_redirects=False,
                ssl=tls if tls is not None else True,
            ) as response:
                if response.status == 101:
                    response.close()
                    raise SendError("the receiver switched protocols")
                retry_after = response.headers.get("Retry-After")
                received = bytearray()
                try:
                    while len(received) < read_limit:
                        chunk = await response.content.read(read_limit - len(received))
                        if not chunk:
                            break
                        received += chunk
                except aiohttp.ClientPayloadError:
                    response.close()  # cut short: the status already tells
                if len(received) >= read_limit and not response.content.at_eof():
                    response.close()  # the rest is never read: the connection cannot be reused
                return Answer(response.status, retry_after, bytes(received))
        except aiohttp.ClientConnectorError as exc:
            raise SendError(f"ConnectError: {exc}") from exc
        except aiohttp.ServerDisconnectedError as exc:
            raise SendError("the receiver closed the connection without answering") from exc
        except aiohttp.ClientResponseError as exc:
            if _head_error(exc):
                raise SendError(f"the answer's headers exceed {own.MAX_HEAD_BYTES} bytes") from exc
            raise SendError(f"malformed HTTP answer: {exc.message}") from exc
        except aiohttp.ClientError as exc:
            raise SendError(f"connection lost: {exc}") from exc
        finally:
            _checked.reset(token)

    async def aclose(self) -> None:
        """Close every connection."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def install() -> None:
    """Make the delivery worker send through :class:`AiohttpSender` in this process."""
    from service.webhooks import worker

    worker.Sender = AiohttpSender  # type: ignore[misc,assignment]


def app_from_env() -> Any:
    """``service.main:app_from_env`` with the worker sending through aiohttp."""
    install()
    from service.main import app_from_env as service_app

    return service_app()


if __name__ == "__main__":  # python -m bench.aiohttp_sender worker: imi-api worker through aiohttp
    install()
    from service.cli import app

    app()
