"""The application factory and its lifespan.

``create_app(settings)`` wires the engine, the signing keys, the routers, the
error handlers and the middleware; the lifespan starts the in-process
delivery worker when asked.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.core import errors
from service.core.config import Settings, get_settings
from service.core.db import make_engine, transaction
from service.core.logs import configure_logging
from service.events.router import router as events_router
from service.feeds.router import router as feeds_router
from service.ops import retention
from service.ops.audit import router as audit_router
from service.ops.metrics import router as metrics_router
from service.ops.probes import router as ops_router
from service.registry import status_lists
from service.registry.embeds import router as embeds_router
from service.registry.router import router as registry_router
from service.registry.search_router import router as search_router
from service.registry.status_router import router as status_lists_router
from service.registry.verification_router import router as verification_router
from service.security import clients as auth_service
from service.security.keys import KeyStore
from service.snapshot.router import router as snapshot_router
from service.standards.review_router import router as review_router
from service.standards.router import router as standards_router
from service.transparency import log as transparency_log
from service.transparency.router import router as transparency_router
from service.transparency.signer import load_signer
from service.web import cache, edge
from service.web import openapi as openapi_doc
from service.web.front import ProblemOnError, ServiceApp
from service.web.idempotency import IdempotencyMiddleware
from service.web.middleware import BodyLimit, HeadAsGet
from service.web.oauth import router as auth_router
from service.web.public_reads import PublicReads
from service.webhooks import fanout as webhook_fanout
from service.webhooks import worker as webhook_worker
from service.webhooks.contracts import publish_contracts, register_openapi_webhooks
from service.webhooks.router import router as webhooks_router

log = logging.getLogger("service")

DESCRIPTION = """\
Publishes the IMI Network's *Training Standards and Ethical Guidelines* (every
version, with translations, regional notes and clause-level diffs), keeps the
public registry of training schools that state alignment with them, and sends
signed webhooks (Standard Webhooks) when either changes.

Errors are RFC 9457 problem documents. Write operations need an OAuth 2.0
bearer token from `POST /v1/oauth/token` (client credentials).
"""


def build_keys(settings: Settings) -> KeyStore:
    """The key store; retired keys stay published as long as anything they signed lives
    (access tokens, credentials: ``IMI_CREDENTIAL_TTL_S``, 30 days by default)."""
    retention = max(settings.token_ttl_s, settings.credential_ttl_s) + 300
    return KeyStore(settings.keys_dir, retention_s=retention)


def backfill(settings: Settings) -> tuple[int, int]:
    """After migrating: append the events the transparency log lacks and give every school
    a status list entry (a database from before either existed); ``(leaves, entries)`` added.
    Idempotent, and safe beside running replicas (both take the event counter's lock)."""
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        with transaction(engine) as session:
            leaves = transparency_log.catch_up(session)
            entries = status_lists.assign_missing(session)
    finally:
        engine.dispose()
    return leaves, entries


#: ``sys.setswitchinterval`` of the API server process (seconds); see :func:`app_from_env`.
GIL_SWITCH_INTERVAL_S = 0.0001


def create_app(settings: Settings | None = None) -> ServiceApp:
    """Build the ASGI application for ``settings`` (default: from the environment).

    The database must already be migrated (``imi-api migrate`` or ``serve``).
    """
    settings = settings or get_settings()
    engine = make_engine(settings.database_url)
    keys = build_keys(settings)
    keys.ensure()
    transparency_log.configure(enabled=settings.transparency_log)
    auth_service.configure_hasher(settings.secret_hash_profile)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = None
        if settings.in_process_worker:
            worker = await webhook_worker.start_in_process(settings=settings, engine=engine)
        try:
            yield
        finally:
            if worker is not None:
                await worker.stop()
            engine.dispose()

    app = ServiceApp(
        title="IMI Standards API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.keys = keys
    app.state.log_signer = load_signer(settings)
    app.state.public_cache = public_cache = cache.PublicCache(
        engine, max_entries=settings.cache_max_entries, max_bytes=settings.cache_max_bytes
    )

    errors.install_handlers(app)
    app.include_router(ops_router)
    app.include_router(auth_router)
    app.include_router(standards_router)
    app.include_router(review_router)
    app.include_router(search_router)  # before the schools: GET /v1/schools reads first in OpenAPI
    app.include_router(registry_router)
    app.include_router(verification_router)
    app.include_router(embeds_router)
    app.include_router(events_router)
    app.include_router(status_lists_router)
    app.include_router(transparency_router)
    app.include_router(snapshot_router)
    app.include_router(feeds_router)
    app.include_router(webhooks_router)
    register_openapi_webhooks(app.webhooks)
    openapi_doc.install(app)  # errors are documented as problem+json
    publish_contracts(app)  # webhook payloads: the catalogue's very schemas, with examples
    # The fan-out listener schedules first attempts retry_schedule[0] after the event.
    webhook_fanout.configure(first_delay_s=settings.retry_schedule[0])
    app.include_router(audit_router)
    app.include_router(metrics_router)

    # FastAPI's own stack, innermost first; ProblemOnError turns an escaped exception into a
    # problem response (inside FastAPI's ServerErrorMiddleware, which would answer plain text).
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(HeadAsGet)
    app.add_middleware(BodyLimit)
    app.add_middleware(ProblemOnError)
    # In front of FastAPI (service/web/front.py): the edge (security headers and CORS, request
    # id, metrics, logs, rate limits) around the public-representation cache, so a cached read
    # is answered without entering FastAPI at all.
    edge.install(app, settings, inner=lambda inner: PublicReads(inner, cache=public_cache))
    retention.register_jobs(settings)
    return app


async def run_worker(settings: Settings) -> None:
    """Run the delivery worker alone until SIGTERM/SIGINT (``imi-api worker``), then stop gracefully.

    Lives in the wiring module: importing it registers every domain's listeners
    and periodic jobs (the registry's lapse job); retention jobs depend on ``settings``.
    """
    webhook_fanout.configure(first_delay_s=settings.retry_schedule[0])
    transparency_log.configure(enabled=settings.transparency_log)
    retention.register_jobs(settings)
    engine = make_engine(settings.database_url, pool_size=4)
    worker = webhook_worker.DeliveryWorker(settings=settings, engine=engine)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await worker.start()
    try:
        await stop.wait()
    finally:
        log.info("signal received: stopping the webhook worker")
        await worker.stop()
        engine.dispose()


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory service.main:app_from_env``."""
    settings = get_settings()
    # Each uvicorn worker process configures its own JSON logging.
    configure_logging(settings.log_level)
    # The event loop is busy whenever requests keep coming, so a thread that released the GIL (each
    # sqlite3 step does: every row fetched) waited up to the default 5 ms to get it back. Under the
    # fan-out benchmark's read load: 5 ms -> 0.5 ms took the in-process fan-out from 3.7 s to 1.8 s;
    # 0.5 -> 0.1 ms took a publish from 0.2-0.3 s to 0.15-0.2 s and the in-process fan-out to
    # 1.4-1.6 s (bench/fanout.py). It only matters while a second thread waits for the GIL. The
    # standalone worker keeps the default: it measured no better with a shorter one.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    app = create_app(settings)
    # Everything imported and built so far lives as long as the server process: keep it out of
    # the collector's full passes. Without this, a gen-2 collection triggered by a request's
    # allocations (a publish fanning out to 1,000 endpoints) walked ~130,000 startup objects and
    # stalled the event loop for ~90 ms (bench/fanout.py, read p99). Only here, not in
    # create_app: tests build hundreds of apps in one process, and frozen objects are never freed.
    gc.freeze()
    return app
