"""The baseline: a bare Starlette app answering precomputed bytes (PERFORMANCE.md's 1.00).

It serves the body in ``BENCH_BODY_FILE`` with the headers in ``BENCH_HEADERS_FILE``
(JSON) at every path, and answers ``If-None-Match`` equal to its ETag with 304 —
what the fastest possible server of the same representation does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def create_app() -> Starlette:
    body = Path(os.environ["BENCH_BODY_FILE"]).read_bytes()
    headers: dict[str, str] = json.loads(Path(os.environ["BENCH_HEADERS_FILE"]).read_text())
    media_type = headers.pop("content-type", "application/json")
    etag = headers.get("etag", "")

    async def endpoint(request: Request) -> Response:
        if etag and request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=media_type, headers=headers)

    return Starlette(routes=[Route("/{path:path}", endpoint)])
