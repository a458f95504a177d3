"""HTTP mechanics shared by every router.

- Entity tags and conditional requests (RFC 9110 §8.8.3, §13): strong ETags
  for the identity encoding, weak comparison for ``If-None-Match`` (lists,
  ``W/`` forms, ``*``), strong comparison for ``If-Match``.
- Content negotiation on ``Accept`` (RFC 9110 §12.5.1) with q-values.
- Cursor pagination with an RFC 8288 ``Link: <…>; rel="next"`` header.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from email.utils import format_datetime, parsedate_to_datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from pydantic import AfterValidator, AwareDatetime, BeforeValidator
from starlette.datastructures import Headers
from starlette.responses import Response

from service.core.errors import (
    NotAcceptable,
    PreconditionFailed,
    PreconditionRequired,
    Unprocessable,
    UnsupportedMediaType,
)
from service.core.jsonutil import dumps

T = TypeVar("T")


def _in_utc(value: dt.datetime) -> dt.datetime:
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:  # e.g. 9999-12-31T23:00:00-01:00 is in the year 10000 in UTC
        raise ValueError("the instant falls outside the years 1-9999 in UTC") from None


_RFC3339_START = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}")


def _rfc3339_text(value: Any) -> Any:
    # Pydantic reads numbers (and digit strings) as Unix times, above ~2e10 as milliseconds:
    # 20261101 would be 1970-08-23. Only date-time text is asked for.
    if isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not _RFC3339_START.match(value):
        raise ValueError("an RFC 3339 date-time with an offset is needed, e.g. 2026-11-29T10:00:00Z")
    return value


#: An RFC 3339 date-time with an offset (text, not a number), as UTC; instants outside the years
#: 1-9999 in UTC are a validation error (422), not an overflow deep in the database layer.
UTCInstant = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(_in_utc)]

_DECIMAL = re.compile(r"[0-9]+")


def _decimal_text(value: Any) -> Any:
    # Pydantic's lax int reads " 1", "+1", "1.0" and "1_0" (= 10) too: a tree size or leaf
    # index written so is a client's mistake to point out, not a number to guess.
    if isinstance(value, str) and not _DECIMAL.fullmatch(value):
        raise ValueError("a decimal number (ASCII digits only) is needed")
    return value


#: Metadata for an ``int`` query or path parameter written in ASCII digits only; anything else
#: is a 422: ``Annotated[int, Query(ge=1), DIGITS_ONLY]``. It goes after the ``Query``/``Path``,
#: whose bounds then still reach the OpenAPI schema as ``minimum``/``maximum``.
DIGITS_ONLY = BeforeValidator(_decimal_text)


JSON = "application/json"
TEXT = "text/plain"
MARKDOWN = "text/markdown"
HTML = "text/html"

CACHE_IMMUTABLE_VERSION = "public, max-age=3600"
CACHE_SHORT = "public, max-age=60"
CACHE_PRIVATE = "private, no-cache"

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

#: The range of a signed 64-bit integer column (``BIGINT``): sequences, row ids.
MIN_BIGINT = -(2**63)
MAX_BIGINT = 2**63 - 1


# --- entity tags -----------------------------------------------------------------


def make_etag(*parts: bytes | str) -> str:
    """A strong entity tag (quoted) over ``parts``, e.g. ``"3f2a…"``."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\x00")
    return '"' + digest.hexdigest()[:32] + '"'


def _parse_etag_list(header: str) -> list[str] | None:
    """Entity tags in an ``If-(None-)Match`` value; ``None`` for ``*``."""
    if header.strip() == "*":
        return None
    tags: list[str] = []
    i, n = 0, len(header)
    while i < n:
        while i < n and header[i] in " \t,":
            i += 1
        if i >= n:
            break
        start = i
        if header.startswith("W/", i):
            i += 2
        if i < n and header[i] == '"':
            end = header.find('"', i + 1)
            if end == -1:
                break
            tags.append(header[start : end + 1])
            i = end + 1
        else:  # tolerate unquoted garbage: skip to the next comma
            end = header.find(",", i)
            i = n if end == -1 else end
    return tags


def _opaque(tag: str) -> str:
    return tag[2:] if tag.startswith("W/") else tag


def none_match(header: str | None, etag: str) -> bool:
    """True when ``If-None-Match`` matches ``etag`` (weak comparison): answer 304."""
    if header is None:
        return False
    tags = _parse_etag_list(header)
    if tags is None:
        return True
    wanted = _opaque(etag)
    return any(_opaque(t) == wanted for t in tags)


def check_if_match(header: str | None, etag: str, *, required: bool) -> None:
    """Enforce ``If-Match`` with strong comparison (RFC 9110 §13.1.1).

    Raises :class:`PreconditionRequired` (428) when ``required`` and absent,
    :class:`PreconditionFailed` (412) when no listed tag matches strongly.
    """
    if header is None:
        if required:
            raise PreconditionRequired("This change needs an If-Match header with the ETag you last read.")
        return
    tags = _parse_etag_list(header)
    if tags is None:
        return
    if etag.startswith("W/") or not any(t == etag for t in tags if not t.startswith("W/")):
        raise PreconditionFailed(
            "The resource changed since you read it: fetch it again and reapply your change.",
            extra={"current_etag": etag},
        )


def not_modified_since(headers: Headers, last_modified: dt.datetime | None) -> bool:
    """``If-Modified-Since`` check, ignored when ``If-None-Match`` is present (§13.1.3)."""
    if "if-none-match" in headers:
        return False
    return unmodified_since(headers.get("if-modified-since"), last_modified)


def unmodified_since(if_modified_since: str | None, last_modified: dt.datetime | None) -> bool:
    """True when a resource last modified at ``last_modified`` (aware) has not changed since the
    ``If-Modified-Since`` date (RFC 9110 §13.1.3; whole seconds, unparseable dates ignored)."""
    if not if_modified_since or last_modified is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError, IndexError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=dt.UTC)
    return last_modified.replace(microsecond=0) <= since


def last_modified_value(value: dt.datetime) -> str:
    """``Last-Modified`` for a change at ``value``: never later than now (RFC 9110 §8.8.2.1: an
    origin server replaces a future time with the message's date; the standards give each
    change a second of its own, which can lie just ahead)."""
    return http_date(min(value, dt.datetime.now(dt.UTC)))


def http_date(value: dt.datetime) -> str:
    """An IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``) for ``value``."""
    return format_datetime(value.astimezone(dt.UTC), usegmt=True)


def conditional_response(
    request_headers: Headers,
    body: bytes,
    *,
    media_type: str,
    etag: str | None = None,
    cache_control: str = CACHE_SHORT,
    last_modified: dt.datetime | None = None,
    headers: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """A 200 with ``ETag``/``Cache-Control``, or a 304 when the client's copy is current."""
    tag = etag or make_etag(body)
    hdrs = {"ETag": tag, "Cache-Control": cache_control, "Vary": "Accept, Accept-Encoding"}
    if last_modified is not None:
        hdrs["Last-Modified"] = last_modified_value(last_modified)
    hdrs.update(headers or {})
    if none_match(request_headers.get("if-none-match"), tag) or not_modified_since(
        request_headers, last_modified
    ):
        return Response(status_code=304, headers=hdrs)
    return Response(body, status_code=status_code, media_type=media_type, headers=hdrs)


def json_response(
    request_headers: Headers,
    payload: Any,
    *,
    cache_control: str = CACHE_SHORT,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Serialise ``payload`` and answer it conditionally (ETag over the bytes)."""
    return conditional_response(
        request_headers,
        dumps(payload),
        media_type=JSON,
        cache_control=cache_control,
        headers=headers,
        status_code=status_code,
    )


# --- content negotiation ---------------------------------------------------------


def negotiate(accept: str | None, offered: Sequence[str]) -> str:
    """The best of ``offered`` for an ``Accept`` header; the first one when absent.

    Raises :class:`NotAcceptable` (406) when nothing offered is acceptable.
    """
    if not accept or not accept.strip():
        return offered[0]
    ranges: list[tuple[str, float, int]] = []
    for raw in accept.split(","):
        parts = [p.strip() for p in raw.split(";")]
        media = parts[0].lower()
        if not media:
            continue
        q = 1.0
        for param in parts[1:]:
            if param.lower().startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        specificity = 0 if media == "*/*" else (1 if media.endswith("/*") else 2)
        ranges.append((media, q, specificity))
    best: tuple[float, int, str] | None = None
    for index, media_type in enumerate(offered):
        quality, spec = -1.0, -1
        for media, q, s in ranges:
            if (
                media == media_type
                or media == "*/*"
                or (media.endswith("/*") and media_type.startswith(media[:-1]))
            ) and s > spec:
                quality, spec = q, s
        if quality > 0:
            candidate = (quality, -index, media_type)
            if best is None or candidate > best:
                best = candidate
    if best is None:
        raise NotAcceptable(
            "None of the requested media types is available; offered: " + ", ".join(offered),
            extra={"available": list(offered)},
        )
    return best[2]


def require_utf8_text(content_type: str | None, media_type: str) -> None:
    """Check that a request body is declared as ``media_type`` in UTF-8 (RFC 9110 §8.3).

    The media type compares case-insensitively; a ``charset`` parameter, when present, must
    name UTF-8 (the body is decoded as UTF-8 whatever it says, so another one would be
    misread). A missing ``Content-Type`` is not assumed to be text: RFC 9110 lets a server
    treat it as ``application/octet-stream``. Raises :class:`UnsupportedMediaType` (415,
    with ``accepted``) otherwise.
    """
    media, _, params = (content_type or "").partition(";")
    charset = ""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    if media.strip().lower() != media_type or charset not in ("", "utf-8", "utf8"):
        raise UnsupportedMediaType(
            f"The body is read as {media_type} in UTF-8 (`Content-Type: {media_type}; charset=utf-8`).",
            extra={"accepted": [media_type]},
        )


# --- pagination ------------------------------------------------------------------


def encode_cursor(position: Mapping[str, Any]) -> str:
    """An opaque cursor (base64url JSON) for a keyset position."""
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    """The position inside a cursor; :class:`Unprocessable` (422) when it was tampered with."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise Unprocessable("The cursor is not one this API issued.") from exc
    # Positions this API issues are flat objects of strings and 64-bit integers; anything
    # else (nested values, floats, integers no database column holds) would reach the
    # database as a parameter it refuses: a 500 instead of this 422.
    if not isinstance(value, dict) or not all(_position_value(v) for v in value.values()):
        raise Unprocessable("The cursor is not one this API issued.")
    return value


def cursor_value(cursor: str | None, name: str, kind: type[T]) -> T | None:
    """The ``name`` member of a cursor this API issued (``None`` without a cursor).

    Raises :class:`Unprocessable` (422) when the cursor was tampered with, or
    lacks ``name``, or holds something other than a ``kind`` there (a decodable
    ``{"x": 1}`` must not quietly mean "the first page").
    """
    position = decode_cursor(cursor)
    if position is None:
        return None
    value = position.get(name)
    if not isinstance(value, kind) or isinstance(value, bool) or value == "":
        raise Unprocessable("The cursor is not one this API issued.")
    return value


def _position_value(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        # JSON can spell lone surrogates ("\\ud800") that no database text column accepts.
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    return isinstance(value, int) and not isinstance(value, bool) and MIN_BIGINT <= value <= MAX_BIGINT


def clamp_limit(limit: int | None) -> int:
    """``limit`` within 1..200, default 50 (DESIGN §4)."""
    if limit is None:
        return DEFAULT_LIMIT
    return max(1, min(MAX_LIMIT, limit))


def next_link(base_url: str, path: str, params: Iterable[tuple[str, Any]]) -> str:
    """An RFC 8288 ``Link`` value for the next page: ``<url>; rel="next"``.

    ``params`` are the query of the next page (the cursor included); ``None``
    values are left out.
    """
    query = [(k, v) for k, v in params if v is not None]
    return f'<{base_url}{path}?{urlencode(query)}>; rel="next"'


def page_response(
    request_headers: Headers,
    data: list[Any],
    next_cursor: str | None,
    *,
    base_url: str,
    path: str,
    params: Iterable[tuple[str, Any]],
    cache_control: str = CACHE_SHORT,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """One page of a list, answered conditionally (see :func:`json_response`).

    The body is ``{"data": data, "next_cursor": next_cursor}``. When
    ``next_cursor`` is set, a ``Link: <base_url+path?params>; rel="next"``
    header (RFC 8288, :func:`next_link`) is added to ``headers``; ``params``
    is the next page's query in the order the link names it, the cursor
    included under whatever name the list reads it (``cursor``, ``after``).
    """
    merged = dict(headers or {})
    if next_cursor:
        merged["Link"] = next_link(base_url, path, params)
    return json_response(
        request_headers,
        {"data": data, "next_cursor": next_cursor},
        cache_control=cache_control,
        headers=merged,
    )
