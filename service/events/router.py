"""The public change feed ``GET /v1/events`` (DESIGN §3, §5)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from service.core.errors import Gone, Unprocessable
from service.events import service
from service.events.schemas import EventList
from service.web.deps import SessionDep, SettingsDep
from service.web.http import MAX_BIGINT, clamp_limit, page_response
from service.web.openapi import problems

router = APIRouter(prefix="/v1", tags=["events"])


@router.get(
    "/events",
    response_model=EventList,
    responses=problems(410, s410="`after` is older than the retained window: load `/v1/snapshot`"),
    summary="The change feed, oldest first",
)
def list_events(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    after: Annotated[int, Query(ge=0, le=MAX_BIGINT, description="Return events with a larger sequence")] = 0,
    type: Annotated[list[str] | None, Query(description="Only these types (repeatable)")] = None,
    limit: Annotated[int | None, Query(ge=1, le=200)] = None,
) -> Response:
    """Events with ``sequence > after`` in sequence order, gap-free over all events.

    ``next_cursor`` is the sequence to pass as ``after`` for the next page
    (``null`` when this page reached the newest event). 410 when ``after`` is
    older than the retained window: load ``/v1/snapshot`` and follow on from
    its ``sequence``.
    """
    size = clamp_limit(limit)
    types = [t for t in (type or []) if t]
    unknown = sorted(set(types) - set(service.EVENT_TYPES))
    if unknown:
        # A typo would otherwise look like "nothing happened" to a catching-up receiver.
        raise Unprocessable(
            f"Unknown event type(s) {unknown}; see /v1/webhooks/event-types.",
            extra={"known_types": list(service.EVENT_TYPES)},
        )
    pruned = service.pruned_through(session)
    if after < pruned:
        raise Gone(
            f"Events up to sequence {pruned} are no longer kept; load the snapshot and "
            "follow the feed from its sequence.",
            extra={"snapshot": "/v1/snapshot", "oldest_available_after": pruned},
        )
    rows = service.list_events(session, after=after, types=types, limit=size + 1)
    page = rows[:size]
    next_cursor = str(page[-1].sequence) if len(rows) > size else None
    return page_response(
        request.headers,
        [service.event_payload(e) for e in page],
        next_cursor,
        base_url=settings.public_base_url,
        path="/v1/events",
        params=[("after", next_cursor), *[("type", t) for t in types], ("limit", size)],
        cache_control="no-cache",
    )
