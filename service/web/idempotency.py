"""``Idempotency-Key`` for creating POSTs (DESIGN §4; IETF draft
"The Idempotency-Key HTTP Header Field").

A pure ASGI middleware. For an authenticated ``POST`` that carries the header,
the first response (status < 500) is stored for 24 hours under (client id,
key); (its body encrypted at rest with :mod:`service.security.secretbox`); the same key
with the same method, path and body answers that response
again (with ``Idempotent-Replayed: true``), the same key with another request
is a 422 problem, and a key whose first request is still running is a 409
problem. Keys are scoped to the verified client id of the bearer token, so one
client can never read another's stored response; requests without a valid
token pass through untouched (the route answers 401).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Column, Field, SQLModel
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.core.db import UTCDateTime, transaction, utcnow
from service.core.errors import problem_body
from service.security import secretbox
from service.security.keys import TokenError, verify_access_token
from service.web.middleware import replaying

TTL = dt.timedelta(hours=24)
MAX_KEY_LENGTH = 255
#: Paths that are not "creating" POSTs: the token endpoint is not idempotent-keyed.
EXCLUDED_PATHS = frozenset({"/v1/oauth/token"})


class IdempotencyKey(SQLModel, table=True):
    """A stored first response; ``status`` is 0 while the first request runs."""

    __tablename__ = "idempotency_keys"

    client_id: str = Field(primary_key=True, max_length=40)
    key: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)
    request_hash: str = Field(max_length=64)
    status: int = Field(default=0)
    headers: list[list[str]] = Field(default_factory=list, sa_column=Column(sa.JSON, nullable=False))
    body: bytes = Field(default=b"", sa_column=Column(sa.LargeBinary, nullable=False))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))


def prune(session: Any, now: dt.datetime) -> int:
    """Delete keys older than 24 h (a periodic job); returns how many."""
    result = session.execute(
        sa.delete(IdempotencyKey).where(IdempotencyKey.created_at < now - TTL)  # type: ignore[arg-type]
    )
    return int(result.rowcount or 0)


def _problem(send: Send, status: int, title: str, detail: str, code: str) -> Any:
    body = problem_body(status, title, detail, code)
    return _send_raw(send, status, [(b"content-type", b"application/problem+json")], body)


async def _send_raw(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# Headers of the stored response that must not be replayed verbatim.
_HOP_HEADERS = {b"content-length", b"date", b"server", b"x-request-id"}


class IdempotencyMiddleware:
    """See the module docstring. ``app.state`` must hold ``engine``, ``keys`` and ``settings``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] in EXCLUDED_PATHS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        raw_key = headers.get(b"idempotency-key")
        auth = headers.get(b"authorization", b"")
        if raw_key is None or not auth.lower().startswith(b"bearer "):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        try:
            claims = verify_access_token(
                state.keys, auth[7:].decode("latin-1").strip(), issuer=state.settings.public_base_url
            )
        except TokenError:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1").strip()
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            await _problem(
                send,
                422,
                "Unprocessable content",
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters.",
                "validation-error",
            )
            return
        client_id = str(claims.get("sub"))[:40]

        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        digest = hashlib.sha256()
        for part in (scope["path"].encode(), scope.get("query_string", b""), body):
            digest.update(part)
            digest.update(b"\x00")
        request_hash = digest.hexdigest()

        engine = state.engine
        existing = await run_in_threadpool(_claim, engine, client_id, key, request_hash)
        if existing is not None:
            if existing.request_hash != request_hash:
                await _problem(
                    send,
                    422,
                    "Unprocessable content",
                    "This Idempotency-Key was used with a different request.",
                    "idempotency-key-reused",
                )
            elif existing.status == 0:
                await _problem(
                    send,
                    409,
                    "Conflict",
                    "A request with this Idempotency-Key is still being processed; retry shortly.",
                    "idempotency-key-in-flight",
                )
            else:
                replay = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in existing.headers]
                replay.append((b"idempotent-replayed", b"true"))
                body_out = secretbox.decrypt_bytes(state.settings.keys_dir, existing.body)
                await _send_raw(send, existing.status, replay, body_out)
            return

        status = 0
        resp_headers: list[list[str]] = []
        resp_body: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                resp_headers.extend(
                    [k.decode("latin-1"), v.decode("latin-1")]
                    for k, v in message.get("headers", [])
                    if k.lower() not in _HOP_HEADERS
                )
            elif message["type"] == "http.response.body":
                resp_body.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replaying(body, receive), capture)
        finally:
            # Stored encrypted: a first response can carry a secret shown once (a webhook's whsec_).
            stored = secretbox.encrypt_bytes(state.settings.keys_dir, b"".join(resp_body))
            await run_in_threadpool(_finish, engine, client_id, key, status, resp_headers, stored)


def _claim(engine: Any, client_id: str, key: str, request_hash: str) -> IdempotencyKey | None:
    """Insert an in-flight row, or return the live existing one."""
    now = utcnow()
    for _attempt in range(3):
        try:
            with transaction(engine) as session:
                row = session.get(IdempotencyKey, (client_id, key))
                if row is not None and row.created_at > now - TTL:
                    session.expunge(row)
                    return row
                if row is not None:
                    session.delete(row)
                    session.flush()
                session.add(
                    IdempotencyKey(client_id=client_id, key=key, request_hash=request_hash, created_at=now)
                )
            return None
        except IntegrityError:
            continue  # another request inserted the same key first: read it
    raise RuntimeError("could not claim idempotency key")


def _finish(
    engine: Any, client_id: str, key: str, status: int, headers: list[list[str]], body: bytes
) -> None:
    """Store the response (status < 500) or release the key for a retry."""
    with transaction(engine) as session:
        row = session.get(IdempotencyKey, (client_id, key))
        if row is None:
            return
        if 0 < status < 500:
            row.status, row.headers, row.body = status, headers, body
            session.add(row)
        else:
            session.delete(row)


__all__ = ["IdempotencyKey", "IdempotencyMiddleware", "prune"]
