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
from service.web.http import CACHE_SHORT, JSON, make_etag, negotiate
from service.web.openapi import problems

router = APIRouter(prefix="/v1", tags=["sync"])

#: The compact JWS serialization (RFC 7515 §9.2.1).
JOSE = "application/jose"


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
    200: {
        "description": "The snapshot; with `Accept: application/jose` a compact JWS (ES256) whose payload "
        "is exactly these JSON bytes and whose protected header carries the log checkpoint they reflect",
        "content": {JOSE: {"schema": {"type": "string"}}},
    },
    304: {"description": "Not modified (`If-None-Match`)"},
    **problems(406),
}


@router.get("/snapshot", response_model=Snapshot, responses=_RESPONSES, summary="The full public state")
async def get_snapshot(request: Request) -> Response:
    """Every document's current version and every listed school with its affiliation, plus
    the event ``sequence`` they reflect, all read in one database snapshot: load it, then
    follow `/v1/events?after=<sequence>` and nothing is missed or seen twice.

    Public fields only (never `contact`); no signed credentials (each school's
    `links.affiliation` has one). Streamed from a database cursor (chunked) when it is not
    in memory; `ETag` over the state it reflects, `Cache-Control: public, max-age=60`.

    `Accept: application/jose` answers the same snapshot signed, for mirrors to check offline
    against `/.well-known/jwks.json` (`imi-api verify-snapshot`): a compact JWS (ES256, `typ`
    `imi-snapshot+jws`) whose payload is the exact bytes of the JSON answer and whose
    protected header holds `checkpoint`, the transparency log's signed checkpoint at
    `sequence` (the log's tree then holds exactly the events the snapshot reflects). A JWS
    holds its whole payload: this form is built in memory.
    """
    state = request.app.state
    base_url = state.settings.public_base_url
    media_type = negotiate(request.headers.get("accept"), [JSON, JOSE])
    public = cache.cache_of(state)
    vary = "Accept, Accept-Encoding"

    if media_type == JSON:

        def open_stream() -> cache.Streamed:
            stream = snapshot.open_stream(engine=state.engine, base_url=base_url)
            return cache.Streamed(
                headers={"ETag": stream.etag, "Cache-Control": CACHE_SHORT, "Vary": vary},
                media_type=JSON,
                chunks=stream.chunks,
                close=stream.close,
                expires_at=stream.expires_at,
            )

        return await public.serve_streamed(request, snapshot.RESOURCE, ("snapshot",), open_stream)

    def sign(_previous: object) -> cache.Built:
        # The document and the checkpoint are read in one database snapshot.
        with transaction(state.engine, readonly=True) as session:
            built = snapshot.build_snapshot(session=session, base_url=base_url)
            body = snapshot.sign_snapshot(
                session=session,
                keys=state.keys,
                signer=state.log_signer,
                body=built.body,
                sequence=built.sequence,
            )
        return cache.Built(
            body=body,
            media_type=JOSE,
            headers={"ETag": make_etag(body), "Cache-Control": CACHE_SHORT, "Vary": vary},
        )

    return await public.serve(request, snapshot.RESOURCE, ("snapshot", JOSE), sign)
