"""The delivery worker: claims due deliveries, sends them, records the attempts.

Runs in-process under ``imi-api serve`` (:func:`start_in_process`: tasks on
the server's event loop) or alone as ``imi-api worker`` (:func:`service.main.run_worker`,
until SIGTERM/SIGINT) — any number of them against one PostgreSQL database.

- **Claiming** (:mod:`service.webhooks.claims`: the SQL, the leases). A
  worker claims due deliveries under a lease, only as many as it has free
  slots, so a claimed delivery starts at once and its lease (longer than the
  attempt deadline) cannot run out while it waits; a worker killed
  mid-delivery loses nothing (at-least-once).
- **Sending** one attempt is :func:`service.webhooks.attempt.attempt`, on
  the lane's :class:`~service.webhooks.sender.Sender`.
- **Isolation.** Endpoints that are currently failing are served from their
  own lane of slots and connections, so dead receivers (each attempt up to the
  deadline) never take the slots healthy ones use.
- **Recording** (:mod:`service.webhooks.outcomes`: the next state, the
  writes). Outcomes are written in batches (one transaction for many
  attempts, at most every :data:`RECORD_BATCH_S`), only for deliveries whose
  lease this worker still holds.
- **Waking.** After a commit that created deliveries the in-process worker is
  woken at once (a SQLAlchemy ``after_commit`` hook on the session flag
  :data:`service.webhooks.fanout.WAKE_FLAG`). On SQLite a worker also
  notices other processes' commits within :data:`WATCH_S` (a commit changes
  the write-ahead log file, which costs a ``stat``, not a query, to watch) and
  polls only every :data:`WATCHED_POLL_S` seconds; on PostgreSQL it polls
  every :data:`POLL_S` seconds with a read-only query. It sleeps until the
  next scheduled attempt when nothing is due.
- **Periodic jobs.** Each tick also runs ``service.core.jobs.run_due``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import random
import socket
import time
import weakref
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import col

from service.core import jobs
from service.core.config import Settings
from service.core.db import transaction, utcnow
from service.webhooks import deliveries, fanout
from service.webhooks.attempt import attempt
from service.webhooks.claims import Claimed, Claims
from service.webhooks.models import WebhookDelivery
from service.webhooks.outcomes import Recorder, Result, next_state
from service.webhooks.sender import Sender

log = logging.getLogger("service.webhooks.worker")

T = TypeVar("T")

#: Seconds between polls when nothing woke the worker (a standalone worker learns of new
#: deliveries this way: one indexed read-only ``MIN()`` per poll).
POLL_S = 0.1
#: Seconds between looks at a SQLite database file's write-ahead log for commits by other processes.
WATCH_S = 0.02
#: Seconds between polls when the write-ahead log is watched: commits wake the worker, so the
#: poll only finds leases that ran out (a worker that died). Idle CPU 3.8 % -> under 1 %.
WATCHED_POLL_S = 1.0
#: Seconds between runs of the periodic job registry check.
JOBS_TICK_S = 1.0
#: Results are written at most this often (seconds), in one transaction per batch.
RECORD_BATCH_S = 0.02

jobs.register("webhooks.prune", 3600.0, deliveries.prune)


_live: weakref.WeakSet[DeliveryWorker] = weakref.WeakSet()


@sa.event.listens_for(OrmSession, "after_commit")
def _after_commit(session: OrmSession) -> None:
    if session.info.pop(fanout.WAKE_FLAG, False):
        for worker in list(_live):
            worker.notify()


@sa.event.listens_for(OrmSession, "after_rollback")
def _after_rollback(session: OrmSession) -> None:
    session.info.pop(fanout.WAKE_FLAG, None)


class DeliveryWorker:
    """One worker: claims, sends and records deliveries on the running event loop.

    ``healthy_slots``/``failing_slots`` bound the attempts in flight in the
    two lanes (each lane has its own connections). Use :meth:`start` and
    :meth:`stop`, or :meth:`run_until_idle` to deliver everything due and
    return (benchmarks, tests).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        engine: Engine,
        worker_id: str | None = None,
        healthy_slots: int = 60,
        failing_slots: int = 40,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.id = worker_id or f"{socket.gethostname()[:40]}:{os.getpid()}:{random.getrandbits(32):08x}"
        self.schedule = settings.retry_schedule
        self.allowed = settings.allowed_target_classes
        self.timeout_s = settings.webhook_timeout_s
        # A claimed delivery may wait for one round of attempts before its own starts (the claim
        # prefetches one lane's worth), so the lease outlasts two deadlines.
        self.lease = dt.timedelta(seconds=max(settings.webhook_lease_s, 2 * settings.webhook_timeout_s + 2))
        self.is_pg = engine.dialect.name == "postgresql"
        self._claims = Claims(engine=engine, worker_id=self.id, lease=self.lease, keys_dir=settings.keys_dir)
        self._outcomes = Recorder(
            engine=engine, worker_id=self.id, disable_after_s=settings.webhook_disable_after_s
        )
        self._sizes = {"healthy": healthy_slots, "failing": failing_slots}
        self.lanes: dict[str, Sender] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._lane_busy: Counter[str] = Counter()
        self._found_work = False
        self._endpoint_busy: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._results: list[Result] = []
        # SQLite has one writer at a time: a second thread would only wait in the busy handler
        # (which sleeps in growing steps); PostgreSQL claims and records side by side.
        self._db = ThreadPoolExecutor(max_workers=2 if self.is_pg else 1, thread_name_prefix="webhooks-db")
        self._stopping = False
        self._sending_done = False
        self._wake: asyncio.Event | None = None
        self._results_ready: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[None] | None = None
        self._recorder: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._last_jobs = 0.0
        self.sent = 0

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Start claiming and sending on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._results_ready = asyncio.Event()
        for lane, count in self._sizes.items():
            self.lanes[lane] = Sender()
            self._slots[lane] = asyncio.Semaphore(count)
        _live.add(self)
        self._main = asyncio.create_task(self._run(), name=f"webhooks-worker-{self.id}")
        self._recorder = asyncio.create_task(self._record_loop(), name=f"webhooks-recorder-{self.id}")
        database = self.engine.url.database
        if self.engine.dialect.name == "sqlite" and database and database != ":memory:":
            watch = self._watch_sqlite(database)
            self._watcher = asyncio.create_task(watch, name=f"webhooks-watch-{self.id}")
        log.info("webhook worker %s started", self.id)

    async def stop(self, *, grace_s: float | None = None) -> None:
        """Stop gracefully: claim nothing more, let attempts in flight finish (up to the
        deadline), record them, and release any lease still held."""
        if self._main is None:
            return
        self._stopping = True
        _live.discard(self)
        self.notify()
        with contextlib.suppress(asyncio.CancelledError):
            await self._main
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        pending = set(self._tasks)
        if pending:
            done, still = await asyncio.wait(
                pending, timeout=grace_s if grace_s is not None else self.timeout_s + 1
            )
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still)
        self._tasks.clear()
        self._sending_done = True
        if self._recorder is not None:
            assert self._results_ready is not None
            self._results_ready.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recorder
        if self._results:
            await self._in_db(self._outcomes.record, self._results)
            self._results = []
        with contextlib.suppress(Exception):
            await self._in_db(self._claims.release)
        for sender in self.lanes.values():
            await sender.aclose()
        self._db.shutdown(wait=True)
        self._main = None
        log.info("webhook worker %s stopped", self.id)

    def notify(self) -> None:
        """Wake the worker now (thread-safe): deliveries were just committed."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        try:
            if asyncio.get_running_loop() is loop:
                wake.set()
                return
        except RuntimeError:
            pass
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(wake.set)

    async def run_until_idle(self, *, timeout_s: float = 60.0) -> bool:
        """Start, deliver until no delivery is pending any more (or ``timeout_s``), stop.

        Returns True when everything pending was finished.
        """
        await self.start()
        deadline = time.monotonic() + timeout_s
        idle = False
        try:
            while time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                if self._tasks or self._results:
                    continue
                if await self._in_db(self._pending_count) == 0:
                    idle = True
                    break
        finally:
            await self.stop()
        return idle

    # --- the loop ---------------------------------------------------------------------------

    async def _in_db(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db, fn, *args)

    def _free(self) -> dict[str, int]:
        # Healthy lane: claim up to two lanes' worth, one in flight and one waiting for a slot, so
        # the next claim overlaps the sends instead of following them. Failing lane: only free
        # slots, so nothing waits behind attempts that may hang until the deadline.
        return {
            lane: (2 if lane == "healthy" else 1) * slots - self._lane_busy[lane]
            for lane, slots in self._sizes.items()
        }

    def _refill(self, lane: str, free: int) -> bool:
        """Whether ``lane`` should claim now: the healthy lane in batches (a lane's worth of room,
        or idle), the failing lane as soon as a slot is free."""
        if lane == "failing":
            return free > 0
        return free >= self._sizes[lane] or self._lane_busy[lane] == 0

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            self._wake.clear()
            # Claim in batches: a lane claims when a lane's worth of room is free (or it is idle).
            free = {lane: n if self._refill(lane, n) else 0 for lane, n in self._free().items()}
            sleep_s = POLL_S if self._watcher is None else WATCHED_POLL_S
            if any(n > 0 for n in free.values()):
                try:
                    claimed, next_due = await self._in_db(
                        self._claims.claim, free, dict(self._endpoint_busy), not self._found_work, POLL_S
                    )
                except Exception:  # noqa: BLE001 - the database may be briefly away; keep trying
                    log.exception("claiming deliveries failed")
                    claimed, next_due = [], None
                    sleep_s = 1.0
                for item in claimed:
                    self._spawn(item)
                # Found work: the next claim goes straight to the claiming transaction; after an
                # empty one, a read-only look comes first (idle polls take no write lock).
                self._found_work = bool(claimed)
                if next_due is not None:
                    sleep_s = min(sleep_s, max(0.0, next_due))
            await self._run_jobs()
            if self._stopping:
                break
            if sleep_s > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(sleep_s):
                        await self._wake.wait()

    async def _watch_sqlite(self, path: str) -> None:
        """Wake the worker when the SQLite database at ``path`` changes: every commit (by the API
        process, the CLI or this worker) grows or rewrites ``path``-wal. Looking costs two
        ``stat`` calls every :data:`WATCH_S` seconds, where polling costs a query."""

        def stamp() -> tuple[tuple[int, int] | None, ...]:
            marks: list[tuple[int, int] | None] = []
            for name in (path, path + "-wal"):
                try:
                    st = os.stat(name)
                except OSError:
                    marks.append(None)
                else:
                    marks.append((st.st_mtime_ns, st.st_size))
            return tuple(marks)

        assert self._wake is not None
        last = stamp()
        while not self._stopping:
            await asyncio.sleep(WATCH_S)
            now = stamp()
            if now != last:
                last = now
                self._wake.set()

    async def _run_jobs(self) -> None:
        now = time.monotonic()
        if now - self._last_jobs < JOBS_TICK_S:
            return
        self._last_jobs = now
        try:
            await self._in_db(jobs.run_due, self.engine)
        except Exception:  # noqa: BLE001 - run_due logs its own failures; never stop delivering
            log.exception("periodic jobs failed")

    def _spawn(self, item: Claimed) -> None:
        self._lane_busy[item.lane] += 1
        self._endpoint_busy[item.endpoint_id] += 1
        task = asyncio.create_task(self._send(item))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, item: Claimed) -> None:
        try:
            async with self._slots[item.lane]:
                at = utcnow()
                outcome = await attempt(
                    self.lanes[item.lane],
                    url=item.url,
                    msg_id=item.msg_id,
                    body=item.body,
                    keys=item.keys,
                    timeout_s=self.timeout_s,
                    allowed=self.allowed,
                )
        finally:
            self._lane_busy[item.lane] -= 1
            self._endpoint_busy[item.endpoint_id] -= 1
            if self._endpoint_busy[item.endpoint_id] <= 0:
                del self._endpoint_busy[item.endpoint_id]
        self.sent += 1
        finished = utcnow()
        status, next_at = next_state(item, outcome, finished, self.schedule)
        self._results.append(Result(item, outcome, at, finished, status, next_at))
        assert self._results_ready is not None and self._wake is not None
        self._results_ready.set()
        if self._refill(item.lane, self._free()[item.lane]):
            self._wake.set()

    async def _record_loop(self) -> None:
        assert self._results_ready is not None and self._wake is not None
        while True:
            if self._sending_done and not self._results:
                return
            await self._results_ready.wait()
            await asyncio.sleep(RECORD_BATCH_S)
            self._results_ready.clear()
            batch, self._results = self._results, []
            if not batch:
                continue
            try:
                await self._in_db(self._outcomes.record, batch)
            except Exception:  # noqa: BLE001 - keep the results and try again
                log.exception("recording %d attempts failed; retrying", len(batch))
                self._results = batch + self._results
                self._results_ready.set()
                await asyncio.sleep(1.0)
                continue
            if any(r.status == "pending" for r in batch):
                self._wake.set()

    # --- database work (runs in the worker's own threads) -------------------------------------

    def _pending_count(self) -> int:
        with transaction(self.engine, readonly=True) as session:
            stmt = sa.select(sa.func.count()).where(col(WebhookDelivery.status) == "pending")
            return int(session.execute(stmt).scalar_one())


class InProcessWorker:
    """Handle of the worker running inside the API process."""

    def __init__(self, worker: DeliveryWorker) -> None:
        self.worker = worker

    async def stop(self) -> None:
        """Stop gracefully (see :meth:`DeliveryWorker.stop`)."""
        await self.worker.stop()


async def start_in_process(*, settings: Settings, engine: Engine) -> InProcessWorker:
    """Start the worker as tasks on the running event loop (``imi-api serve``)."""
    fanout.configure(first_delay_s=settings.retry_schedule[0])
    worker = DeliveryWorker(settings=settings, engine=engine)
    await worker.start()
    return InProcessWorker(worker)
