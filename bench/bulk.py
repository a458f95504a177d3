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

from service.core.ids import new_id
from service.events.models import Event, EventCounter
from service.registry import folding, search_index
from service.registry import service as registry
from service.registry.models import School, SchoolFacet, SchoolTerm
from service.registry.verify import registrable_domain

BATCH = 5_000

_events = Event.__table__  # type: ignore[attr-defined]
_counter = EventCounter.__table__  # type: ignore[attr-defined]
_schools = School.__table__  # type: ignore[attr-defined]
_terms = SchoolTerm.__table__  # type: ignore[attr-defined]
_facets = SchoolFacet.__table__  # type: ignore[attr-defined]


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


def synthetic_school(n: int, rng: random.Random, now: dt.datetime) -> School:
    """School ``n`` of a synthetic registry: three words of :data:`bench.populate.WORDS` and a
    number (realistic prefix selectivity), a city of :data:`bench.populate.CITIES`, seven in
    ten aligned with 2.0."""
    from bench.populate import CITIES, PROGRAMMES, WORDS

    country, city = rng.choice(CITIES)
    name = " ".join(rng.sample(WORDS, 3)) + f" {n}"
    website = f"https://school{n}.example.org/"
    aligned = rng.random() < 0.7
    return School(
        id=new_id("sch"),
        name=name,
        name_key=folding.sort_key(name),
        alternate_names=[],
        country=country,
        city=city,
        website=website,
        website_domain=registrable_domain(website),
        programmes=rng.sample(PROGRAMMES, 2),
        languages=["en"],
        listing="listed",
        contact=None,
        alignment_status="aligned" if aligned else "none",
        aligned_version="2.0" if aligned else None,
        alignment_stated_at=now if aligned else None,
        alignment_stated_by="bench" if aligned else None,
        evidence_url=f"{website}alignment" if aligned else None,
        revision=1,
        created_at=now,
        updated_at=now,
    )


def insert_schools(engine: Engine, count: int, *, base_url: str, seed: int = 2015) -> int:
    """List ``count`` synthetic schools with their search index rows and one ``school.listed``
    event each (after the last event, counter moved on, as the service would); returns the
    last sequence. Derived rows come from the registry's own :func:`search_index.index_rows` and
    :func:`registry.public_dict`."""
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    columns = [c.name for c in _schools.columns]
    with engine.begin() as conn:
        sequence = _last_sequence(conn)
        done = 0
        while done < count:
            schools = [synthetic_school(done + i, rng, now) for i in range(min(BATCH, count - done))]
            terms: list[dict[str, Any]] = []
            facets: list[dict[str, Any]] = []
            events: list[dict[str, Any]] = []
            for school in schools:
                t, f = search_index.index_rows(school)
                terms += t
                facets += f
                sequence += 1
                events.append(
                    {
                        "id": f"evt_{ULID.from_datetime(now)}",
                        "sequence": sequence,
                        "type": "school.listed",
                        "timestamp": now,
                        "data": registry.public_dict(school, base_url=base_url),
                    }
                )
            conn.execute(_schools.insert(), [{c: getattr(s, c) for c in columns} for s in schools])
            conn.execute(_terms.insert(), terms)
            conn.execute(_facets.insert(), facets)
            conn.execute(_events.insert(), events)
            done += len(schools)
        conn.execute(_counter.update().where(_counter.c.id == 1).values(value=sequence))
    return sequence


def analyze(engine: Engine) -> None:
    """Refresh the planner's statistics after a bulk load, as autovacuum would within a minute or
    two on PostgreSQL (``VACUUM ANALYZE``: the statistics, and the visibility map that lets the
    search's index-only scans skip the heap). Without it the first minutes after a load measure
    a planner that knows nothing (search p99 275 ms instead of ~40 at 100,000 schools). Nothing
    on SQLite: the service never runs ``ANALYZE`` there, so its plans are measured as they are."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
