"""A webhook receiver for the fan-out benchmark: verifies every delivery with the
stock ``standardwebhooks`` library and counts the verified ones.

Secrets come from the JSON file ``BENCH_SECRETS_FILE`` (``{"<n>": "whsec_…"}``
for paths ``/hook/<n>``); ``GET /stats`` answers ``{"verified", "rejected",
"first", "last"}`` (monotonic seconds of the first and last verified delivery).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def create_app() -> Starlette:
    secrets: dict[str, str] = json.loads(Path(os.environ["BENCH_SECRETS_FILE"]).read_text())
    verifiers = {n: Webhook(secret) for n, secret in secrets.items()}
    stats: dict[str, float | int | None] = {"verified": 0, "rejected": 0, "first": None, "last": None}
    seen: set[tuple[str, str]] = set()

    async def hook(request: Request) -> Response:
        n = request.path_params["n"]
        body = await request.body()
        try:
            verifiers[n].verify(body, dict(request.headers))
        except (KeyError, WebhookVerificationError):
            stats["rejected"] = int(stats["rejected"] or 0) + 1
            return Response(status_code=400)
        key = (n, request.headers["webhook-id"])
        if key not in seen:  # at-least-once: count each (endpoint, message) once
            seen.add(key)
            now = time.monotonic()
            stats["verified"] = int(stats["verified"] or 0) + 1
            stats["first"] = stats["first"] or now
            stats["last"] = now
        return Response(status_code=204)

    async def read_stats(_request: Request) -> Response:
        return JSONResponse(stats)

    async def reset(_request: Request) -> Response:
        seen.clear()
        stats.update({"verified": 0, "rejected": 0, "first": None, "last": None})
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route("/hook/{n}", hook, methods=["POST"]),
            Route("/stats", read_stats),
            Route("/reset", reset, methods=["POST"]),
        ]
    )
