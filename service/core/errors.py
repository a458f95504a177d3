"""Domain errors and their RFC 9457 ``application/problem+json`` rendering.

Every error the API returns goes through :func:`problem_response`, except the
OAuth 2.0 token endpoint's own errors (RFC 6749 §5.2, see ``auth/router.py``).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from service.core.jsonutil import dumps

log = logging.getLogger("service.core.errors")

PROBLEM_JSON = "application/problem+json"
#: Problem ``type`` URIs are relative references under this path (RFC 9457 §3.1.1).
PROBLEM_BASE = "/problems/"


class ServiceError(Exception):
    """An error with an HTTP meaning; rendered as a problem document.

    ``detail`` is for humans; ``extra`` adds members to the problem object;
    ``headers`` are sent with the response (e.g. ``Retry-After``).
    """

    status: int = 400
    title: str = "Bad request"
    code: str = "bad-request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra or {}
        self.headers = headers or {}


class BadRequest(ServiceError):
    status, title, code = 400, "Bad request", "bad-request"


class Unauthorized(ServiceError):
    status, title, code = 401, "Unauthorized", "unauthorized"


class Forbidden(ServiceError):
    status, title, code = 403, "Forbidden", "forbidden"


class NotFound(ServiceError):
    status, title, code = 404, "Not found", "not-found"


class MethodNotAllowed(ServiceError):
    status, title, code = 405, "Method not allowed", "method-not-allowed"


class NotAcceptable(ServiceError):
    status, title, code = 406, "Not acceptable", "not-acceptable"


class Conflict(ServiceError):
    status, title, code = 409, "Conflict", "conflict"


class Gone(ServiceError):
    status, title, code = 410, "Gone", "gone"


class PreconditionFailed(ServiceError):
    status, title, code = 412, "Precondition failed", "precondition-failed"


class PayloadTooLarge(ServiceError):
    status, title, code = 413, "Content too large", "payload-too-large"


class UnsupportedMediaType(ServiceError):
    status, title, code = 415, "Unsupported media type", "unsupported-media-type"


class Unprocessable(ServiceError):
    status, title, code = 422, "Unprocessable content", "validation-error"


class PreconditionRequired(ServiceError):
    status, title, code = 428, "Precondition required", "precondition-required"


class TooManyRequests(ServiceError):
    status, title, code = 429, "Too many requests", "rate-limited"


class ServiceUnavailable(ServiceError):
    status, title, code = 503, "Service unavailable", "unavailable"


def problem_body(
    status: int, title: str, detail: str, code: str, extra: dict[str, Any] | None = None
) -> bytes:
    """The serialised problem object: ``type``, ``title``, ``status``, ``detail`` and extras.

    Extension members never replace the standard ones (RFC 9457 §3.2):
    ``ValueError`` if ``extra`` names one of them.
    """
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if extra:
        clash = sorted(body.keys() & extra.keys())
        if clash:
            raise ValueError(f"problem extension members shadow standard ones: {clash}")
        body.update(extra)
    return dumps(body)


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    code: str,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """An RFC 9457 response; never cached by shared caches."""
    hdrs = {"Cache-Control": "no-store"}
    hdrs.update(headers or {})
    return Response(
        problem_body(status, title, detail, code, extra),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=hdrs,
    )


def error_response(exc: ServiceError) -> Response:
    """Render a :class:`ServiceError`."""
    return problem_response(
        exc.status, exc.title, exc.detail, code=exc.code, extra=exc.extra, headers=exc.headers
    )


_STATUS_CODES = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    406: NotAcceptable,
    409: Conflict,
    410: Gone,
    412: PreconditionFailed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: Unprocessable,
    428: PreconditionRequired,
    429: TooManyRequests,
    503: ServiceUnavailable,
}


#: Seconds a client should wait before retrying while the database is unreachable.
DB_RETRY_AFTER_S = 5


def is_database_unavailable(exc: BaseException) -> bool:
    """True for errors that mean "the database cannot be reached or used right now".

    SQLAlchemy's ``OperationalError`` (connection refused or dropped, server
    shutting down, SQLite busy), ``InterfaceError``, ``DisconnectionError``,
    pool exhaustion (``sqlalchemy.exc.TimeoutError``) and any DBAPI error that
    invalidated its connection. They are transient: a 503 with ``Retry-After``.
    """
    from sqlalchemy import exc as sa_exc

    if isinstance(
        exc,
        sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.DisconnectionError | sa_exc.TimeoutError,
    ):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and bool(exc.connection_invalidated)


def is_nul_in_text(exc: BaseException) -> bool:
    """True when the database refused a U+0000 in a text value.

    PostgreSQL text cannot hold NUL (psycopg raises ``DataError`` before sending);
    the value came from the client (a path segment, a query or form field, a JSON
    string), so this is a 422, not a server error. SQLite would store it; the
    engine refuses it there the same way (``db.make_engine``).
    """
    from sqlalchemy import exc as sa_exc

    return isinstance(exc, sa_exc.DataError) and "NUL (0x00)" in str(exc.orig)


def database_unavailable_response() -> Response:
    """The 503 problem sent while the database is unreachable (with ``Retry-After``)."""
    return problem_response(
        503,
        ServiceUnavailable.title,
        "The database is unreachable; retry shortly.",
        code=ServiceUnavailable.code,
        headers={"Retry-After": str(DB_RETRY_AFTER_S)},
    )


def _validation_errors(exc: RequestValidationError) -> tuple[int, str, list[dict[str, Any]]]:
    errors = []
    malformed = False
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            malformed = True
        errors.append(
            {
                "loc": [str(p) for p in err.get("loc", ())],
                "msg": str(err.get("msg", "")),
                "type": str(err.get("type", "")),
            }
        )
    if malformed:
        return 400, "The request body is not valid JSON.", errors
    return 422, "The request did not validate; see `errors`.", errors


def _body_not_json(request: Request, exc: RequestValidationError) -> bool:
    """Whether a JSON body failed to validate because it was sent as another media type.

    FastAPI parses a body as JSON only when its ``Content-Type`` is ``application/json`` or
    ``application/*+json``; any other type, or none, reaches the model as raw bytes and
    fails as "not a valid dictionary", a 422 that hides the real mistake: that is a 415
    (RFC 9110 §15.5.16; without a type a body may be taken as ``application/octet-stream``).
    No body at all stays a 422 ("Field required"). Routes that read other media types
    (Markdown drafts, checkpoint notes, the token endpoint's form) check them themselves
    before any validation.
    """
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if not media and request.headers.get("content-length", "0").strip() in ("", "0"):
        return False
    main, _, sub = media.partition("/")
    if main == "application" and (sub == "json" or sub.endswith("+json")):
        return False
    return any(tuple(err.get("loc", ()))[:1] == ("body",) for err in exc.errors())


#: Methods an ``Allow`` header may name (``HEAD`` follows ``GET``, see below).
_METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """The ``Allow`` value of a 405: every method some route serves on this path (RFC 9110 §15.5.6).

    Starlette names only the methods of the first route whose path matched, but
    one path often has several routes (``GET`` and ``POST /v1/schools``). Each
    method is tried against the routes through their public ``matches``, so
    nested routers count too. ``HEAD`` is served wherever ``GET`` is
    (``middleware.HeadAsGet``).
    """
    from starlette.routing import Match

    allowed = []
    for method in _METHODS:
        probe = {**request.scope, "method": method}
        if any(route.matches(probe)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    if "GET" in allowed:
        allowed.append("HEAD")
    return ", ".join(sorted(allowed))


def install_handlers(app: FastAPI) -> None:
    """Route every error FastAPI and Starlette raise into a problem document."""

    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, exc: ServiceError) -> Response:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        cls = _STATUS_CODES.get(exc.status_code, ServiceError)
        detail = exc.detail if isinstance(exc.detail, str) else cls.title
        if exc.status_code == 404 and detail == "Not Found":
            detail = "No resource at this path."
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            detail = "This method is not allowed on this resource."
            headers["Allow"] = allowed_methods(request) or headers.get("Allow", "")
        return problem_response(
            exc.status_code,
            cls.title if cls is not ServiceError else "Error",
            detail,
            code=cls.code if cls is not ServiceError else "error",
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        if _body_not_json(request, exc):
            return error_response(
                UnsupportedMediaType(
                    "This operation reads a JSON body (`Content-Type: application/json`, or the "
                    "`+json` type it documents).",
                    extra={"accepted": ["application/json"]},
                )
            )
        status, detail, errors = _validation_errors(exc)
        cls = _STATUS_CODES[status]
        return problem_response(status, cls.title, detail, code=cls.code, extra={"errors": errors})

    async def _database_unavailable(request: Request, exc: Exception) -> Response:
        # The message only: SQLAlchemy's str() may carry statement parameters.
        log.warning(
            "database unavailable on %s %s: %s", request.method, request.url.path, exc.__class__.__name__
        )
        return database_unavailable_response()

    from sqlalchemy import exc as sa_exc

    for db_error in (
        sa_exc.OperationalError,
        sa_exc.InterfaceError,
        sa_exc.DisconnectionError,
        sa_exc.TimeoutError,
    ):
        app.add_exception_handler(db_error, _database_unavailable)

    async def _data_error(request: Request, exc: Exception) -> Response:
        if is_nul_in_text(exc):
            return problem_response(
                422,
                Unprocessable.title,
                "Text must not contain the NUL character (U+0000).",
                code=Unprocessable.code,
            )
        return await _unhandled(request, exc)

    app.add_exception_handler(sa_exc.DataError, _data_error)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> Response:
        if is_database_unavailable(exc):
            return await _database_unavailable(request, exc)
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500,
            "Internal server error",
            "The server failed to answer this request; it has been logged.",
            code="internal-error",
        )
