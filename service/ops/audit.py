"""``GET /v1/audit`` — the audit log for registry stewards and standards editors.

Newest first, cursor-paginated (``next_cursor`` in the body and an RFC 8288
``Link`` header), optionally filtered by ``action``. Entries hold ids and
public facts only (see :mod:`service.core.audit`).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Security
from pydantic import BaseModel
from starlette.responses import Response

from service.core import audit
from service.security.clients import Principal
from service.web.deps import SessionDep, SettingsDep, require_scopes
from service.web.http import CACHE_PRIVATE, clamp_limit, cursor_value, encode_cursor, json_response, next_link

router = APIRouter(prefix="/v1", tags=["operations"])

AuditReader = Annotated[Principal, Security(require_scopes, scopes=["registry:write", "standards:write"])]


class AuditEntryPublic(BaseModel):
    """One write: who (``actor``: a client id, ``cli`` or ``system``), what, on which resource, when."""

    id: int
    at: dt.datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]


class AuditList(BaseModel):
    """A page of entries, newest first; pass ``next_cursor`` as ``cursor`` for the next one."""

    data: list[AuditEntryPublic]
    next_cursor: str | None


@router.get("/audit", response_model=AuditList, summary="The audit log, newest first")
def list_audit(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    _reader: AuditReader,
    action: Annotated[str | None, Query(max_length=80, description="Only this action")] = None,
    limit: Annotated[int | None, Query(ge=1, le=200)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Every write with its actor and time; needs ``registry:write`` or ``standards:write``."""
    size = clamp_limit(limit)
    before = cursor_value(cursor, "before", int)
    rows = audit.list_entries(session, before_id=before, action=action, limit=size + 1)
    page = rows[:size]
    next_cursor = None
    headers: dict[str, str] = {}
    if len(rows) > size and page[-1].id is not None:
        next_cursor = encode_cursor({"before": page[-1].id})
        params: list[tuple[str, Any]] = [("action", action), ("limit", size), ("cursor", next_cursor)]
        headers["Link"] = next_link(settings.public_base_url, "/v1/audit", params)
    body = {
        "data": [
            {
                "id": e.id,
                "at": e.at,
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "details": e.details,
            }
            for e in page
        ],
        "next_cursor": next_cursor,
    }
    return json_response(request.headers, body, cache_control=CACHE_PRIVATE, headers=headers)
