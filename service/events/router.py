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

#: The filter query parameters, shared with the Atom feeds (``service/feeds``).
FILTER_HELP = {
    "country": "ISO 3166-1 alpha-2; school events of these countries only (repeatable)",
    "document": "document slug; standards events of these documents only (repeatable)",
    "language": "BCP 47; translation events of these languages only (repeatable)",
    "status": "alignment status; school events leaving the school in this status only (repeatable)",
}


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
    country: Annotated[list[str] | None, Query(description=FILTER_HELP["country"])] = None,
    document: Annotated[list[str] | None, Query(description=FILTER_HELP["document"])] = None,
    language: Annotated[list[str] | None, Query(description=FILTER_HELP["language"])] = None,
) -> Response:
    """Events with ``sequence > after`` in sequence order, gap-free over all events.

    ``next_cursor`` is the sequence to pass as ``after`` for the next page
    (``null`` when this page reached the newest event). 410 when ``after`` is
    older than the retained window: load ``/v1/snapshot`` and follow on from
    its ``sequence``. ``country``, ``document`` and ``language`` (each repeatable)
    filter as a webhook endpoint's ``filter`` does: an event that has the attribute
    must have one of the values given; unknown codes are 422. A filtered page has
    gaps in ``sequence``: they are the events the filter left out.
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
    filters = service.read_filters(
        {"country": country, "document": document, "language": language}, session
    )
    pruned = service.pruned_through(session)
    if after < pruned:
        raise Gone(
            f"Events up to sequence {pruned} are no longer kept; load the snapshot and "
            "follow the feed from its sequence.",
            extra={"snapshot": "/v1/snapshot", "oldest_available_after": pruned},
        )
    rows = service.list_events(session, after=after, types=types, limit=size + 1, filters=filters)
    page = rows[:size]
    next_cursor = str(page[-1].sequence) if len(rows) > size else None
    return page_response(
        request.headers,
        [service.event_payload(e) for e in page],
        next_cursor,
        base_url=settings.public_base_url,
        path="/v1/events",
        params=[
            ("after", next_cursor),
            *[("type", t) for t in types],
            *[(name, v) for name, values in filters.items() for v in values],
            ("limit", size),
        ],
        cache_control="no-cache",
    )
