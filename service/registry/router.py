"""Registry routes (DESIGN §3 "Registry"): schools and their alignment.

Search is ``search_router.py``; affiliation and verification ``verification_router.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request
from starlette.responses import Response

from service.core.jsonutil import dumps
from service.registry import alignment, service
from service.registry.models import School
from service.registry.schemas import (
    AlignmentAction,
    AlignmentStatement,
    HistoryList,
    SchoolCreate,
    SchoolPublic,
    SchoolUpdate,
)
from service.web.deps import (
    OptionalPrincipal,
    RegistryWrite,
    SchoolActor,
    SessionDep,
    SettingsDep,
)
from service.web.http import (
    CACHE_SHORT,
    JSON,
    clamp_limit,
    conditional_response,
    cursor_value,
    encode_cursor,
    page_response,
)
from service.web.openapi import problems


@asynccontextmanager
async def _lifespan(app: Any) -> AsyncIterator[None]:
    # The publish listener and the lapse job find this app's settings through its engine.
    service.configure(engine=app.state.engine, settings=app.state.settings)
    yield


router = APIRouter(prefix="/v1", tags=["registry"], lifespan=_lifespan)

#: Private representations (with ``contact``) are for one caller only.
CACHE_PRIVATE_NO_STORE = "private, no-store"

IfMatch = Annotated[str | None, Header(description="ETag of the school you last read")]


def _school_response(
    request: Request,
    school: School,
    *,
    base_url: str,
    private: bool,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    body = service.public_dict(school, base_url=base_url, private=private)
    hdrs = {"ETag": service.etag(school, private=private)}
    if private:
        hdrs["Vary"] = "Authorization"
    hdrs.update(headers or {})
    return conditional_response(
        request.headers,
        dumps(body),
        media_type=JSON,
        etag=hdrs.pop("ETag"),
        cache_control=CACHE_PRIVATE_NO_STORE if private else CACHE_SHORT,
        status_code=status_code,
        headers=hdrs,
    )


# --- schools ---------------------------------------------------------------------------------


@router.post("/schools", status_code=201, response_model=SchoolPublic, summary="List a new school (steward)")
def create_school(
    request: Request, body: SchoolCreate, session: SessionDep, settings: SettingsDep, steward: RegistryWrite
) -> Response:
    """Create a school (alignment status ``none``); emits ``school.listed``.
    The response includes the private ``contact`` (it is the steward's own view)."""
    school = service.create_school(
        session=session, data=body, actor=steward, base_url=settings.public_base_url
    )
    location = service.school_url(settings.public_base_url, school.id)
    return _school_response(
        request,
        school,
        base_url=settings.public_base_url,
        private=True,
        status_code=201,
        headers={"Location": location},
    )


@router.get(
    "/schools/{school_id}",
    response_model=SchoolPublic,
    responses=problems(410, s410="The school was delisted"),
    summary="One school",
)
def get_school(
    request: Request, school_id: str, session: SessionDep, settings: SettingsDep, principal: OptionalPrincipal
) -> Response:
    """The public profile (``Cache-Control: public, max-age=60``). A steward, or the
    school's own client, also sees ``contact`` (then ``private, no-store``).
    A delisted school is 410 for everyone else."""
    school = service.visible_school(session=session, school_id=school_id, principal=principal)
    private = service.may_act_for(principal, school_id)
    return _school_response(request, school, base_url=settings.public_base_url, private=private)


@router.patch(
    "/schools/{school_id}",
    response_model=SchoolPublic,
    responses=problems(412, 428),
    summary="Edit a school (merge patch)",
)
def patch_school(
    request: Request,
    school_id: str,
    session: SessionDep,
    settings: SettingsDep,
    actor: SchoolActor,
    patch: Annotated[SchoolUpdate, Body(media_type="application/merge-patch+json")],
    if_match: IfMatch = None,
) -> Response:
    """JSON merge patch (RFC 7396); ``If-Match`` required (428 without, 412 when stale).
    A ``school:self`` client may edit only its own school (403)."""
    school = service.update_school(
        session=session,
        school_id=school_id,
        patch=patch,
        actor=actor,
        if_match=if_match,
        base_url=settings.public_base_url,
    )
    return _school_response(request, school, base_url=settings.public_base_url, private=True)


@router.post(
    "/schools/{school_id}/delist",
    response_model=SchoolPublic,
    responses=problems(409, 412, s409="Already delisted"),
    summary="Delist a school (steward)",
)
def delist_school(
    request: Request,
    school_id: str,
    session: SessionDep,
    settings: SettingsDep,
    steward: RegistryWrite,
    if_match: IfMatch = None,
) -> Response:
    """Remove the school from the public registry; emits ``school.delisted``."""
    school = service.delist_school(
        session=session,
        school_id=school_id,
        actor=steward,
        if_match=if_match,
        base_url=settings.public_base_url,
    )
    return _school_response(request, school, base_url=settings.public_base_url, private=True)


@router.delete(
    "/schools/{school_id}/contact", status_code=204, summary="Erase private contact data (steward)"
)
def erase_contact(school_id: str, session: SessionDep, steward: RegistryWrite) -> Response:
    """Erase the school's private ``contact``; 204."""
    service.erase_contact(session=session, school_id=school_id, actor=steward)
    return Response(status_code=204)


# --- alignment --------------------------------------------------------------------------------


@router.post(
    "/schools/{school_id}/alignment",
    response_model=SchoolPublic,
    responses=problems(409, 412, s409="The school is delisted, or suspended and acting itself"),
    summary="State or renew alignment",
)
def state_alignment(
    request: Request,
    school_id: str,
    body: AlignmentStatement,
    session: SessionDep,
    settings: SettingsDep,
    actor: SchoolActor,
    if_match: IfMatch = None,
) -> Response:
    """The school itself or a steward states alignment with a published version
    (422 otherwise); the status becomes ``aligned``. 409 for a suspended school
    acting itself. Answers the school."""
    school = alignment.state_alignment(
        session=session,
        school_id=school_id,
        statement=body,
        actor=actor,
        if_match=if_match,
        base_url=settings.public_base_url,
    )
    return _school_response(request, school, base_url=settings.public_base_url, private=True)


@router.post(
    "/schools/{school_id}/alignment/withdraw",
    response_model=SchoolPublic,
    responses=problems(409, 412),
    summary="Withdraw alignment",
)
def withdraw_alignment(
    request: Request,
    school_id: str,
    session: SessionDep,
    settings: SettingsDep,
    actor: SchoolActor,
    body: AlignmentAction | None = None,
    if_match: IfMatch = None,
) -> Response:
    """The school itself or a steward withdraws the alignment (status ``withdrawn``)."""
    school = alignment.withdraw_alignment(
        session=session,
        school_id=school_id,
        actor=actor,
        reason=body.reason if body else None,
        if_match=if_match,
        base_url=settings.public_base_url,
    )
    return _school_response(request, school, base_url=settings.public_base_url, private=True)


@router.post(
    "/schools/{school_id}/alignment/suspend",
    response_model=SchoolPublic,
    responses=problems(409, 412),
    summary="Suspend alignment (steward)",
)
def suspend_alignment(
    request: Request,
    school_id: str,
    session: SessionDep,
    settings: SettingsDep,
    steward: RegistryWrite,
    body: AlignmentAction | None = None,
    if_match: IfMatch = None,
) -> Response:
    """Suspend the alignment; the school cannot change it itself until a steward acts."""
    school = alignment.suspend_alignment(
        session=session,
        school_id=school_id,
        actor=steward,
        reason=body.reason if body else None,
        if_match=if_match,
        base_url=settings.public_base_url,
    )
    return _school_response(request, school, base_url=settings.public_base_url, private=True)


@router.get(
    "/schools/{school_id}/alignment/history",
    response_model=HistoryList,
    responses=problems(410, s410="The school was delisted"),
    summary="Alignment history",
)
def alignment_history(
    request: Request,
    school_id: str,
    session: SessionDep,
    settings: SettingsDep,
    principal: OptionalPrincipal,
    limit: Annotated[int | None, Query(ge=1, le=200, description="1–200, default 50")] = None,
    cursor: Annotated[str | None, Query()] = None,
) -> Response:
    """Every statement and status change, oldest first. ``actor`` is a role
    (``school``, ``steward``, ``system``), never a client id."""
    service.visible_school(session=session, school_id=school_id, principal=principal)
    size = clamp_limit(limit)
    after = cursor_value(cursor, "after", int)
    rows = alignment.history(session=session, school_id=school_id, after=after, limit=size + 1)
    page = rows[:size]
    next_cursor = encode_cursor({"after": page[-1].id}) if len(rows) > size else None
    return page_response(
        request.headers,
        [alignment.history_dict(r) for r in page],
        next_cursor,
        base_url=settings.public_base_url,
        path=f"/v1/schools/{school_id}/alignment/history",
        params=[("limit", size), ("cursor", next_cursor)],
        cache_control=CACHE_SHORT,
    )
