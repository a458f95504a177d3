"""Keep-alive HTTP/1.1 connections that POST webhooks: the worker's HTTP client.

Why not httpx here: a webhook attempt is one POST of prepared bytes with a
handful of headers, no redirects, cookies, auth, proxies or HTTP/2. Measured on
this machine (profiling bench/fanout.py, PERFORMANCE.md), httpx cost ~1.3 ms of
CPU per delivery and its transport httpcore alone ~0.7 ms; this module ~0.13 ms,
which is what lets one worker reach the fan-out targets. Everything that is easy to get
wrong is still a library's: responses are parsed by ``httptools`` (llhttp, the
parser uvicorn serves the API with), TLS is the standard library's
(``ssl`` with httpx's CA bundle), and URLs are parsed and normalised by httpx.
httpx stays the HTTP client everywhere else.

Why not aiohttp's client (issue 13: switch if the verified deliveries/s of
today's sender over aiohttp's stay within 1.15 in both deployment shapes).
bench/aiohttp_sender.py puts an ``aiohttp.ClientSession`` behind this
interface (it passes 18 of the 19 tests of this module; aiohttp has no cap on
idle connections); ``python -m bench sender`` and ``BENCH_SENDERS=hand-written,aiohttp
BENCH_SENDER_RUNS=5 python -m bench fanout`` re-run the comparison. Measured
2026-12-06 on the 2-vCPU machine (shared with other engineers' test runs),
Python 3.11.7, uvloop 0.23, httptools 0.9, aiohttp 3.14.5, clients interleaved:

================================================  ===========  ===========  ===============
figure                                            this module  aiohttp      today / aiohttp
================================================  ===========  ===========  ===============
CPU per POST, 3,000 × 2 KB, 50 concurrent         26.9 µs      74.7 µs      0.36 (2.78× CPU)
(``bench sender``, medians of 5 rounds, 3 runs)   31.4 µs      70.2 µs      0.45 (2.24× CPU)
                                                  31.6 µs      71.0 µs      0.45 (2.24× CPU)
verified deliveries/s, in-process worker          1,448        1,482        0.98
(``bench fanout``, medians of 3 runs, then 5;     1,355        1,231        1.10
each run the median of 3 publishes to 1,000)      1,386 (all)  1,262 (all)  1.10
verified deliveries/s, API + ``imi-api worker``   1,538        1,042        1.48
(the production shape; same runs)                 1,337        865          1.55
                                                  1,438 (all)  966 (all)    1.49
worker process CPU per delivery (same runs)       210-220 µs   380-440 µs   0.5
================================================  ===========  ===========  ===============

The production shape misses the rule by far (1.48-1.55), so this module stays;
in-process the two are close (0.98-1.10), probably because the API's own work on
the same loop bounds the rate there. Per run (deliveries/s,
this module / aiohttp): in-process 832/1,489, 1,448/1,482, 1,668/1,441,
1,784/1,257, 828/1,194, 1,417/1,134, 1,278/1,267, 1,355/1,231; separate
1,575/1,103, 1,102/990, 1,538/1,042, 1,337/610, 1,855/941, 1,623/865,
1,215/1,372, 908/797.

What this module does itself, and the limits it keeps:

- one request at a time per connection (no pipelining); idle connections are
  kept per origin (scheme, host, port) for :data:`KEEPALIVE_S` seconds, at
  most :data:`MAX_IDLE_PER_ORIGIN` of them per origin and :data:`MAX_IDLE_TOTAL`
  in all (expired ones are closed by a sweep), and never reused after the peer
  closed, sent unexpected bytes, or a response was cut short;
- new connections go only to addresses the caller has checked
  (:func:`service.webhooks.urlguard.resolve_checked`), tried in order;
- a response is read up to ``read_limit`` bytes of body (the connection is
  then dropped) and :data:`MAX_HEAD_BYTES` of status line and headers;
  ``1xx`` interim responses are skipped;
- the caller bounds the whole exchange with a deadline (``asyncio.timeout``);
  a cancelled exchange aborts its connection;
- a kept-alive connection the receiver closed just before our request (no
  byte of an answer arrived) is replaced by a new one once, as HTTP clients do.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httptools
import httpx

#: Seconds an idle connection is kept for reuse.
KEEPALIVE_S = 30.0
MAX_IDLE_PER_ORIGIN = 64
#: Idle connections kept over all origins (each is a socket: a worker serving thousands of
#: receivers must not hold thousands of file descriptors).
MAX_IDLE_TOTAL = 512
#: Bytes of status line and headers accepted before the answer is refused.
MAX_HEAD_BYTES = 64 * 1024


class SendError(Exception):
    """The exchange failed before a complete answer (connection refused or lost, bad HTTP)."""


@dataclass
class Answer:
    """A receiver's answer: status code, the ``Retry-After`` header if any, the body read
    (at most ``read_limit`` bytes)."""

    status: int
    retry_after: str | None
    body: bytes


class _Connection(asyncio.Protocol):
    """One connection and the parser of the answer in progress."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._reset(0)

    def _reset(self, read_limit: int) -> None:
        self.status = 0
        self.retry_after: str | None = None
        self.body = bytearray()
        self.received = 0
        self.head_bytes = 0
        self.read_limit = read_limit
        self.complete = False
        self.truncated = False
        self.keep_alive = False
        self._header_name = b""

    # --- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            # Bytes nobody asked for: the connection is no longer in a known state.
            self._abort()
            return
        self.received += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(SendError("the receiver switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(SendError(f"malformed HTTP answer: {exc}"))

    def eof_received(self) -> bool:
        self._lost(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost(exc)

    # --- httptools callbacks --------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:  # bytes after the answer: the connection is out of step, drop it
            self._abort()

    # Once the answer is complete, whatever follows in the same bytes (a second answer, sent
    # unasked) must not change it: the first complete answer counts, the connection is dropped.

    def on_status(self, status: bytes) -> None:
        if not self.complete:
            self._count_head(status)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.complete:
            return
        self._count_head(name, value)
        if name.lower() == b"retry-after":
            self.retry_after = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        if self.complete:
            return
        self.status = self._parser.get_status_code()
        # Asked here, as uvicorn does: llhttp's answer is reset once the message is complete.
        self.keep_alive = self._parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return
        room = self.read_limit - len(self.body)
        self.body += body[:room]
        if len(body) >= room:
            # Enough is read: stop here and drop the connection (the rest is never received).
            self.truncated = True
            self._done()

    def on_message_complete(self) -> None:
        if self.complete:
            return
        if 100 <= self.status < 200:  # an interim answer (e.g. 103 Early Hints): the final one follows
            self._reset(self.read_limit)
            return
        self._done()

    # --- internals ------------------------------------------------------------------------

    def _count_head(self, *parts: bytes) -> None:
        self.head_bytes += sum(len(p) for p in parts)
        if self.head_bytes > MAX_HEAD_BYTES:
            self._fail(SendError(f"the answer's headers exceed {MAX_HEAD_BYTES} bytes"))

    def _done(self) -> None:
        self.complete = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, exc: Exception) -> None:
        self._abort()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)

    def _lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is None or self._waiter.done():
            return
        if self.status >= 200:
            # Headers arrived and the receiver closed: a body delimited by the close (or cut
            # short, which the status already tells about). Nothing more can come.
            self.truncated = True
            self._done()
        elif exc is not None:
            self._waiter.set_exception(SendError(f"connection lost: {exc}"))
        else:
            self._waiter.set_exception(SendError("the receiver closed the connection without answering"))

    def _abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    async def exchange(self, request: bytes, read_limit: int) -> None:
        """Send ``request`` and wait for the complete answer (or ``read_limit`` body bytes)."""
        assert self.transport is not None
        self._reset(read_limit)
        self._parser = httptools.HttpResponseParser(self)
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            self.transport.write(request)
            await self._waiter
        except BaseException:
            self._abort()  # a cancelled or failed exchange leaves the connection unusable
            raise
        finally:
            self._waiter = None

    def reusable(self) -> bool:
        return (
            self.complete
            and not self.truncated
            and not self.closed
            and self.keep_alive
            and not (self.transport is None or self.transport.is_closing())
        )


Origin = tuple[str, str, int]


class Sender:
    """Connections to webhook receivers, kept alive per origin. Use from one event loop.

    The caller bounds how many exchanges run at once (the worker's slots); the
    sender opens connections as needed and keeps the idle ones.
    ``ssl_context`` replaces the default TLS context (httpx's CA bundle, ALPN
    ``http/1.1``).
    """

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._idle: dict[Origin, list[_Connection]] = {}
        self._idle_total = 0
        self._swept = time.monotonic()
        # Default: httpx's CA bundle, certificate and host name checked (tests pass their own CA).
        self._ssl = ssl_context

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:  # built on first https use: loading the CA bundle costs ~50 ms
            context = httpx.create_ssl_context(trust_env=False)
            context.set_alpn_protocols(["http/1.1"])
            self._ssl = context
        return self._ssl

    async def _connect(self, url: httpx.URL, addresses: Sequence[str], port: int) -> _Connection:
        loop = asyncio.get_running_loop()
        tls = url.scheme == "https"
        last: Exception | None = None
        for address in addresses:
            try:
                _transport, connection = await loop.create_connection(
                    _Connection,
                    str(address),
                    port,
                    ssl=self._ssl_context() if tls else None,
                    # SNI and the certificate check are for the URL's name, not the address.
                    server_hostname=url.host if tls else None,
                )
                return connection
            except (OSError, ssl.SSLError) as exc:
                last = exc
        raise SendError(f"ConnectError: {last or 'no address to connect to'}")

    def _take_idle(self, origin: Origin) -> _Connection | None:
        now = time.monotonic()
        if now - self._swept > KEEPALIVE_S / 3:
            self._sweep(now)
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            self._idle_total -= 1
            if not connection.closed and now - connection.idle_since < KEEPALIVE_S:
                return connection
            connection._abort()
        return None

    def _put_idle(self, origin: Origin, connection: _Connection) -> None:
        idle = self._idle.setdefault(origin, [])
        if len(idle) >= MAX_IDLE_PER_ORIGIN or self._idle_total >= MAX_IDLE_TOTAL:
            connection._abort()
            return
        connection.idle_since = time.monotonic()
        idle.append(connection)
        self._idle_total += 1

    def _sweep(self, now: float) -> None:
        """Close idle connections that expired or that the peer closed; forget empty origins."""
        self._swept = now
        for origin in list(self._idle):
            keep = []
            for connection in self._idle[origin]:
                if connection.closed or now - connection.idle_since >= KEEPALIVE_S:
                    connection._abort()
                else:
                    keep.append(connection)
            if keep:
                self._idle[origin] = keep
            else:
                del self._idle[origin]
        self._idle_total = sum(len(idle) for idle in self._idle.values())

    def idle_connections(self) -> int:
        """How many connections are kept for reuse now."""
        return self._idle_total

    async def post(
        self,
        url: httpx.URL,
        *,
        addresses: Sequence[str],
        headers: Sequence[tuple[str, str]],
        body: bytes,
        read_limit: int,
    ) -> Answer:
        """POST ``body`` to ``url`` with ``headers`` (``Host`` and ``Content-Length`` are added).

        ``addresses`` are the checked addresses of ``url.host`` for a new
        connection. Raises :class:`SendError` when no complete answer came; the
        caller's deadline (cancellation) aborts the connection.
        """
        port = url.port or (443 if url.scheme == "https" else 80)
        origin = (url.scheme, url.host, port)
        head = b"".join(
            [
                b"POST ",
                url.raw_path,
                b" HTTP/1.1\r\nHost: ",
                url.netloc,
                b"\r\nContent-Length: ",
                str(len(body)).encode(),
                b"\r\n",
                *(f"{name}: {value}\r\n".encode("latin-1") for name, value in headers),
                b"\r\n",
            ]
        )
        request = head + body
        connection = self._take_idle(origin)
        reused = connection is not None
        while True:
            if connection is None:
                connection = await self._connect(url, addresses, port)
            try:
                await connection.exchange(request, read_limit)
                break
            except SendError:
                if reused and connection.received == 0:
                    reused, connection = False, None  # a stale kept-alive connection: once more
                    continue
                raise
        answer = Answer(connection.status, connection.retry_after, bytes(connection.body))
        if connection.reusable():
            self._put_idle(origin, connection)
        else:
            connection._abort()
        return answer

    async def aclose(self) -> None:
        """Close every idle connection."""
        for idle in self._idle.values():
            for connection in idle:
                connection._abort()
        self._idle.clear()
        self._idle_total = 0
