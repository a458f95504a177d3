"""The outermost layer (:class:`Edge`): client address, request id, CORS, rate
limits, security headers, metrics and the access log — one ASGI pass per request.

- Every response gets ``X-Content-Type-Options: nosniff``, ``Referrer-Policy:
  no-referrer``, ``X-Frame-Options: DENY``, a Content-Security-Policy (strict
  for the API, one that lets Swagger UI and ReDoc load on ``/docs`` and
  ``/redoc``) and, when ``IMI_PUBLIC_BASE_URL`` is https, HSTS (RFC 6797). A
  response that brings its own Content-Security-Policy (the badge, the
  verification page) keeps it instead: two policies would both apply, and a
  client should see the one written for that document.
- CORS (Fetch standard): reads are open to every origin — ``GET``/``HEAD``
  responses carry ``Access-Control-Allow-Origin: *`` and expose ``ETag``,
  ``Link``, ``Content-Language`` and the rate-limit headers, and a preflight
  for ``GET``/``HEAD`` is answered here. Writes are closed: their responses
  carry no CORS header and their preflight is refused (403 problem, no
  ``Access-Control-Allow-*``). ``Authorization`` is not an allowed request
  header, so browsers on other sites cannot send bearer tokens either.
- The client address: the direct peer, unless the peer is one of
  ``IMI_TRUSTED_PROXIES``; then the right-most ``X-Forwarded-For`` address
  that is not itself a trusted proxy. It replaces ``scope["client"]``, so the
  rate limiter, the logs and the handlers all see the same address.
- Rate limits: :mod:`service.web.ratelimit`; request ids, metrics and logs:
  :mod:`service.web.telemetry`.

Headers are precomputed bytes; a request costs one list concatenation.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.core.config import Settings
from service.core.errors import problem_body
from service.core.logs import request_id_var
from service.core.metrics import HttpStats
from service.web.front import ServiceApp
from service.web.ratelimit import RateLimiter
from service.web.telemetry import REQUEST_ID_KEY, RequestRecorder, error_answer, request_id_from

log = logging.getLogger("service.web.edge")

Header = tuple[bytes, bytes]

#: The API answers JSON, Markdown and HTML fragments meant for embedding by
#: other sites' servers: nothing in them may load or run anything.
CSP_API = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
#: FastAPI's /docs (Swagger UI) and /redoc load their bundles from jsDelivr
#: and start them with an inline script.
CSP_DOCS = (
    b"default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    b"font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com "
    b"https://cdn.redoc.ly; connect-src 'self'; worker-src blob:; frame-ancestors 'none'; "
    b"base-uri 'none'; form-action 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
HSTS = b"max-age=31536000"
_CSP = b"content-security-policy"

#: Methods a cross-origin page may use.
CORS_METHODS = frozenset({"GET", "HEAD"})
#: Request headers a cross-origin read may send (beyond the CORS-safelisted ones).
CORS_ALLOW_HEADERS = b"Accept, Accept-Language, If-None-Match, If-Modified-Since, X-Request-ID"
#: Response headers a cross-origin page may read (beyond the CORS-safelisted ones).
CORS_EXPOSE_HEADERS = (
    b"ETag, Link, Content-Language, Retry-After, RateLimit-Limit, RateLimit-Remaining, "
    b"RateLimit-Reset, RateLimit-Policy, X-Request-ID"
)
PREFLIGHT_MAX_AGE = b"86400"


def security_headers(*, https: bool, docs: bool = False) -> list[Header]:
    """The security headers of every response (``docs`` selects the CSP for /docs)."""
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
        (b"content-security-policy", CSP_DOCS if docs else CSP_API),
    ]
    if https:
        headers.append((b"strict-transport-security", HSTS))
    return headers


CORS_READ_HEADERS: list[Header] = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", CORS_EXPOSE_HEADERS),
]


class TrustedProxies:
    """Resolve the client address from the peer and ``X-Forwarded-For``.

    ``entries`` are IP addresses or CIDR networks (``10.0.0.0/8``, ``::1``);
    anything else is compared as a literal host string. With no entries the
    peer is always the client.
    """

    def __init__(self, entries: Iterable[str]) -> None:
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self.names: set[str] = set()
        for entry in entries:
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.names.add(entry)
        self._memo: dict[str, int] = {}

    def __bool__(self) -> bool:
        return bool(self.networks or self.names)

    def _classify(self, host: str) -> int:
        """0: not an IP address, 1: an untrusted address, 2: a trusted proxy (memoised)."""
        known = self._memo.get(host)
        if known is not None:
            return known
        kind = 2 if host in self.names else 0
        if not kind:
            try:
                addr = ipaddress.ip_address(host)
            except ValueError:
                addr = None
            if addr is not None:
                if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
                    addr = addr.ipv4_mapped
                kind = 2 if any(addr in net for net in self.networks) else 1
        if len(self._memo) > 4096:  # bounded: forwarded chains are attacker-controlled
            self._memo.clear()
        self._memo[host] = kind
        return kind

    def is_trusted(self, host: str) -> bool:
        """True when ``host`` is a trusted proxy."""
        return self._classify(host) == 2

    def client(self, peer: str, forwarded_for: list[bytes]) -> str:
        """The client address for a request from ``peer`` with these ``X-Forwarded-For`` values.

        Walks the forwarded chain right to left (nearest hop first) and returns
        the first address that is not a trusted proxy; a malformed entry ends
        the walk there (it cannot be trusted to name anyone). Untrusted peers'
        headers are ignored entirely.
        """
        if self._classify(peer) != 2 or not forwarded_for:
            return peer
        if len(forwarded_for) == 1:
            hops = forwarded_for[0].decode("latin-1").split(",")
        else:
            hops = b",".join(forwarded_for).decode("latin-1").split(",")
        client = peer
        for hop in reversed(hops):
            hop = hop.strip()
            if not hop:
                continue
            kind = self._classify(hop)
            if kind == 0:
                break
            client = hop
            if kind == 1:
                break
        return client


class Edge:
    """The outermost ASGI layer: one pass per request for everything at the edge.

    In order: the client address (trusted proxies), the request id, a CORS
    preflight answer, the rate limit (429 problem), then the app; the response
    gets the security and CORS headers, the ``RateLimit-*`` headers and
    ``X-Request-ID``. Afterwards the request is counted for ``/metrics`` and
    logged. An exception that escapes the app before it answered becomes a
    problem response here (503 with ``Retry-After`` when the database is
    unreachable, else 500), so even those carry every header.

    One class rather than a stack of middlewares: each extra ASGI layer with
    its own ``send`` wrapper costs ~2 µs per request on these machines, and
    this layer is on every request, cached reads included. ``limiter``,
    ``recorder`` and ``access_log`` can be left out (the overhead measurement
    in ``tests/ops/overhead.py`` switches them one by one).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        https: bool,
        trusted_proxies: Iterable[str] = (),
        limiter: RateLimiter | None = None,
        recorder: RequestRecorder | None = None,
    ) -> None:
        self.app = app
        self.proxies = TrustedProxies(trusted_proxies)
        self.limiter = limiter
        self._sync_limiter = limiter is not None and limiter.is_sync
        self.recorder = recorder
        base = security_headers(https=https)
        docs = security_headers(https=https, docs=True)
        self._read = base + CORS_READ_HEADERS
        self._write = base
        self._docs = docs + CORS_READ_HEADERS
        self._preflight_ok = [
            *base,
            *CORS_READ_HEADERS,
            (b"access-control-allow-methods", b"GET, HEAD"),
            (b"access-control-allow-headers", CORS_ALLOW_HEADERS),
            (b"access-control-max-age", PREFLIGHT_MAX_AGE),
            (b"cache-control", b"public, max-age=86400"),
            (b"vary", b"Access-Control-Request-Method, Access-Control-Request-Headers"),
        ]
        refused = problem_body(
            403,
            "Forbidden",
            "Cross-origin requests may only read (GET, HEAD); writes need a server-side client.",
            "cors-refused",
        )
        self._preflight_refused = [
            *base,
            (b"content-type", b"application/problem+json"),
            (b"cache-control", b"no-store"),
            (b"content-length", str(len(refused)).encode()),
        ]
        self._preflight_refused_body = refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        headers_in = scope["headers"]
        if self.proxies:
            client = scope.get("client")
            if client:
                forwarded = [v for k, v in headers_in if k == b"x-forwarded-for"]
                address = self.proxies.client(client[0], forwarded)
                if address != client[0]:
                    scope["client"] = (address, 0)
        rid = request_id_from(headers_in)
        rid_header = (b"x-request-id", rid.encode("ascii"))
        scope[REQUEST_ID_KEY] = rid
        token = request_id_var.set(rid)
        status = 0
        try:
            method = scope["method"]
            if method == "GET" or method == "HEAD":
                extra = self._docs if scope["path"] in DOCS_PATHS else self._read
            elif method == "OPTIONS":
                answer = self._preflight(headers_in)
                if answer is not None:
                    status, headers, body = answer
                    await _respond(send, status, [*headers, rid_header], body)
                    return
                extra = self._write
            else:
                extra = self._write
            limiter = self.limiter
            policy = limiter.policy_for(scope["path"]) if limiter is not None else None
            if policy is not None:
                client = scope.get("client")
                address = client[0] if client else "unknown"
                assert limiter is not None
                if self._sync_limiter:  # memory://: no coroutine
                    hit: tuple[int, int] | None = limiter.hit_now(policy, address)
                else:
                    hit = await limiter.hit(policy, address)
                if hit is not None:
                    count, reset = hit
                    if count > policy.amount:
                        headers, body = limiter.refusal(policy, reset)
                        status = 429
                        await _respond(send, 429, [*headers, *extra, rid_header], body)
                        return
                    extra = [
                        *extra,
                        (b"ratelimit-limit", policy.limit_header),
                        (b"ratelimit-remaining", str(policy.amount - count).encode()),
                        (b"ratelimit-reset", str(reset).encode()),
                        (b"ratelimit-policy", policy.policy_header),
                        rid_header,
                    ]
                else:
                    extra = [*extra, rid_header]
            else:
                extra = [*extra, rid_header]

            async def send_with_headers(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    own = message.get("headers", ())
                    # A plain loop: ~0.1 µs for the usual 6-8 headers (any() over a generator: 0.5).
                    for name, _ in own:
                        if name == _CSP:
                            message["headers"] = [*own, *(h for h in extra if h[0] != _CSP)]
                            break
                    else:
                        message["headers"] = [*own, *extra]
                await send(message)

            try:
                await self.app(scope, receive, send_with_headers)
            except Exception as exc:
                if status:  # the response has started: nothing more can be told to the client
                    log.exception("error after the response started")
                    raise
                status, headers, body = error_answer(exc)
                await _respond(send, status, [*headers, *extra], body)
        finally:
            request_id_var.reset(token)
            if self.recorder is not None:
                self.recorder.record(scope, status or 500, time.perf_counter() - start, rid)

    def _preflight(self, headers_in: Iterable[tuple[bytes, bytes]]) -> tuple[int, list[Header], bytes] | None:
        """The answer to a CORS preflight; ``None`` for a plain ``OPTIONS`` (left to the app)."""
        origin = requested = None
        for name, value in headers_in:
            if name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                requested = value
        if origin is None or requested is None:
            return None
        if requested.decode("latin-1").strip() in CORS_METHODS:
            return 204, self._preflight_ok, b""
        return 403, self._preflight_refused, self._preflight_refused_body


async def _respond(send: Send, status: int, headers: list[Header], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def install(app: ServiceApp, settings: Settings, *, inner: Callable[[ASGIApp], ASGIApp]) -> None:
    """Put :class:`Edge` in front of ``app`` around ``inner(app's own stack)`` (the cache's
    layer), with the rate limiter for ``settings`` and request statistics in
    ``app.state.http_stats`` (``GET /metrics`` reads them)."""
    app.state.http_stats = stats = HttpStats()
    limiter = RateLimiter(
        reads=settings.rate_limit_reads,
        strict=settings.rate_limit_strict,
        storage=settings.rate_limit_storage,
    )
    app.install_front(
        lambda stack: Edge(
            inner(stack),
            https=settings.public_base_url.startswith("https://"),
            trusted_proxies=settings.trusted_proxy_list,
            limiter=limiter,
            recorder=RequestRecorder(stats),
        )
    )
