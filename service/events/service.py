"""Emitting events inside the caller's transaction, and reading the feed.

Domains call :func:`emit` inside their transaction; listeners registered with
:func:`subscribe` run in that same transaction (the registry reacts to a major
publish this way, the webhooks package fans events out to endpoints), so an
event, its consequences and its deliveries commit or roll back together.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from service.core import changes, metrics
from service.core.db import on_session_commit, utcnow
from service.core.ids import new_id
from service.events.models import Event, EventCounter

#: The public, sequenced event types (DESIGN §5).
EVENT_TYPES = (
    "standards.version.published",
    "standards.version.withdrawn",
    "standards.translation.published",
    "standards.review.opened",
    "standards.review.closed",
    "standards.comment.created",
    "standards.comment.disposed",
    "school.listed",
    "school.updated",
    "school.delisted",
    "school.alignment.changed",
)

#: An event's filter attributes (columns of ``events``): the school's country, the standards
#: document's slug, a translation's language, a school's alignment status after the event.
#: :func:`emit` copies each from the data's top-level member of that name when it is a string;
#: the emitter may give them explicitly instead (``attributes=``). Webhook filters and the
#: feeds' query parameters select on them; an event without one passes a filter on it.
ATTRIBUTES = ("country", "document", "language", "status")

#: The attributes a change can move (a school's country, its alignment status) -> the column
#: holding the value before the event. Set only when the event changed it (from the data's
#: member of that name, e.g. ``previous_status``, or given explicitly); a filter on the
#: attribute matches the value before as well as after, so a reader filtered on ``DE`` sees
#: a school move to ``AT`` (and one filtered on ``aligned`` sees a school lapse).
PREVIOUS = {"country": "previous_country", "status": "previous_status"}

#: What a filter asks: attribute -> the values it accepts (an empty list accepts any).
Filters = Mapping[str, Sequence[str]]
#: Reads (normalises, or refuses with a 422) the values a client gave for one attribute;
#: with a session it also checks that what they name exists (a document).
FilterReader = Callable[[str, Sequence[str], Session | None], list[str]]

Listener = Callable[[Session, Event], None]
_listeners: dict[str, list[Listener]] = defaultdict(list)
_any_listeners: list[Listener] = []
_after_commit: list[Callable[[Event], None]] = []


def subscribe(event_type: str | None, listener: Listener) -> None:
    """Call ``listener(session, event)`` inside the transaction of every matching emit.

    ``event_type=None`` subscribes to every type. Registering the same
    listener twice is a no-op.
    """
    target = _any_listeners if event_type is None else _listeners[event_type]
    if listener not in target:
        target.append(listener)


def on_commit(callback: Callable[[Event], None]) -> None:
    """Call ``callback(event)`` after the transaction that emitted ``event`` commits.

    For in-process side effects only (waking the worker, dropping caches);
    the database stays the source of truth.
    """
    if callback not in _after_commit:
        _after_commit.append(callback)


def hold_events(session: Session) -> None:
    """Wait for the event transactions in flight to end, and keep new ones waiting until this
    transaction ends (locks the counter row that :func:`emit` updates).

    For changes that decide which events a listener acts on (e.g. registering a
    webhook endpoint): an event either committed before this transaction (and
    did not see the change) or is emitted after it (and sees it). On SQLite
    write transactions are serialised already; there this is a no-op read.
    """
    session.execute(sa.select(col(EventCounter.id)).where(col(EventCounter.id) == 1).with_for_update())


def domain_of(event_type: str) -> str:
    """The change domain (``service.core.changes``) an event type touches: its first segment
    (``standards.version.published`` -> ``standards``, ``school.listed`` -> ``school``)."""
    return event_type.partition(".")[0]


def attributes_of(
    data: Mapping[str, Any], explicit: Mapping[str, str | None] | None = None
) -> dict[str, str]:
    """The filter attributes (:data:`ATTRIBUTES`, and :data:`PREVIOUS`' columns) of an event
    with ``data``: each from ``explicit`` when given there, else from ``data``'s top-level
    string member of that name. A previous value equal to the current one is left out (the
    event did not move it)."""
    out: dict[str, str] = {}
    for name in (*ATTRIBUTES, *PREVIOUS.values()):
        value = explicit[name] if explicit is not None and name in explicit else data.get(name)
        if isinstance(value, str) and value:
            out[name] = value
    for name, previous in PREVIOUS.items():
        if out.get(previous) == out.get(name):
            out.pop(previous, None)
    return out


def emit(
    session: Session,
    event_type: str,
    data: dict[str, Any],
    *,
    attributes: Mapping[str, str | None] | None = None,
) -> Event:
    """Write one event in the caller's transaction and run its listeners.

    Allocates the next ``sequence`` (locks the counter row until commit) and counts a
    change of the type's domain (:func:`service.core.changes.touch`). Its filter
    attributes come from ``data`` or ``attributes`` (:func:`attributes_of`).
    Raises ``ValueError`` for an unknown type.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    seq = session.execute(
        sa.update(EventCounter)
        .where(col(EventCounter.id) == 1)
        .values(value=col(EventCounter.value) + 1)
        .returning(col(EventCounter.value))
    ).scalar_one_or_none()
    if seq is None:  # first event ever: create the counter row
        session.add(EventCounter(id=1, value=1))
        session.flush()
        seq = 1
    event = Event(
        id=new_id("evt"),
        sequence=int(seq),
        type=event_type,
        timestamp=utcnow(),
        data=data,
        **attributes_of(data, attributes),
    )
    session.add(event)
    session.flush()
    changes.touch(session, domain_of(event_type))
    for listener in (*_listeners.get(event_type, ()), *_any_listeners):
        listener(session, event)
    if _after_commit:
        pending: list[Event] = session.info.setdefault("imi_emitted", [])
        pending.append(event)
    return event


def run_after_commit(session: Session) -> None:
    """Fire :func:`on_commit` callbacks for events this session emitted (call after commit)."""
    for event in session.info.pop("imi_emitted", []):
        for callback in _after_commit:
            callback(event)


def event_payload(event: Event) -> dict[str, Any]:
    """The public shape: ``{"id", "type", "sequence", "timestamp", "data", "log_index"}``.

    ``log_index`` is the event's leaf in the transparency log: ``sequence - 1``.
    """
    return {
        "id": event.id,
        "type": event.type,
        "sequence": event.sequence,
        "timestamp": event.timestamp,
        "data": event.data,
        "log_index": event.sequence - 1,
    }


def last_sequence(session: Session) -> int:
    """The sequence of the newest committed event visible to ``session`` (0 if none)."""
    value = session.execute(sa.select(sa.func.max(Event.sequence))).scalar()
    return int(value or 0)


def pruned_through(session: Session) -> int:
    """The highest sequence removed by retention (0 when nothing was pruned)."""
    counter = session.get(EventCounter, 1)
    return counter.pruned_through if counter else 0


def language_ranges(tag: str) -> list[str]:
    """The RFC 4647 basic-filtering ranges that match the language tag ``tag``: the tag and
    each shorter prefix at a hyphen (``de-CH-1996`` -> ``de-CH-1996``, ``de-CH``, ``de``)."""
    parts = tag.split("-")
    return ["-".join(parts[:n]) for n in range(len(parts), 0, -1)]


def passes(filters: Filters | None) -> list[sa.ColumnElement[bool]]:
    """SQL: the event passes ``filters`` — for each attribute with values, the event has none
    or one of them, before or after it (a publish passes a country filter; a school in FR does
    not pass ``DE``; a school that moved from DE to AT passes both, :data:`PREVIOUS`). Language
    values are RFC 4647 basic ranges: ``de`` passes ``de`` and ``de-CH``, not ``den``."""
    conditions: list[sa.ColumnElement[bool]] = []
    for name, values in (filters or {}).items():
        if name not in ATTRIBUTES:
            raise ValueError(f"unknown filter attribute {name!r}")
        if values:
            column = getattr(Event, name)
            either = [column.is_(None), column.in_(list(values))]
            if name == "language":  # RFC 4647 basic filtering: "de" matches "de-CH" too
                either += [column.like(f"{v}-%") for v in values]
            if name in PREVIOUS:
                either.append(getattr(Event, PREVIOUS[name]).in_(list(values)))
            conditions.append(sa.or_(*either))
    return conditions


def list_events(
    session: Session, *, after: int, types: Sequence[str], limit: int, filters: Filters | None = None
) -> list[Event]:
    """Events with ``sequence > after``, oldest first, optionally of ``types`` only and passing
    ``filters`` (:func:`passes`)."""
    stmt = select(Event).where(col(Event.sequence) > after, *passes(filters))
    if types:
        stmt = stmt.where(col(Event.type).in_(list(types)))
    stmt = stmt.order_by(col(Event.sequence)).limit(limit)
    return list(session.exec(stmt))


def of_types(types: Sequence[str], moves: Sequence[str] = ()) -> sa.ColumnElement[bool]:
    """SQL: the event is of ``types``, or of ``moves`` and moved an attribute (:data:`PREVIOUS`:
    a ``school.updated`` that gave the school another country)."""
    kinds = col(Event.type).in_(list(types))
    if not moves:
        return kinds
    moved = sa.or_(*(getattr(Event, column).is_not(None) for column in PREVIOUS.values()))
    return sa.or_(kinds, sa.and_(col(Event.type).in_(list(moves)), moved))


def newest_events(
    session: Session,
    *,
    before: int | None,
    types: Sequence[str],
    limit: int,
    filters: Filters | None = None,
    moves: Sequence[str] = (),
) -> list[Event]:
    """Events of ``types`` (and of ``moves`` that moved an attribute, :func:`of_types`) passing
    ``filters``, newest first, with ``sequence < before`` when given (the pages of an Atom
    feed), at most ``limit``."""
    stmt = select(Event).where(of_types(types, moves), *passes(filters))
    if before is not None:
        stmt = stmt.where(col(Event.sequence) < before)
    return list(session.exec(stmt.order_by(col(Event.sequence).desc()).limit(limit)))


# --- reading filters from clients -------------------------------------------------------------

_filter_reader: list[FilterReader] = []


def set_filter_reader(reader: FilterReader) -> None:
    """Install what checks and normalises filter values (the domains know which countries,
    documents and languages exist: the webhooks package installs it)."""
    _filter_reader[:] = [reader]


def read_filters(
    raw: Mapping[str, Sequence[str] | None], session: Session | None = None
) -> dict[str, list[str]]:
    """``raw`` (attribute -> values as a client sent them) normalised, de-duplicated and sorted
    by the installed reader (checked against the database when ``session`` is given); an
    unknown value is its 422. Attributes without values are left out."""
    out: dict[str, list[str]] = {}
    for name, values in raw.items():
        given = [v for v in (values or []) if v is not None]
        if not given:
            continue
        read = _filter_reader[0](name, given, session) if _filter_reader else [v.strip() for v in given]
        out[name] = sorted(dict.fromkeys(read))
    return out


def _event_metrics(engine: Engine) -> Iterable[Metric]:
    """``imi_events_last_sequence`` and ``imi_events_pruned_through`` (read at scrape time)."""
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT value, pruned_through FROM event_counter WHERE id = 1")).first()
    last, pruned = (int(row[0]), int(row[1])) if row else (0, 0)
    yield GaugeMetricFamily("imi_events_last_sequence", "Sequence of the newest committed event.", last)
    yield GaugeMetricFamily(
        "imi_events_pruned_through", "Highest event sequence removed by retention.", pruned
    )


metrics.register_collector("events", _event_metrics)


# The core's sessions call back after each commit; the outbox's callbacks ride on that.
on_session_commit(run_after_commit)
