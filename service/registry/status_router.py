"""``GET /v1/status-lists/{id}``: the credential status list tokens (``status_lists.py``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from service.registry import status_lists
from service.web import cache
from service.web.http import negotiate
from service.web.openapi import NOT_MODIFIED, problems

router = APIRouter(prefix="/v1", tags=["verification"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A Status List Token (draft-ietf-oauth-status-list), a compact JWS",
        "content": {status_lists.MEDIA_TYPE: {"schema": {"type": "string"}}},
    },
    **NOT_MODIFIED,
    **problems(404, 406),
}


@router.get(
    "/status-lists/{list_id}",
    response_class=Response,
    responses=_RESPONSES,
    summary="A credential status list (signed)",
)
async def get_status_list(
    request: Request, list_id: Annotated[int, Path(ge=1, le=2**31 - 1, description="The list's number")]
) -> Response:
    """The status list token that affiliation credentials refer to in their
    `status.status_list` claim (`application/statuslist+jwt`, ES256, `typ` `statuslist+jwt`):
    claims `sub` (this URI), `iat`, `exp` (one day), `ttl` (300 s) and
    `status_list: {"bits": 2, "lst"}` — `lst` is base64url(zlib(bytes)), 2 bits per entry,
    0 valid, 1 invalid (withdrawn, lapsed, delisted), 2 suspended. A status change is
    served within 2 seconds; an unchanged list keeps its bytes and ETag (304)."""
    negotiate(request.headers.get("accept"), [status_lists.MEDIA_TYPE])
    state = request.app.state
    return await cache.cache_of(state).serve(
        request,
        status_lists.RESOURCE,
        ("status-list", list_id),
        lambda previous: status_lists.build_token(
            engine=state.engine,
            keys=state.keys,
            base_url=state.settings.public_base_url,
            list_id=list_id,
            previous=previous,
        ),
    )
