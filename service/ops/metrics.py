"""``GET /metrics``: Prometheus text exposition of the request statistics and collectors."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from service.core import metrics as core_metrics

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format 0.0.4)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
async def metrics(request: Request) -> Response:
    """Request counters and latency by route template, event sequence, webhook
    delivery gauges and process metrics. Restrict it at the ingress in production."""
    stats: core_metrics.HttpStats = request.app.state.http_stats
    families = stats.families()  # on the loop thread: the only writer runs here too
    families.extend(await run_in_threadpool(core_metrics.collect_scrape_time, request.app.state.engine))
    return Response(
        core_metrics.exposition(families),
        media_type=core_metrics.CONTENT_TYPE,
        headers={"Cache-Control": "no-store"},
    )
