"""Routes of the transparency log: ``/v1/log/*``.

Every read is a public read of the public-representation cache
(``service/web/cache.py``). Proofs and leaves of a given size never change (the log
only grows), so they depend on no change domain; the latest checkpoint depends on
every event's domain (each event is a leaf) and on the witnesses' domain; the key
document on the witnesses' domain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from service.core.db import transaction
from service.core.errors import PayloadTooLarge, Unprocessable
from service.core.jsonutil import dumps
from service.events import service as events
from service.transparency import log, notes, service, witnesses
from service.transparency.schemas import (
    ConsistencyProof,
    CosignatureReceipt,
    InclusionProof,
    LeafPage,
    LogKey,
)
from service.web import cache
from service.web.http import (
    CACHE_IMMUTABLE_VERSION,
    DIGITS_ONLY,
    JSON,
    MAX_BIGINT,
    TEXT,
    json_response,
    make_etag,
    require_utf8_text,
)
from service.web.openapi import NOT_MODIFIED, problems

router = APIRouter(prefix="/v1/log", tags=["transparency log"])

#: Each event touches the domain of its type's first segment, and is a leaf.
EVENT_DOMAINS = tuple(sorted({events.domain_of(t) for t in events.EVENT_TYPES}))
CHECKPOINT = cache.Resource(
    route="/v1/log/checkpoint", domains=(*EVENT_DOMAINS, log.DOMAIN, witnesses.DOMAIN), max_age_s=3600.0
)
#: A past checkpoint (``?size=``): only new cosignatures change it.
CHECKPOINT_AT = cache.Resource(route="/v1/log/checkpoint", domains=(witnesses.DOMAIN,), max_age_s=3600.0)
KEY = cache.Resource(route="/v1/log/key", domains=(witnesses.DOMAIN,), max_age_s=3600.0)
INCLUSION = cache.Resource(route="/v1/log/proof/inclusion", domains=(), max_age_s=86400.0)
CONSISTENCY = cache.Resource(route="/v1/log/proof/consistency", domains=(), max_age_s=86400.0)
#: Leaf bytes disappear when retention prunes their event: rebuilt hourly.
LEAVES = cache.Resource(route="/v1/log/leaves", domains=(), max_age_s=3600.0)

#: Checkpoints change with every event: revalidate each time (their ETag makes it a 304).
CACHE_REVALIDATE = "public, no-cache"

Size = Annotated[int, Query(ge=1, le=MAX_BIGINT), DIGITS_ONLY]


async def _serve(
    request: Request,
    resource: cache.Resource,
    key: tuple[Any, ...],
    produce: Callable[[Any], bytes],
    *,
    media_type: str = JSON,
    cache_control: str = CACHE_IMMUTABLE_VERSION,
) -> Response:
    """Serve ``produce(session)`` (run in one read transaction) through the public cache."""
    state = request.app.state

    def build(_previous: object) -> cache.Built:
        with transaction(state.engine, readonly=True) as session:
            body = produce(session)
        return cache.Built(
            body=body,
            media_type=media_type,
            headers={"ETag": make_etag(body), "Cache-Control": cache_control, "Vary": "Accept-Encoding"},
        )

    return await cache.cache_of(state).serve(request, resource, key, build)


_TEXT_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A C2SP signed note: the checkpoint, then the log's and the witnesses' signatures",
        "content": {TEXT: {"schema": {"type": "string"}}},
    },
    **NOT_MODIFIED,
    **problems(422, s422="`size` is larger than the log"),
}


@router.get("/checkpoint", response_class=Response, responses=_TEXT_RESPONSE, summary="The signed checkpoint")
async def get_checkpoint(
    request: Request,
    size: Annotated[
        int | None, Query(ge=0, le=MAX_BIGINT, description="A past tree size"), DIGITS_ONLY
    ] = None,
) -> Response:
    """The newest checkpoint (C2SP tlog-checkpoint; `text/plain; charset=utf-8`): origin, tree
    size (the newest event's sequence) and base64 root hash, a blank line, the log's Ed25519
    signature line, then one line per registered witness that cosigned this size.
    `?size=` gives a past checkpoint (with the cosignatures it collected)."""
    signer = request.app.state.log_signer

    def produce(session: Any) -> bytes:
        return service.checkpoint_note(session=session, signer=signer, size=size)[1].encode()

    return await _serve(
        request,
        CHECKPOINT if size is None else CHECKPOINT_AT,
        ("log.checkpoint", size),
        produce,
        media_type=TEXT,
        cache_control=CACHE_REVALIDATE,
    )


@router.get(
    "/key",
    response_model=LogKey,
    responses={
        200: {"description": "The log's vkey and the registered witnesses (`public, max-age=300`)"},
        **NOT_MODIFIED,
    },
    summary="The log's public key and its witnesses",
)
async def get_key(request: Request) -> Response:
    """The Ed25519 key that signs checkpoints (raw base64 and as a C2SP vkey) and the
    registered witnesses with their cosigner vkeys and the newest size each cosigned."""
    signer = request.app.state.log_signer
    return await _serve(
        request,
        KEY,
        ("log.key",),
        lambda session: dumps(service.key_document(session=session, signer=signer)),
        cache_control="public, max-age=300",
    )


@router.get(
    "/proof/inclusion",
    response_model=InclusionProof,
    responses={
        200: {"description": "The proof; it never changes, so it is cached for an hour"},
        **NOT_MODIFIED,
        **problems(422, s422="Out of range: `sequence` ≤ `size` ≤ the log's size"),
    },
    summary="Inclusion proof of an event",
)
async def get_inclusion(request: Request, sequence: Size, size: Size) -> Response:
    """RFC 9162 inclusion proof of event `sequence` (leaf `sequence − 1`) in the tree of
    `size` leaves: `{"index", "tree_size", "leaf_hash", "proof": [...]}`, hashes in base64,
    the proof from the leaf up."""
    return await _serve(
        request,
        INCLUSION,
        ("log.inclusion", sequence, size),
        lambda session: dumps(service.inclusion(session=session, sequence=sequence, size=size)),
    )


@router.get(
    "/proof/consistency",
    response_model=ConsistencyProof,
    responses={
        200: {"description": "The proof (empty when `from` = `to`); it never changes: cached for an hour"},
        **NOT_MODIFIED,
        **problems(422, s422="Out of range: `from` ≤ `to` ≤ the log's size"),
    },
    summary="Consistency proof between two tree sizes",
)
async def get_consistency(
    request: Request,
    first: Annotated[int, Query(alias="from", ge=1, le=MAX_BIGINT), DIGITS_ONLY],
    second: Annotated[int, Query(alias="to", ge=1, le=MAX_BIGINT), DIGITS_ONLY],
) -> Response:
    """RFC 9162 consistency proof that the tree of `to` leaves extends the tree of `from`
    leaves: `{"from", "to", "proof": [...]}` (empty when the sizes are equal)."""
    return await _serve(
        request,
        CONSISTENCY,
        ("log.consistency", first, second),
        lambda session: dumps(service.consistency(session=session, first=first, second=second)),
    )


@router.get(
    "/leaves",
    response_model=LeafPage,
    responses={
        200: {"description": "The leaves; a pruned event's `leaf` reads `null`, its hash stays"},
        **NOT_MODIFIED,
        **problems(422, s422="Empty range, more than 256 leaves, or past the log's size"),
    },
    summary="Leaves of the log",
)
async def get_leaves(
    request: Request,
    start: Annotated[int, Query(ge=0, le=MAX_BIGINT, description="First leaf index"), DIGITS_ONLY],
    end: Annotated[int, Query(ge=1, le=MAX_BIGINT, description="One past the last leaf index"), DIGITS_ONLY],
) -> Response:
    """Leaves `[start, end)` (at most 256): `{"data": [{"index", "leaf_hash", "leaf"}]}`;
    `leaf` is the base64 of the event's canonical JSON (RFC 8785, the feed item without
    `log_index`), `null` once retention pruned the event — its hash stays."""
    return await _serve(
        request,
        LEAVES,
        ("log.leaves", start, end),
        lambda session: dumps(service.leaves_page(session=session, start=start, end=end)),
    )


@router.post(
    "/cosignatures",
    response_model=CosignatureReceipt,
    responses={
        200: {"description": "The cosignatures kept: one per registered witness line that verified"},
        **problems(
            400,
            413,
            415,
            422,
            s400="Malformed request",
            s413="The note is larger than 64 KiB",
            s415="The body is not `text/plain` (UTF-8)",
            s422="Not this log's checkpoint, or no valid registered cosignature",
        ),
    },
    summary="Post a witness cosignature",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {TEXT: {"schema": {"type": "string"}}},
            "description": "The checkpoint note with the witness's `cosignature/v1` signature line added",
        }
    },
)
async def post_cosignatures(request: Request) -> Response:
    """A registered witness posts the checkpoint it checked, with its C2SP tlog-cosignature
    line. The cosignature is kept when the checkpoint is this log's (origin, a size it had,
    its root at that size) and the signature verifies with the witness's key; anything
    else is a 422 that stores nothing. Lines of unknown keys are ignored. The body is
    `text/plain` (UTF-8): another media type, or none, is a 415."""
    require_utf8_text(request.headers.get("content-type"), TEXT)
    raw = await request.body()
    if len(raw) > notes.MAX_NOTE_BYTES:
        raise PayloadTooLarge(f"A checkpoint note is at most {notes.MAX_NOTE_BYTES} bytes.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Unprocessable("The note is not UTF-8 text.") from None
    state = request.app.state

    def accept() -> list[dict[str, Any]]:
        with transaction(state.engine) as session:
            return witnesses.accept_cosignatures(session=session, note=text, origin=state.log_signer.origin)

    accepted = await run_in_threadpool(accept)
    return json_response(request.headers, {"accepted": accepted}, cache_control="no-store")
