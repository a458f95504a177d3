"""The transparency log of every sequenced event: appending leaves, reading roots and proofs.

Every event is appended as leaf ``sequence - 1`` in the transaction that emits it:
:func:`append_event` is an in-transaction listener of the events outbox for every
type. ``emit`` allocates sequences under the counter row's lock, held until commit,
so leaves are appended in sequence order, one transaction at a time, on SQLite and
PostgreSQL alike, whatever the number of replicas: the tree's size is always the
newest committed sequence. (On PostgreSQL the append's reads run after the lock
is taken, in READ COMMITTED, so they see the previous holder's committed nodes.)

An append reads the nodes the new leaf completes (and the previous leaf, which
proves the tree has no gap) in one query and inserts the new rows in one
statement. A log that is behind the sequence — a database upgraded from before
the log, or events written while it was switched off for a benchmark — is caught
up first from the retained events (:func:`catch_up`).
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from service.core import changes, metrics
from service.events import service as events
from service.events.models import Event, EventCounter
from service.transparency import leaves, merkle
from service.transparency.models import LogNode

_nodes = LogNode.__table__  # type: ignore[attr-defined]
#: Events read per query while catching up.
CATCH_UP_BATCH = 500
#: The change domain of leaves appended without an event of their own (catching up); an
#: append for an event is counted by the event's own domain.
DOMAIN = "log"

_enabled = True


def configure(*, enabled: bool) -> None:
    """Switch appending on or off for this process (``IMI_TRANSPARENCY_LOG``: benchmarks only)."""
    global _enabled
    _enabled = enabled


def nodes_query(nodes: Iterable[merkle.Node]) -> sa.Select[tuple[int, int, bytes]] | None:
    """``SELECT level, idx, hash`` of ``nodes`` (``None`` for no nodes): one primary-key lookup
    per level, OR-ed. (SQLite scans the whole table for a row-value list, ``(level, idx) IN
    (...)``: 200 ms a proof at a million leaves instead of 2 ms.)"""
    by_level: dict[int, set[int]] = {}
    for level, idx in nodes:
        by_level.setdefault(level, set()).add(idx)
    if not by_level:
        return None
    where = sa.or_(
        *(
            sa.and_(_nodes.c.level == level, _nodes.c.idx.in_(sorted(idxs)))
            for level, idxs in sorted(by_level.items())
        )
    )
    return sa.select(_nodes.c.level, _nodes.c.idx, _nodes.c.hash).where(where)


def reader(session: Session) -> merkle.NodeReader:
    """A :data:`merkle.NodeReader` over ``session``: one query per call."""

    def read(nodes: Iterable[merkle.Node]) -> dict[merkle.Node, bytes]:
        query = nodes_query(nodes)
        if query is None:
            return {}
        return {(int(level), int(idx)): bytes(h) for level, idx, h in session.execute(query)}

    return read


def tree_size(session: Session) -> int:
    """How many leaves the log has (as ``session`` sees it)."""
    top = session.execute(sa.select(sa.func.max(_nodes.c.idx)).where(_nodes.c.level == 0)).scalar()
    return 0 if top is None else int(top) + 1


def event_leaf(event: Event) -> bytes:
    """The leaf bytes of ``event`` (``leaves.py``)."""
    return leaves.leaf_bytes(
        leaves.leaf_document(
            event_id=event.id,
            event_type=event.type,
            sequence=event.sequence,
            timestamp=event.timestamp,
            data=event.data,
        )
    )


def append_event(session: Session, event: Event) -> None:
    """The outbox listener: append ``event`` as leaf ``sequence - 1`` in its transaction."""
    if not _enabled:
        return
    _append(session, event.sequence - 1, merkle.leaf_hash(event_leaf(event)))


def _append(session: Session, index: int, leaf: bytes) -> None:
    read = reader(session)
    wanted = [(0, index), *merkle.left_siblings(index)]
    if index > 0 and (0, index - 1) not in wanted:
        wanted.append((0, index - 1))
    found = read(wanted)
    if (0, index) in found:
        # Appended already: a listener that ran before this one emitted an event of its own
        # (a major publish moves schools to reaffirmation_due), whose append caught this up.
        return
    if len(found) < len(wanted) - 1:  # the log is behind the sequence: fill it in first
        catch_up(session, through=index)
        found = read(wanted)
    rows, _edge = merkle.append(index, leaf, found)
    _insert(session, rows)


def _insert(session: Session, rows: list[tuple[int, int, bytes]]) -> None:
    session.execute(_nodes.insert(), [{"level": lv, "idx": i, "hash": h} for lv, i, h in rows])


def catch_up(session: Session, *, through: int | None = None) -> int:
    """Append the events the log lacks, up to sequence ``through`` (default: the newest);
    returns how many leaves it appended.

    Takes the event counter's lock first (a no-op inside ``emit``, which holds it),
    so no event is appended beside it. Events retention already removed become
    :func:`leaves.pruned_leaf` leaves.
    """
    events.hold_events(session)
    if through is None:
        counter = session.get(EventCounter, 1)
        through = counter.value if counter is not None else 0
    size = tree_size(session)
    if size >= through:
        return 0
    edge = reader(session)(merkle.frontier(size))
    appended = 0
    for start in range(size + 1, through + 1, CATCH_UP_BATCH):
        stop = min(start + CATCH_UP_BATCH, through + 1)
        found = {
            e.sequence: e
            for e in session.execute(
                sa.select(Event).where(col(Event.sequence) >= start, col(Event.sequence) < stop)
            ).scalars()
        }
        rows: list[tuple[int, int, bytes]] = []
        for sequence in range(start, stop):
            event = found.get(sequence)
            data = event_leaf(event) if event is not None else leaves.pruned_leaf(sequence)
            new, edge = merkle.append(sequence - 1, merkle.leaf_hash(data), edge)
            rows.extend(new)
        _insert(session, rows)
        appended += stop - start
    changes.touch(session, DOMAIN)
    return appended


def root_at(session: Session, size: int) -> bytes:
    """The root hash of the tree of ``size`` leaves."""
    return merkle.root(size, reader(session))


def leaf_range(session: Session, start: int, end: int) -> list[tuple[int, bytes, bytes | None]]:
    """``(index, leaf hash, leaf bytes or None when its event was pruned)`` for ``[start, end)``."""
    hashes = {
        int(i): bytes(h)
        for i, h in session.execute(
            sa.select(_nodes.c.idx, _nodes.c.hash).where(
                _nodes.c.level == 0, _nodes.c.idx >= start, _nodes.c.idx < end
            )
        )
    }
    found = {
        e.sequence: e
        for e in session.execute(
            sa.select(Event).where(col(Event.sequence) > start, col(Event.sequence) <= end)
        ).scalars()
    }
    out: list[tuple[int, bytes, bytes | None]] = []
    for index in range(start, end):
        event = found.get(index + 1)
        data = event_leaf(event) if event is not None else leaves.pruned_leaf(index + 1)
        # Pruned since it was logged, or no longer reading as what was logged: the hash only.
        shown = data if merkle.leaf_hash(data) == hashes[index] else None
        out.append((index, hashes[index], shown))
    return out


def _log_metrics(engine: Engine) -> Iterable[Metric]:
    """``imi_log_tree_size``: alert when it differs from ``imi_events_last_sequence``."""
    with engine.connect() as conn:
        top = conn.execute(sa.select(sa.func.max(_nodes.c.idx)).where(_nodes.c.level == 0)).scalar()
    yield GaugeMetricFamily(
        "imi_log_tree_size",
        "Leaves in the transparency log (the newest event's sequence).",
        0 if top is None else int(top) + 1,
    )


events.subscribe(None, append_event)
metrics.register_collector("transparency", _log_metrics)
