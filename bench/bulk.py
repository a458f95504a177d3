"""Filling a migrated database fast, with SQL bulk inserts (issue 14), for the scale curves.

Going through the service costs ~1 ms a row (an event each, its listeners, the search
index, the log); a million events or 100,000 schools would take longer than the whole
benchmark may. These functions write the same rows the service writes, in batches of
:data:`BATCH` with one ``executemany`` each, and keep every invariant the service relies
on: gap-free sequences with the counter at the last one, one change generation per
domain, and what the issue-specific tables (the transparency log, the status lists, the
search index) derive from them — through the service's own functions for derived rows.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from ulid import ULID

from service.events.models import Event, EventCounter

BATCH = 5_000

_events = Event.__table__  # type: ignore[attr-defined]
_counter = EventCounter.__table__  # type: ignore[attr-defined]


def _batches(rows: Iterator[dict[str, Any]], size: int = BATCH) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _last_sequence(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(_events.c.sequence), 0))).scalar_one())


def school_event_data(n: int, rng: random.Random) -> dict[str, Any]:
    """A realistic ``school.updated`` payload (~600 bytes, like the service's)."""
    sid = f"sch_bench{n:010d}"
    return {
        "id": sid,
        "name": f"Mindful Awareness Centre {n}",
        "alternate_names": [],
        "country": rng.choice(["CH", "DE", "NL", "BR", "JP", "US", "ZA", "AU"]),
        "city": "Zürich",
        "website": f"https://school{n}.example.org/",
        "programmes": ["MBSR", "MBCT"],
        "languages": ["en"],
        "listing": "listed",
        "alignment": {"status": "aligned", "version": "2.0", "reaffirmation_due_by": None},
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
        "links": {"self": f"http://127.0.0.1:8000/v1/schools/{sid}"},
    }


def insert_events(engine: Engine, count: int, *, span_days: float = 800.0, seed: int = 14) -> int:
    """Append ``count`` ``school.updated`` events after the last one, their timestamps spread
    evenly over the ``span_days`` before now (oldest first); returns the last sequence."""
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    step = dt.timedelta(days=span_days) / max(count, 1)
    with engine.begin() as conn:
        first = _last_sequence(conn) + 1

        def rows() -> Iterator[dict[str, Any]]:
            for n in range(count):
                ts = now - dt.timedelta(days=span_days) + step * n
                yield {
                    "id": f"evt_{ULID.from_datetime(ts)}",
                    "sequence": first + n,
                    "type": "school.updated",
                    "timestamp": ts,
                    "data": school_event_data(n, rng),
                }

        for batch in _batches(rows()):
            conn.execute(_events.insert(), batch)
        last = first + count - 1
        updated = conn.execute(_counter.update().where(_counter.c.id == 1).values(value=last)).rowcount
        if not updated:
            conn.execute(_counter.insert().values(id=1, value=last, pruned_through=0))
    return last
