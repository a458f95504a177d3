"""The public change feed ``GET /v1/events`` (DESIGN §3, §5)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from service.core.db import transaction
from service.core.errors import Gone, Unprocessable
from service.core.jsonutil import dumps
from service.events import service
from service.events.schemas import EventList
from service.web import cache
from service.web.http import JSON, MAX_BIGINT, clamp_limit, make_etag, next_link
from service.web.openapi import problems

router = APIRouter(prefix="/v1", tags=["events"])

#: The filter query parameters, shared with the Atom feeds (``service/feeds``).
FILTER_HELP = {
    "country": "ISO 3166-1 alpha-2; school events of these countries only, before or after the "
    "event (a school moving from DE to AT is in both; repeatable)",
    "document": "document slug; standards events of these documents only (repeatable)",
    "language": "BCP 47; translation events of these languages only, as RFC 4647 basic ranges "
    "(de also matches de-CH; repeatable)",
    "status": "alignment status; school events leaving the school in this status, or moving it "
    "out of it, only (repeatable)",
}


#: The change domain retention touches when it prunes events (``service/ops/retention.py``).
PRUNED = "events.pruned"
#: A page of the feed that reached the newest event changes with the next one; a full page (its
#: ``next_cursor`` set) holds the same events for ever, until retention prunes them.
FEED = cache.Resource(
    route="/v1/events",
    domains=(*sorted({service.domain_of(t) for t in service.EVENT_TYPES}), PRUNED),
)
FEED_FULL_PAGE = cache.Resource(route="/v1/events", domains=(PRUNED,))


@router.get(
    "/events",
    response_model=EventList,
    responses=problems(410, s410="`after` is older than the retained window: load `/v1/snapshot`"),
    summary="The change feed, oldest first",
)
async def list_events(
    request: Request,
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

    Pages are public reads of the public-representation cache: a full page is kept until
    retention prunes its events, the newest page until the next event.
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
    raw = {"country": country, "document": document, "language": language}
    state = request.app.state
    key = ("events", after, tuple(types), *(tuple(v or ()) for v in raw.values()), size)
    return await cache.cache_of(state).serve(
        request, FEED, key, lambda _previous: _page(state, after, types, raw, size)
    )


def _page(
    state: Any, after: int, types: list[str], raw: dict[str, list[str] | None], size: int
) -> cache.Built:
    """One page of the feed (blocking); :class:`Gone` before the retained window, 422 for
    unknown filter codes."""
    with transaction(state.engine, readonly=True) as session:
        filters = service.read_filters(raw, session)
        pruned = service.pruned_through(session)
        if after < pruned:
            raise Gone(
                f"Events up to sequence {pruned} are no longer kept; load the snapshot and "
                "follow the feed from its sequence.",
                extra={"snapshot": "/v1/snapshot", "oldest_available_after": pruned},
            )
        rows = service.list_events(session, after=after, types=types, limit=size + 1, filters=filters)
        page = [service.event_payload(e) for e in rows[:size]]
    next_cursor = str(page[-1]["sequence"]) if len(rows) > size else None
    body = dumps({"data": page, "next_cursor": next_cursor})
    headers = {"ETag": make_etag(body), "Cache-Control": "no-cache", "Vary": "Accept, Accept-Encoding"}
    if next_cursor:
        params = [
            ("after", next_cursor),
            *[("type", t) for t in types],
            *[(name, v) for name, values in filters.items() for v in values],
            ("limit", size),
        ]
        headers["Link"] = next_link(state.settings.public_base_url, "/v1/events", params)
    return cache.Built(
        body=body,
        media_type=JSON,
        headers=headers,
        resource=FEED_FULL_PAGE if next_cursor else None,
    )
