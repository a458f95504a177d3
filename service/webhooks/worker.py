"""The delivery worker (placeholder until webhook delivery lands)."""

from __future__ import annotations

from typing import Any


class InProcessWorker:
    """Handle of the worker running inside the API process."""

    async def stop(self) -> None:
        """Stop gracefully."""
        return None


async def start_in_process(*, settings: Any, engine: Any) -> InProcessWorker:
    """Start the worker as tasks on the running event loop."""
    return InProcessWorker()


async def run_standalone(*, settings: Any) -> None:
    """Run the worker until SIGTERM/SIGINT."""
    raise SystemExit("the delivery worker is not built yet")
