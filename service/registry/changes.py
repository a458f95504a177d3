"""Knowing cheaply whether anything public changed, for in-process caches.

Every public change writes an event in its own transaction, and the event
counter (``event_counter.value``) only grows, so "the counter is unchanged"
means "nothing public changed". A :class:`ChangeClock` reads the counter at
most every ``poll_s`` seconds (other processes' writes are seen within that
time) and at once after this process committed an event (an
:func:`service.events.service.on_commit` hook bumps a local generation), so a
client that wrote through this replica reads its own write.
"""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from service.events import service as events
from service.events.models import Event

#: How stale a cache may be with respect to writes made by other processes (seconds).
POLL_S = 0.5

_local_generation = 0
_gen_lock = threading.Lock()


def _bump(_event: Event) -> None:
    global _local_generation
    with _gen_lock:
        _local_generation += 1


events.on_commit(_bump)

Stamp = tuple[int, int]


class ChangeClock:
    """The change stamp of one database: ``(local generation, event counter)``."""

    def __init__(self, engine: Engine, *, poll_s: float = POLL_S) -> None:
        self._engine = engine.execution_options(imi_readonly=True)
        self._poll_s = poll_s
        self._seq = -1
        self._gen = -1
        self._polled = float("-inf")
        self._lock = threading.Lock()

    def cached(self) -> Stamp | None:
        """The stamp when it can be trusted without I/O; ``None`` when a poll is due."""
        if self._gen != _local_generation or time.monotonic() - self._polled >= self._poll_s:
            return None
        return (self._gen, self._seq)

    def current(self) -> Stamp:
        """The stamp, polling the database when due (blocking: call from a worker thread)."""
        stamp = self.cached()
        if stamp is not None:
            return stamp
        # One thread polls; the others that arrived meanwhile reuse its answer.
        with self._lock:
            stamp = self.cached()
            if stamp is not None:
                return stamp
            gen = _local_generation
            with self._engine.connect() as conn:
                value = conn.execute(sa.text("SELECT value FROM event_counter WHERE id = 1")).scalar()
            self._seq, self._gen, self._polled = int(value or 0), gen, time.monotonic()
            return (self._gen, self._seq)
