"""Liveness and readiness probes."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from service.core.db import alembic_config
from service.core.jsonutil import dumps

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process is up")
async def healthz() -> Response:
    """Always 200 while the process can answer."""
    return Response(
        dumps({"status": "ok"}), media_type="application/json", headers={"Cache-Control": "no-store"}
    )


@lru_cache(maxsize=1)
def _code_revisions() -> tuple[frozenset[str], frozenset[str]]:
    """(head revisions, every revision) of the migrations shipped with this code."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return frozenset(script.get_heads()), frozenset(r.revision for r in script.walk_revisions())


def migration_state(conn: sa.Connection) -> str:
    """``current``, ``behind`` (migrations not applied yet) or ``ahead``.

    ``ahead`` means a newer release already migrated the database (a revision
    this code does not know): migrations are additive, so this replica keeps
    serving during a rolling update instead of going unready.
    """
    from alembic.runtime.migration import MigrationContext

    heads, known = _code_revisions()
    db_heads = set(MigrationContext.configure(conn).get_current_heads())
    if db_heads == heads:
        return "current"
    if db_heads - known:
        return "ahead"
    return "behind"


_READINESS: dict[str, Any] = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ready", "not ready"]},
        "checks": {"type": "object"},
    },
}


@router.get(
    "/readyz",
    responses={
        200: {"description": "Ready", "content": {"application/json": {"schema": _READINESS}}},
        503: {
            "description": "Not ready (`checks` says what failed; `Retry-After`)",
            "content": {"application/json": {"schema": _READINESS}},
        },
    },
    summary="Readiness: database reachable and migrated",
)
async def readyz(request: Request) -> Response:
    """200 when the database answers and its schema is current (or newer), else 503
    with ``Retry-After``. With ``IMI_LOAD_SAMPLE`` the sample data must be loaded too."""
    engine = request.app.state.engine
    load_sample = request.app.state.settings.load_sample

    def check() -> dict[str, Any]:
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
                state = migration_state(conn)
        except Exception:  # noqa: BLE001 - any failure means not ready
            return {"database": False, "migrations": False}
        checks: dict[str, Any] = {"database": True, "migrations": state != "behind", "schema": state}
        if load_sample:
            try:
                from service.sample.standards import database_is_empty

                checks["sample"] = not database_is_empty(engine)
            except Exception:  # noqa: BLE001
                checks["sample"] = False
        return checks

    checks = await run_in_threadpool(check)
    ok = all(v for k, v in checks.items() if k != "schema")
    headers = {"Cache-Control": "no-store"}
    if not ok:
        headers["Retry-After"] = "5"
    return Response(
        dumps({"status": "ready" if ok else "not ready", "checks": checks}),
        status_code=200 if ok else 503,
        media_type="application/json",
        headers=headers,
    )
