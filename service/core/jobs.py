"""Periodic jobs run by the delivery worker (``imi-api worker`` or in-process).

Domains register a job with :func:`register`; the worker calls :func:`run_due`
on its tick. A job is ``fn(session, now)`` returning how many rows it changed;
it runs in its own transaction and must be safe when several workers run it at
once (claim rows with ``FOR UPDATE SKIP LOCKED`` or use idempotent updates).
``now`` is injectable so tests can move the clock.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlmodel import Session

from service.core.db import transaction, utcnow

log = logging.getLogger("service.core.jobs")

JobFn = Callable[[Session, dt.datetime], int]


@dataclass
class Job:
    """A named job and its interval in seconds; ``last_run`` is monotonic seconds."""

    name: str
    interval_s: float
    fn: JobFn
    last_run: float = field(default=float("-inf"))


_jobs: dict[str, Job] = {}


def register(name: str, interval_s: float, fn: JobFn) -> None:
    """Register (or replace) the job ``name`` to run every ``interval_s`` seconds."""
    _jobs[name] = Job(name=name, interval_s=interval_s, fn=fn)


def registered() -> list[str]:
    """Names of the registered jobs."""
    return sorted(_jobs)


def run_job(engine: Engine, name: str, *, now: dt.datetime | None = None) -> int:
    """Run one job now in its own transaction; returns the rows it changed.

    Raises ``KeyError`` for an unknown job.
    """
    job = _jobs[name]
    with transaction(engine) as session:
        changed = job.fn(session, now or utcnow())
    job.last_run = time.monotonic()
    return changed


def run_due(engine: Engine, *, now: dt.datetime | None = None) -> dict[str, int]:
    """Run every job whose interval has passed; failures are logged, not raised."""
    results: dict[str, int] = {}
    mono = time.monotonic()
    for job in list(_jobs.values()):
        if mono - job.last_run < job.interval_s:
            continue
        try:
            results[job.name] = run_job(engine, job.name, now=now)
        except Exception:  # noqa: BLE001 - one failing job must not stop the others
            log.exception("job %s failed", job.name)
            job.last_run = mono
    return results
