"""``GET /v1/snapshot``: the full public state for list-then-watch sync (see ``snapshot.py``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

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
    `links.affiliation` has one). Streamed from a database cursor (chunked) when it is not
    in memory; `ETag` over the state it reflects, `Cache-Control: public, max-age=60`.
    """
    state = request.app.state
    base_url = state.settings.public_base_url

    def open_stream() -> cache.Streamed:
        stream = snapshot.open_stream(engine=state.engine, base_url=base_url)
        return cache.Streamed(
            headers={"ETag": stream.etag, "Cache-Control": CACHE_SHORT, "Vary": "Accept, Accept-Encoding"},
            media_type=JSON,
            chunks=stream.chunks,
            close=stream.close,
        )

    return await cache.cache_of(state).serve_streamed(request, snapshot.RESOURCE, ("snapshot",), open_stream)
