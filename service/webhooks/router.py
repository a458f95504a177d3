"""Webhook routes: the event-type catalogue (public) and an association's endpoints
(scope ``webhooks:manage``; an association sees only its own endpoints, others' ids are 404).

URL checks resolve names, so they run here (awaited) before the service call;
everything else is one service call per handler.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from service.core.errors import Unprocessable
from service.core.jsonutil import dumps
from service.events.service import EVENT_TYPES
from service.web.deps import SessionDep, SettingsDep, WebhooksManage
from service.web.http import (
    CACHE_PRIVATE,
    JSON,
    UTCInstant,
    clamp_limit,
    conditional_response,
    cursor_value,
    encode_cursor,
    json_response,
    page_response,
)
from service.webhooks import deliveries, recovery, schemas, service, urlguard
from service.webhooks.endpoint_schemas import (
    DeliveryList,
    DeliveryPublic,
    EndpointCreate,
    EndpointList,
    EndpointPublic,
    EndpointUpdate,
    EndpointWithSecret,
    RecoverResult,
)
from service.webhooks.models import WebhookDelivery

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

_NO_STORE = "no-store"


async def _checked_url(url: str, allowed: frozenset[str]) -> str:
    try:
        await urlguard.check_url(url, allowed=allowed)
    except urlguard.TargetRefused as exc:
        raise Unprocessable(
            f"This webhook URL is not allowed: {exc.reason}.", extra={"field": "url"}
        ) from exc
    return url


def _page(
    request: Request,
    settings: Any,
    path: str,
    items: list[dict[str, Any]],
    next_position: dict[str, Any] | None,
    params: list[tuple[str, Any]],
    cache_control: str = CACHE_PRIVATE,
) -> Response:
    cursor = encode_cursor(next_position) if next_position is not None else None
    return page_response(
        request.headers,
        items,
        cursor,
        base_url=settings.public_base_url,
        path=path,
        params=[("cursor", cursor), *params],
        cache_control=cache_control,
    )


def _queued(request: Request, delivery: WebhookDelivery) -> Response:
    """202 with a delivery just queued (no attempts yet), never stored by caches."""
    return json_response(
        request.headers, deliveries.delivery_public(delivery, []), status_code=202, cache_control=_NO_STORE
    )


_CATALOGUE_BYTES: bytes | None = None


@router.get("/event-types", response_model=schemas.EventTypeList, summary="The event-type catalogue")
def event_types(request: Request) -> Response:
    """Every event type a webhook can carry, with the JSON Schema of its ``data``.

    Public. ``sequenced`` is false only for ``webhook.ping``.
    """
    global _CATALOGUE_BYTES
    if _CATALOGUE_BYTES is None:
        _CATALOGUE_BYTES = dumps({"data": service.catalogue()})
    return conditional_response(
        request.headers, _CATALOGUE_BYTES, media_type=JSON, cache_control="public, max-age=3600"
    )


@router.post(
    "/endpoints",
    status_code=201,
    response_model=EndpointWithSecret,
    summary="Register a webhook endpoint",
    responses={422: {"description": "unknown event type, or a URL that may not be reached"}},
)
async def create_endpoint(
    body: EndpointCreate,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: WebhooksManage,
) -> Response:
    """Register an endpoint; the 201 carries its ``secret`` (shown only here, keep it), or for
    ``"signature_scheme": "ed25519"`` its ``public_key`` (``whpk_…``): deliveries are then
    signed ``v1a`` with a private key that never leaves the service.

    ``event_types`` empty or absent means every type; ``filter`` (``countries``,
    ``documents``, ``languages``) narrows them (unknown codes: 422). Registering sends
    nothing (use ``…/test``); the endpoint receives events created from now on.
    """
    url = await _checked_url(body.url, settings.allowed_target_classes)

    def work() -> dict[str, Any]:
        endpoint, secret = service.create_endpoint(
            session=session,
            owner=principal.client_id,
            url=url,
            event_types=body.event_types,
            description=body.description,
            keys_dir=settings.keys_dir,
            filter=body.filter,
            signature_scheme=body.signature_scheme,
        )
        return service.endpoint_public(endpoint, secret=secret)

    payload = await run_in_threadpool(work)
    return json_response(
        request.headers,
        payload,
        status_code=201,
        cache_control=_NO_STORE,
        headers={"Location": f"{settings.public_base_url}/v1/webhooks/endpoints/{payload['id']}"},
    )


@router.get("/endpoints", response_model=EndpointList, summary="Your webhook endpoints")
def list_endpoints(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: WebhooksManage,
    limit: Annotated[int | None, Query(ge=1, le=200)] = None,
    cursor: str | None = None,
) -> Response:
    """Your endpoints, oldest first; ``next_cursor`` and a ``Link: rel="next"`` when there are more."""
    size = clamp_limit(limit)
    rows = service.list_endpoints(
        session=session, owner=principal.client_id, after_id=cursor_value(cursor, "id", str), limit=size + 1
    )
    page = rows[:size]
    nxt = {"id": page[-1].id} if len(rows) > size else None
    return _page(
        request,
        settings,
        "/v1/webhooks/endpoints",
        [service.endpoint_public(e) for e in page],
        nxt,
        [("limit", size)],
    )


@router.get("/endpoints/{endpoint_id}", response_model=EndpointPublic, summary="One endpoint")
def get_endpoint(
    endpoint_id: str, request: Request, session: SessionDep, principal: WebhooksManage
) -> Response:
    """One of your endpoints (404 for any other id)."""
    endpoint = service.get_endpoint(session=session, owner=principal.client_id, endpoint_id=endpoint_id)
    return json_response(request.headers, service.endpoint_public(endpoint), cache_control=CACHE_PRIVATE)


@router.patch("/endpoints/{endpoint_id}", response_model=EndpointPublic, summary="Change an endpoint")
async def update_endpoint(
    endpoint_id: str,
    body: EndpointUpdate,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: WebhooksManage,
) -> Response:
    """Change ``url``, ``event_types``, ``description``, ``filter`` or ``enabled``.

    ``{"enabled": true}`` re-enables a disabled endpoint and clears its
    failure state (deliveries that failed meanwhile come back with
    ``…/recover``); ``{"enabled": false}`` disables it.
    """
    if body.url is not None:
        await _checked_url(body.url, settings.allowed_target_classes)

    def work() -> dict[str, Any]:
        endpoint = service.update_endpoint(
            session=session, owner=principal.client_id, endpoint_id=endpoint_id, changes=body
        )
        return service.endpoint_public(endpoint)

    payload = await run_in_threadpool(work)
    return json_response(request.headers, payload, cache_control=_NO_STORE)


@router.delete("/endpoints/{endpoint_id}", status_code=204, summary="Delete an endpoint")
def delete_endpoint(endpoint_id: str, session: SessionDep, principal: WebhooksManage) -> Response:
    """Delete the endpoint with its delivery log; nothing more is sent to it."""
    service.delete_endpoint(session=session, owner=principal.client_id, endpoint_id=endpoint_id)
    return Response(status_code=204)


@router.post(
    "/endpoints/{endpoint_id}/rotate-secret",
    response_model=EndpointWithSecret,
    summary="Rotate the signing secret (or Ed25519 key pair)",
)
def rotate_secret(
    endpoint_id: str, request: Request, session: SessionDep, settings: SettingsDep, principal: WebhooksManage
) -> Response:
    """A new secret (returned once). The old one keeps signing beside it — two
    ``v1,`` signatures per message — for ``IMI_WEBHOOK_SECRET_OVERLAP_S``. An ``ed25519``
    endpoint gets a new key pair instead: ``public_key`` is the new one, and
    ``previous_public_key`` keeps signing (two ``v1a,`` signatures) for the overlap."""
    endpoint, secret = service.rotate_secret(
        session=session,
        owner=principal.client_id,
        endpoint_id=endpoint_id,
        keys_dir=settings.keys_dir,
        overlap_s=settings.webhook_secret_overlap_s,
    )
    return json_response(
        request.headers, service.endpoint_public(endpoint, secret=secret), cache_control=_NO_STORE
    )


@router.post(
    "/endpoints/{endpoint_id}/test",
    status_code=202,
    response_model=DeliveryPublic,
    summary="Send a webhook.ping",
)
def send_test(endpoint_id: str, request: Request, session: SessionDep, principal: WebhooksManage) -> Response:
    """Queue an unsequenced ``webhook.ping`` to the endpoint; follow it in ``…/deliveries``."""
    d = deliveries.send_test(session=session, owner=principal.client_id, endpoint_id=endpoint_id)
    return _queued(request, d)


@router.get(
    "/endpoints/{endpoint_id}/deliveries",
    response_model=DeliveryList,
    summary="The endpoint's deliveries with their attempts",
)
def list_deliveries(
    endpoint_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: WebhooksManage,
    status: Annotated[str | None, Query(pattern="^(pending|succeeded|failed)$")] = None,
    limit: Annotated[int | None, Query(ge=1, le=200)] = None,
    cursor: str | None = None,
) -> Response:
    """Newest first, each with every attempt (time, status code, duration, response
    excerpt ≤ 1 KiB, error, next attempt); filter with ``status``."""
    size = clamp_limit(limit)
    rows = deliveries.list_deliveries(
        session=session,
        owner=principal.client_id,
        endpoint_id=endpoint_id,
        before_id=cursor_value(cursor, "id", str),
        limit=size + 1,
        status=status,
    )
    page = rows[:size]
    nxt = {"id": page[-1][0].id} if len(rows) > size else None
    return _page(
        request,
        settings,
        f"/v1/webhooks/endpoints/{endpoint_id}/deliveries",
        [deliveries.delivery_public(d, attempts) for d, attempts in page],
        nxt,
        [("status", status), ("limit", size)],
        cache_control=_NO_STORE,
    )


@router.post(
    "/endpoints/{endpoint_id}/deliveries/{delivery_id}/retry",
    status_code=202,
    response_model=DeliveryPublic,
    summary="Send a delivery again",
)
def retry_delivery(
    endpoint_id: str,
    delivery_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: WebhooksManage,
) -> Response:
    """Send this delivery once more, now (one attempt, same ``webhook-id`` and body)."""
    d = deliveries.retry_delivery(
        session=session,
        owner=principal.client_id,
        endpoint_id=endpoint_id,
        delivery_id=delivery_id,
        schedule_len=len(settings.retry_schedule),
    )
    return _queued(request, d)


@router.post(
    "/endpoints/{endpoint_id}/recover",
    status_code=202,
    response_model=RecoverResult,
    summary="Re-queue failed deliveries since a time",
)
def recover(
    endpoint_id: str,
    request: Request,
    session: SessionDep,
    principal: WebhooksManage,
    since: Annotated[UTCInstant, Query(description="RFC 3339 date-time with offset")],
) -> Response:
    """Re-queue the endpoint's failed deliveries created since ``since`` (each gets the full
    retry schedule again) and create deliveries for events since then, of its types, that it
    never got — older than its registration included (at most 10,000 per call)."""
    requeued, created = recovery.recover(
        session=session, owner=principal.client_id, endpoint_id=endpoint_id, since=since
    )
    return json_response(
        request.headers,
        {"requeued": requeued, "created": created, "since": since},
        status_code=202,
        cache_control=_NO_STORE,
    )


assert set(EVENT_TYPES) <= set(schemas.EVENT_CATALOGUE)
