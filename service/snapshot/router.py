"""``GET /v1/snapshot``: the full public state for list-then-watch sync (see ``snapshot.py``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from service.core.db import transaction
from service.registry.schemas import SchoolPublic
from service.snapshot import service as snapshot
from service.standards.schemas import VersionPublic
from service.web import cache
from service.web.http import CACHE_SHORT, JSON

router = APIRouter(prefix="/v1", tags=["sync"])


class SnapshotAffiliation(BaseModel):
    """Is the school affiliated now? (no credential: ``links.affiliation`` serves a signed one)."""

    affiliated: bool
    status: str
    aligned_version: str | None
    reaffirmation_due_by: dt.datetime | None


class SnapshotSchool(SchoolPublic):
    """A listed school's public representation with its affiliation."""

    affiliation: SnapshotAffiliation


class Snapshot(BaseModel):
    """The current version of every document and every listed school, as of event ``sequence``."""

    sequence: int = Field(description="follow on with `GET /v1/events?after=<sequence>`")
    standards: list[VersionPublic]
    schools: list[SnapshotSchool]


_RESPONSES: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified (`If-None-Match`)"},
}


@router.get("/snapshot", response_model=Snapshot, responses=_RESPONSES, summary="The full public state")
async def get_snapshot(request: Request) -> Response:
    """Every document's current version and every listed school with its affiliation, plus
    the event ``sequence`` they reflect, all read in one database snapshot: load it, then
    follow `/v1/events?after=<sequence>` and nothing is missed or seen twice.

    Public fields only (never `contact`); no signed credentials (each school's
    `links.affiliation` has one). `ETag` over the bytes, `Cache-Control: public, max-age=60`.
    """
    state = request.app.state
    settings = state.settings

    def build(_previous: object) -> cache.Built:
        with transaction(state.engine, readonly=True) as session:
            built = snapshot.build_snapshot(session=session, base_url=settings.public_base_url)
        return cache.Built(
            body=built.body,
            media_type=JSON,
            headers={"ETag": built.etag, "Cache-Control": CACHE_SHORT, "Vary": "Accept, Accept-Encoding"},
            expires_at=built.expires_at,
        )

    return await cache.cache_of(state).serve(request, snapshot.RESOURCE, ("snapshot",), build)
