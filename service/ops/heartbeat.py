"""A liveness file for processes without an HTTP port (``imi-api worker --heartbeat FILE``)."""

from __future__ import annotations

import asyncio
from pathlib import Path


async def touch_heartbeat(path: Path, interval_s: float = 10.0) -> None:
    """Touch ``path`` every ``interval_s`` seconds for as long as the event loop runs.

    A worker's liveness probe checks the file's age (e.g. older than 60 s means
    the loop is stuck or the process is gone). Cancel the task to stop.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        path.touch()
        await asyncio.sleep(interval_s)
