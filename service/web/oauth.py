"""The OAuth 2.0 token endpoint (RFC 6749 §4.4 client credentials) and the JWKS.

Errors here follow RFC 6749 §5.2 (``{"error": "invalid_client", …}``), not
problem+json; 413 and 429 stay problem+json (DESIGN §1).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import unquote_plus

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from service.core.db import transaction
from service.core.jsonutil import dumps
from service.security import clients as service
from service.security.keys import issue_access_token
from service.web.http import CACHE_SHORT, json_response

router = APIRouter(tags=["auth"])


def _oauth_error(status: int, error: str, description: str, basic: bool = False) -> Response:
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="imi"' if basic else 'Bearer realm="imi"'
    return Response(
        dumps({"error": error, "error_description": description}),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None
    # RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
    return unquote_plus(client_id), unquote_plus(secret)


#: Response bodies of the token endpoint (RFC 6749 §5.1, §5.2), for the OpenAPI document.
_TOKEN: dict[str, Any] = {
    "type": "object",
    "required": ["access_token", "token_type", "expires_in", "scope"],
    "properties": {
        "access_token": {"type": "string"},
        "token_type": {"type": "string", "enum": ["Bearer"]},
        "expires_in": {"type": "integer"},
        "scope": {"type": "string"},
    },
}
_OAUTH_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
}


@router.post(
    "/v1/oauth/token",
    summary="Get an access token (OAuth 2.0 client credentials)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["grant_type"],
                        "properties": {
                            "grant_type": {"type": "string", "enum": ["client_credentials"]},
                            "scope": {"type": "string"},
                            "client_id": {"type": "string"},
                            "client_secret": {"type": "string"},
                        },
                    }
                }
            },
        }
    },
    responses={
        200: {
            "description": "An access token (RFC 6749 §5.1).",
            "content": {"application/json": {"schema": _TOKEN}},
        },
        400: {
            "description": "RFC 6749 §5.2 error.",
            "content": {"application/json": {"schema": _OAUTH_ERROR}},
        },
        401: {
            "description": "RFC 6749 §5.2 `invalid_client`.",
            "content": {"application/json": {"schema": _OAUTH_ERROR}},
        },
    },
)
async def token(request: Request) -> Response:
    """Exchange client credentials (HTTP Basic or form fields) for a bearer JWT.

    Answers ``{"access_token", "token_type": "Bearer", "expires_in", "scope"}``;
    an optional ``scope`` narrows the client's scopes.
    """
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return _oauth_error(
            400, "invalid_request", "send the request form-encoded (application/x-www-form-urlencoded)"
        )
    try:
        form = await request.form()
    except Exception:  # noqa: BLE001 - any parse failure is the client's
        return _oauth_error(400, "invalid_request", "the form body could not be parsed")
    fields: dict[str, Any] = {}
    for key in ("grant_type", "scope", "client_id", "client_secret"):
        values = form.getlist(key)
        if len(values) > 1:
            return _oauth_error(400, "invalid_request", f"parameter {key} is repeated")
        fields[key] = values[0] if values and isinstance(values[0], str) else None
    basic = _basic_credentials(request.headers.get("authorization", ""))
    if basic and fields["client_id"]:
        return _oauth_error(400, "invalid_request", "use one client authentication method only")
    client_id, secret = basic if basic else (fields["client_id"], fields["client_secret"])
    if not client_id or not secret:
        return _oauth_error(401, "invalid_client", "client authentication is required", True)
    if "\x00" in client_id or "\x00" in secret:
        # No client has a NUL in its credentials (and PostgreSQL text cannot hold one).
        return _oauth_error(401, "invalid_client", "unknown client or wrong secret", bool(basic))
    grant = fields["grant_type"]
    if not grant:
        return _oauth_error(400, "invalid_request", "grant_type is required")
    if grant != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "only client_credentials is supported")

    settings = request.app.state.settings
    engine = request.app.state.engine

    def authenticate() -> Any:
        with transaction(engine, readonly=True) as session:
            return service.authenticate(session=session, client_id=client_id, secret=secret)

    client = await run_in_threadpool(authenticate)
    if client is None:
        return _oauth_error(401, "invalid_client", "unknown client or wrong secret", bool(basic))
    allowed = client.scopes.split()
    requested = fields["scope"].split() if fields["scope"] else allowed
    if not set(requested) <= set(allowed):
        return _oauth_error(400, "invalid_scope", "a requested scope is not granted to this client")
    access_token = issue_access_token(
        request.app.state.keys,
        issuer=settings.public_base_url,
        client_id=client.id,
        scopes=requested,
        ttl_s=settings.token_ttl_s,
    )
    body = {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": settings.token_ttl_s,
        "scope": " ".join(requested),
    }
    return Response(
        dumps(body),
        media_type="application/json",
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


@router.get("/.well-known/jwks.json", tags=["verification"], summary="Public signing keys (JWKS)")
def jwks(request: Request) -> Response:
    """The JSON Web Key Set (RFC 7517) that verifies access tokens and credentials."""
    return json_response(request.headers, request.app.state.keys.jwks(), cache_control=CACHE_SHORT)
