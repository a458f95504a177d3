"""Liveness and readiness probes."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from service.db import migrations_current
from service.jsonutil import dumps

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process is up")
def healthz() -> Response:
    """Always 200 while the process can answer."""
    return Response(
        dumps({"status": "ok"}), media_type="application/json", headers={"Cache-Control": "no-store"}
    )


@router.get("/readyz", summary="Readiness: database reachable and migrated")
async def readyz(request: Request) -> Response:
    """200 when the database answers and is at the newest migration, else 503."""
    engine = request.app.state.engine

    def check() -> dict[str, bool]:
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception:  # noqa: BLE001 - any failure means not ready
            return {"database": False, "migrations": False}
        try:
            current = migrations_current(engine)
        except Exception:  # noqa: BLE001
            current = False
        return {"database": True, "migrations": current}

    checks = await run_in_threadpool(check)
    ok = all(checks.values())
    headers = {"Cache-Control": "no-store"}
    if not ok:
        headers["Retry-After"] = "5"
    return Response(
        dumps({"status": "ready" if ok else "not ready", "checks": checks}),
        status_code=200 if ok else 503,
        media_type="application/json",
        headers=headers,
    )
