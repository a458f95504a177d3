"""FastAPI dependencies, declared once as ``Annotated`` aliases.

``SessionDep`` owns the request's transaction: it commits after the handler
returns and before the response is sent (``scope="function"``), and rolls back
on any error. The scope aliases (``StandardsWrite``, …) authenticate the bearer
token (401 with ``WWW-Authenticate``, RFC 6750 §3) and check the scope (403).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import OAuth2, SecurityScopes
from sqlmodel import Session

from service.core.config import Settings
from service.core.db import session_scope
from service.core.errors import Forbidden, Unauthorized
from service.security import clients as auth_service
from service.security.clients import Principal
from service.security.keys import KeyStore, TokenError, verify_access_token

SCOPE_DESCRIPTIONS = {
    "standards:write": "create, edit, publish and withdraw versions; put translations",
    "registry:write": "registry steward: create, edit, suspend, delist schools",
    "school:self": "a school edits its own profile and alignment",
    "webhooks:manage": "an association manages its own webhook endpoints",
    "review:comment": "an organisation comments on drafts under review (and withdraws its own comments)",
}

oauth2_scheme = OAuth2(
    flows=OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(tokenUrl="/v1/oauth/token", scopes=SCOPE_DESCRIPTIONS)
    ),
    scheme_name="oauth2",
    auto_error=False,
)


def get_settings_dep(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


def get_keys(request: Request) -> KeyStore:
    """The app's signing keys."""
    keys: KeyStore = request.app.state.keys
    return keys


def get_session(request: Request) -> Iterator[Session]:
    """A session per request: committed on success, rolled back on error.

    GET and HEAD get a read-only session (no write lock on SQLite).
    """
    readonly = request.method in ("GET", "HEAD")
    yield from session_scope(request.app.state.engine, readonly=readonly)


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
KeysDep = Annotated[KeyStore, Depends(get_keys)]


def _challenge(error: str | None = None, description: str | None = None, scope: str = "") -> str:
    parts = ['Bearer realm="imi"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{description}"')
    if scope:
        parts.append(f'scope="{scope}"')
    return ", ".join(parts)


def optional_principal(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    keys: KeysDep,
    token: Annotated[str | None, Depends(oauth2_scheme)] = None,
) -> Principal | None:
    """The caller when a valid bearer token is sent; ``None`` when no token is sent.

    Raises :class:`Unauthorized` for a token that is sent but invalid, or
    whose client was revoked.
    """
    if token is None:
        if request.headers.get("authorization"):
            raise Unauthorized(
                "Use the Bearer scheme with an access token from /v1/oauth/token.",
                headers={"WWW-Authenticate": _challenge("invalid_request")},
            )
        return None
    # fastapi's base ``OAuth2`` scheme hands over the whole header value ("Bearer <token>").
    scheme, _, credentials = token.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise Unauthorized(
            "Use the Bearer scheme with an access token from /v1/oauth/token.",
            headers={"WWW-Authenticate": _challenge("invalid_request")},
        )
    token = credentials.strip()
    try:
        claims = verify_access_token(keys, token, issuer=settings.public_base_url)
    except TokenError as exc:
        raise Unauthorized(
            f"The access token is not valid: {exc.message}.",
            extra={"reason": exc.reason},
            headers={"WWW-Authenticate": _challenge("invalid_token", exc.reason)},
        ) from exc
    client = auth_service.active_client(session=session, client_id=str(claims.get("sub")))
    if client is None:
        raise Unauthorized(
            "The client of this token has been revoked.",
            extra={"reason": "revoked"},
            headers={"WWW-Authenticate": _challenge("invalid_token", "revoked")},
        )
    granted = frozenset(str(claims.get("scope", "")).split()) & frozenset(client.scopes.split())
    return Principal(client_id=client.id, scopes=granted, school_id=client.school_id)


OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]


def require_scopes(security_scopes: SecurityScopes, principal: OptionalPrincipal) -> Principal:
    """The caller, who must hold at least one of the route's scopes.

    401 (with ``WWW-Authenticate``) without a token, 403 ``insufficient_scope``
    when none of the listed scopes was granted.
    """
    wanted = security_scopes.scopes
    scope_str = " ".join(wanted)
    if principal is None:
        raise Unauthorized(
            "This operation needs a bearer access token.",
            headers={"WWW-Authenticate": _challenge(scope=scope_str)},
        )
    if wanted and not any(principal.has(s) for s in wanted):
        raise Forbidden(
            f"This operation needs the scope {' or '.join(wanted)}.",
            headers={"WWW-Authenticate": _challenge("insufficient_scope", scope=scope_str)},
        )
    return principal


StandardsWrite = Annotated[Principal, Security(require_scopes, scopes=["standards:write"])]
RegistryWrite = Annotated[Principal, Security(require_scopes, scopes=["registry:write"])]
#: A school acting for itself or a steward acting for any school; the service checks which.
SchoolActor = Annotated[Principal, Security(require_scopes, scopes=["school:self", "registry:write"])]
WebhooksManage = Annotated[Principal, Security(require_scopes, scopes=["webhooks:manage"])]
ReviewComment = Annotated[Principal, Security(require_scopes, scopes=["review:comment"])]
