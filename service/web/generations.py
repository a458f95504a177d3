"""The change generations as this process knows them: the clock of the public-representation cache.

An entry of the cache (``cache.py``) records the generations of its domains
(``service.core.changes``) read before its build and is served only while they
are unchanged: at once after a commit in this process (the local epochs), within
:data:`POLL_S` of another process's (one small query of the ``change_generations``
table; DESIGN §4 allows 2 seconds).
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from service.core import changes

#: How stale the view of other processes' writes may get (seconds).
POLL_S = 0.5


class Generations:
    """One database's change generations as this process knows them.

    ``stamp(domains)`` is a tuple of ``(database generation, local epoch)`` per
    domain; ``version`` grows whenever a poll saw any generation move.
    """

    def __init__(self, engine: Engine, *, poll_s: float = POLL_S) -> None:
        self._engine = engine.execution_options(imi_readonly=True)
        self.poll_s = poll_s
        self._db: dict[str, int] = {}
        self.version = 0
        self.polled_at = float("-inf")
        self._polling: asyncio.Future[None] | None = None

    def stamp(self, domains: tuple[str, ...]) -> tuple[int, ...]:
        """The current stamp of ``domains`` (no I/O); it holds ``-1`` while a commit of this
        process touching one of them is under way."""
        db = self._db
        out: list[int] = []
        for domain in domains:
            out.append(db.get(domain, 0))
            out.append(changes.local_epoch(domain))
        return tuple(out)

    def poll_due(self) -> bool:
        """Whether the database should be asked again before trusting the stamps."""
        return time.monotonic() - self.polled_at >= self.poll_s

    def poll(self) -> dict[str, int]:
        """Read the database's generations (blocking); returns them."""
        with self._engine.connect() as conn:
            return changes.read_generations(conn)

    def stamp_now(self, domains: tuple[str, ...]) -> tuple[int, ...]:
        """:meth:`stamp` after a poll when one is due (blocking: for worker threads)."""
        if self.poll_due():
            self.apply(self.poll())
        return self.stamp(domains)

    def apply(self, generations: dict[str, int]) -> None:
        """Adopt what :meth:`poll` read (on the event loop)."""
        if generations != self._db:
            self._db = generations
            self.version += 1
        self.polled_at = time.monotonic()

    async def refresh(self) -> None:
        """Poll in a worker thread when due; concurrent callers share one poll.

        A failed poll (the database is down) is not retried before the next
        interval: cached answers stay served meanwhile.
        """
        if not self.poll_due():
            return
        running = self._polling
        if running is not None:
            await asyncio.shield(running)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._polling = future
        try:
            self.apply(await run_in_threadpool(self.poll))
        except Exception:  # noqa: BLE001 - the route path reports an unreachable database
            self.polled_at = time.monotonic()
        finally:
            self._polling = None
            future.set_result(None)
