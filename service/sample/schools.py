"""Sample schools (DESIGN §8), loaded through the registry's own service functions.

``schools.json`` holds 47 fictional schools on six continents, with names in
Latin (with diacritics), Cyrillic, Greek, Japanese, Korean, Chinese, Thai,
Hebrew and Arabic script and their transliterations as alternate names, and
fictional contact details (``example.org``). Each entry says which version it
states (``states``: ``"1.0"``, ``"2.0"`` or ``null``) and what happens next
(``then``: ``withdraw``, ``suspend`` or ``lapse``; ``delist``).

The schools stating 1.0 must do so while 1.0 is the current version, so that
publishing 2.0 moves them to ``reaffirmation_due`` through the registry's own
listener, exactly as in production. :func:`stating_before_major` arranges
that: while the standards sample loads inside it, a listener creates those
schools and records their 1.0 statements in the transaction that publishes
1.0. :func:`load` then adds everyone else.

The ``lapse`` schools are the ones that did not re-affirm after the
historical publication of 2.0 (2021-07-01): their due date is set to that
publication plus the grace period, and the registry's own lapse job moves
them to ``lapsed``. Every statement is recorded by a steward (actor
``sample``), as if received by mail.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from service.core.config import Settings
from service.core.db import transaction, utcnow
from service.events import service as events
from service.events.models import Event
from service.registry import alignment
from service.registry import service as registry
from service.registry.models import AlignmentRecord, School
from service.registry.schemas import AlignmentStatement, SchoolCreate
from service.security.clients import Principal
from service.standards import service as standards

log = logging.getLogger("service.sample")

#: The steward every sample write is recorded as.
ACTOR = Principal(client_id="sample", scopes=frozenset({"registry:write"}))
_PRIVATE_KEYS = ("states", "then", "delist", "stated_by", "evidence_url")

_early: contextvars.ContextVar[Settings | None] = contextvars.ContextVar("imi_sample_early", default=None)


def read() -> list[dict[str, Any]]:
    """The bundled sample schools (``schools.json``)."""
    text = resources.files("service.sample").joinpath("schools.json").read_text(encoding="utf-8")
    schools: list[dict[str, Any]] = json.loads(text)["schools"]
    return schools


def _create(session: Session, entry: dict[str, Any], base_url: str) -> School:
    body = SchoolCreate.model_validate({k: v for k, v in entry.items() if k not in _PRIVATE_KEYS})
    return registry.create_school(session=session, data=body, actor="sample", base_url=base_url)


def _state(session: Session, school: School, entry: dict[str, Any], version: str, base_url: str) -> None:
    statement = AlignmentStatement(
        version=version, evidence_url=entry["evidence_url"], stated_by=entry["stated_by"]
    )
    alignment.state_alignment(
        session=session, school_id=school.id, statement=statement, actor=ACTOR, base_url=base_url
    )


def _on_publish(session: Session, event: Event) -> None:
    """While the standards sample loads: state the 1.0 schools right after 1.0 is published."""
    settings = _early.get()
    if settings is None or event.data.get("version") != "1.0":
        return
    if event.data.get("document", standards.DEFAULT_DOCUMENT) != standards.DEFAULT_DOCUMENT:
        return
    for entry in read():
        if entry.get("states") == "1.0":
            school = _create(session, entry, settings.public_base_url)
            _state(session, school, entry, "1.0", settings.public_base_url)


events.subscribe("standards.version.published", _on_publish)


@contextmanager
def stating_before_major(*, engine: Engine, settings: Settings) -> Iterator[None]:
    """Wrap the loading of the standards sample: the 1.0 schools state 1.0 as soon as it is published."""
    registry.configure(engine=engine, settings=settings)
    token = _early.set(settings)
    try:
        yield
    finally:
        _early.reset(token)


def _historical_major_publication() -> dt.datetime | None:
    from service.sample.standards import read as read_standards

    for entry in read_standards("standards_en.json")["versions"]:
        if entry["version"] == "2.0" and entry.get("published_at"):
            return dt.datetime.fromisoformat(str(entry["published_at"]).replace("Z", "+00:00"))
    return None


def load(*, engine: Engine, settings: Settings) -> None:
    """Load the sample schools (one transaction), after the standards sample."""
    registry.configure(engine=engine, settings=settings)
    base = settings.public_base_url
    with transaction(engine) as session:
        existing = {s.name: s for s in session.exec(select(School))}
        current = standards.current_version_number(session=session, slug=standards.DEFAULT_DOCUMENT)
        lapsing: list[str] = []
        for entry in read():
            school = existing.get(entry["name"])
            if school is None:
                school = _create(session, entry, base)
                version = entry.get("states")
                if version == "1.0" and current != "1.0":
                    log.warning("sample school %s could not state 1.0 (loaded out of order)", school.id)
                elif version:
                    _state(session, school, entry, version, base)
            then = entry.get("then")
            if then == "withdraw":
                alignment.withdraw_alignment(
                    session=session,
                    school_id=school.id,
                    actor=ACTOR,
                    reason="the school paused its teacher training",
                    base_url=base,
                )
            elif then == "suspend":
                alignment.suspend_alignment(
                    session=session,
                    school_id=school.id,
                    actor=ACTOR,
                    reason="evidence under review by the regional association",
                    base_url=base,
                )
            elif then == "lapse" and school.alignment_status == "reaffirmation_due":
                lapsing.append(school.id)
            if entry.get("delist"):
                registry.delist_school(
                    session=session, school_id=school.id, actor=ACTOR, if_match=None, base_url=base
                )
        published = _historical_major_publication()
        if lapsing and published is not None:
            due = published + dt.timedelta(days=settings.reaffirmation_grace_days)
            for school in session.exec(select(School).where(col(School.id).in_(lapsing))):
                school.reaffirmation_due_by = due
                session.add(school)
            for record in session.exec(
                select(AlignmentRecord).where(
                    col(AlignmentRecord.school_id).in_(lapsing),
                    col(AlignmentRecord.action) == "reaffirmation_required",
                )
            ):
                record.reaffirmation_due_by = due
                session.add(record)
            session.flush()
            alignment.lapse_overdue(session, max(utcnow(), due + dt.timedelta(seconds=1)))
