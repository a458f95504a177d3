"""The alignment lifecycle of a school (DESIGN §2 "Alignment statement").

Alignment is self-declared: a school (or a steward on its behalf) states that
its training aligns with a published version of the standards; the registry
records the statement and moves its status as the standards move::

    none ──state──▶ aligned ──major published──▶ reaffirmation_due ──grace over──▶ lapsed
                      ▲  │                               │
                      │  └─────────── state (renew) ◀────┘   (state again from any status)
    withdraw (school or steward) ──▶ withdrawn        suspend (steward) ──▶ suspended

A suspended school cannot act on its alignment itself (409) until a steward
states or withdraws it. Every change writes a history row, the school's status
list value (``status_lists.py``), the public event ``school.alignment.changed`` and
an audit entry, in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import Session, col, select

from service.core import audit, jobs
from service.core.db import utcnow
from service.core.errors import Conflict, Unprocessable
from service.core.jsonutil import isoformat
from service.events import service as events
from service.events.models import Event
from service.registry import service as registry
from service.registry import status_lists
from service.registry.models import AlignmentRecord, School
from service.registry.schemas import AlignmentStatement
from service.security.clients import Principal
from service.standards import service as standards

#: How often the worker looks for overdue re-affirmations (seconds).
LAPSE_INTERVAL_S = 60
#: Most schools one lapse run changes (the next run takes the rest).
LAPSE_BATCH = 1000


def _major(version: str | None) -> int:
    try:
        return int(str(version).split(".", 1)[0])
    except ValueError:
        return -1


def event_data(school: School, *, previous_status: str, base_url: str) -> dict[str, Any]:
    """Data of ``school.alignment.changed`` (public fields only)."""
    return {
        "school_id": school.id,
        "name": school.name,
        "country": school.country,
        "previous_status": previous_status,
        "status": school.alignment_status,
        "aligned_version": school.aligned_version,
        "reaffirmation_due_by": registry.ts(school.reaffirmation_due_by),
        "links": registry.links(base_url, school.id),
    }


def _commit_change(
    session: Session,
    school: School,
    *,
    action: str,
    previous_status: str,
    actor: Principal | None,
    now: dt.datetime,
    base_url: str,
    reason: str | None = None,
) -> None:
    """Record one alignment change: the row, its history entry, its status list value, the event
    and the audit entry."""
    school.revision += 1
    school.updated_at = now
    session.add(school)
    session.add(
        AlignmentRecord(
            school_id=school.id,
            at=now,
            action=action,
            actor_role=registry.actor_role(actor),
            actor=actor.client_id if actor is not None else "system",
            previous_status=previous_status,
            status=school.alignment_status,
            version=school.aligned_version,
            evidence_url=school.evidence_url if action in ("stated", "renewed") else None,
            stated_by=school.alignment_stated_by if action in ("stated", "renewed") else None,
            reaffirmation_due_by=school.reaffirmation_due_by,
            reason=reason,
        )
    )
    session.flush()
    # The credentials' status list entry changes with the status, in this transaction.
    status_lists.record(session, school)
    events.emit(
        session,
        "school.alignment.changed",
        event_data(school, previous_status=previous_status, base_url=base_url),
    )
    audit.record(
        session,
        actor=actor.client_id if actor is not None else "system",
        action=f"school.alignment.{action}",
        target=school.id,
        details={
            "previous_status": previous_status,
            "status": school.alignment_status,
            "version": school.aligned_version,
        },
    )


def _guard_suspended(school: School, actor: Principal) -> None:
    if school.alignment_status == "suspended" and not registry.is_steward(actor):
        raise Conflict(
            "The school's alignment is suspended: only a registry steward can change it now.",
            extra={"alignment_status": "suspended"},
        )


def state_alignment(
    *,
    session: Session,
    school_id: str,
    statement: AlignmentStatement,
    actor: Principal,
    if_match: str | None = None,
    base_url: str,
) -> School:
    """State (or renew) alignment with ``statement.version``; the status becomes ``aligned``.

    The version must be a published, non-withdrawn version of the standards
    (``standards.DEFAULT_DOCUMENT``) of the current major — stating an older
    major once a newer one is out is a 422 (it would need re-affirmation at
    once). 403 for another school's client; 409 for a suspended school acting
    itself or for a delisted school; 412 for a stale ``If-Match``.
    """
    registry.authorize(actor, school_id)
    # Locking the school also holds releases until we commit (get_school share-locks
    # the document first): a major publish cannot slip between our read and our
    # commit and miss this school.
    school = registry.get_school(session=session, school_id=school_id, lock=True)
    registry.check_precondition(school, if_match, required=False)
    if school.listing == "delisted":
        raise Conflict(f"School {school_id} is delisted: it cannot state alignment.")
    _guard_suspended(school, actor)
    released = standards.published_versions(session=session, slug=standards.DEFAULT_DOCUMENT)
    if statement.version not in released:
        raise Unprocessable(
            f"Version {statement.version} is not a published version of the standards.",
            extra={"published_versions": released},
        )
    current = standards.current_version_number(session=session, slug=standards.DEFAULT_DOCUMENT)
    if current is not None and _major(statement.version) < _major(current):
        raise Unprocessable(
            f"Version {statement.version} has been replaced by the major version {current}: "
            f"state alignment with {current}.",
            extra={"current_version": current},
        )
    previous = school.alignment_status
    now = utcnow()
    school.alignment_status = "aligned"
    school.aligned_version = statement.version
    school.alignment_stated_at = now
    school.alignment_stated_by = statement.stated_by.strip()
    school.evidence_url = statement.evidence_url
    school.reaffirmation_due_by = None
    action = "renewed" if previous in ("aligned", "reaffirmation_due") else "stated"
    _commit_change(
        session, school, action=action, previous_status=previous, actor=actor, now=now, base_url=base_url
    )
    return school


def _locked_school(*, session: Session, school_id: str, actor: Principal, if_match: str | None) -> School:
    """The school, row-locked, once ``actor`` may act on it (403) and ``If-Match`` holds (412)."""
    registry.authorize(actor, school_id)
    school = registry.get_school(session=session, school_id=school_id, lock=True)
    registry.check_precondition(school, if_match, required=False)
    return school


def _move_to(
    session: Session, school: School, status: str, *, actor: Principal, reason: str | None, base_url: str
) -> School:
    """End the alignment in ``status`` (``withdrawn``, ``suspended``: also the history action);
    no re-affirmation is due any more."""
    previous = school.alignment_status
    school.alignment_status = status
    school.reaffirmation_due_by = None
    _commit_change(
        session,
        school,
        action=status,
        previous_status=previous,
        actor=actor,
        now=utcnow(),
        base_url=base_url,
        reason=reason,
    )
    return school


def withdraw_alignment(
    *,
    session: Session,
    school_id: str,
    actor: Principal,
    reason: str | None = None,
    if_match: str | None = None,
    base_url: str,
) -> School:
    """Withdraw the school's alignment (the school itself or a steward); status ``withdrawn``.

    409 when there is nothing to withdraw (``none``, ``withdrawn``) or when a
    suspended school tries it itself.
    """
    school = _locked_school(session=session, school_id=school_id, actor=actor, if_match=if_match)
    _guard_suspended(school, actor)
    if school.alignment_status in ("none", "withdrawn"):
        raise Conflict(
            f"There is no alignment to withdraw (status {school.alignment_status}).",
            extra={"alignment_status": school.alignment_status},
        )
    return _move_to(session, school, "withdrawn", actor=actor, reason=reason, base_url=base_url)


def suspend_alignment(
    *,
    session: Session,
    school_id: str,
    actor: Principal,
    reason: str | None = None,
    if_match: str | None = None,
    base_url: str,
) -> School:
    """Suspend the school's alignment (steward only); 409 when it is already suspended."""
    school = _locked_school(session=session, school_id=school_id, actor=actor, if_match=if_match)
    if school.alignment_status == "suspended":
        raise Conflict(
            "The school's alignment is already suspended.", extra={"alignment_status": "suspended"}
        )
    return _move_to(session, school, "suspended", actor=actor, reason=reason, base_url=base_url)


def history(*, session: Session, school_id: str, after: int | None, limit: int) -> list[AlignmentRecord]:
    """History rows of a school, oldest first, after the row id ``after``."""
    stmt = select(AlignmentRecord).where(col(AlignmentRecord.school_id) == school_id)
    if after is not None:
        stmt = stmt.where(col(AlignmentRecord.id) > after)
    return list(session.exec(stmt.order_by(col(AlignmentRecord.id)).limit(limit)))


def history_dict(record: AlignmentRecord) -> dict[str, Any]:
    """A public history entry: the actor is shown as its role, never as a client id."""
    return {
        "at": isoformat(record.at),
        "action": record.action,
        "actor": record.actor_role,
        "previous_status": record.previous_status,
        "status": record.status,
        "version": record.version,
        "evidence_url": record.evidence_url,
        "stated_by": record.stated_by,
        "reaffirmation_due_by": registry.ts(record.reaffirmation_due_by),
        "reason": record.reason,
    }


# --- reacting to the standards, and the clock -------------------------------------------------


def on_standards_published(session: Session, event: Event) -> None:
    """In the publish transaction: a new MAJOR version of the standards moves every listed
    ``aligned`` school whose statement names an older major to ``reaffirmation_due``,
    due ``IMI_REAFFIRMATION_GRACE_DAYS`` after the publication (the event's time).
    A minor version changes nothing."""
    data = event.data
    if data.get("document", standards.DEFAULT_DOCUMENT) != standards.DEFAULT_DOCUMENT:
        return
    if not data.get("reaffirmation_required"):
        return
    new_major = _major(data.get("version"))
    settings = registry.settings_for(session)
    due = event.timestamp + dt.timedelta(days=settings.reaffirmation_grace_days)
    schools = session.exec(
        select(School)
        .where(col(School.alignment_status) == "aligned", col(School.listing) == "listed")
        .order_by(col(School.id))
        .with_for_update()
    ).all()
    for school in schools:
        if _major(school.aligned_version) >= new_major:
            continue
        school.alignment_status = "reaffirmation_due"
        school.reaffirmation_due_by = due
        _commit_change(
            session,
            school,
            action="reaffirmation_required",
            previous_status="aligned",
            actor=None,
            now=event.timestamp,
            base_url=settings.public_base_url,
            reason=f"version {data.get('version')} published",
        )


def lapse_overdue(session: Session, now: dt.datetime) -> int:
    """The ``registry.lapse`` job: ``reaffirmation_due`` schools past their date become ``lapsed``.

    Safe with several workers: on PostgreSQL rows are claimed with ``FOR UPDATE
    SKIP LOCKED`` (another worker's rows are skipped, not waited for); SQLite
    serialises writers. Returns how many schools lapsed.
    """
    schools = session.exec(
        select(School)
        .where(
            col(School.alignment_status) == "reaffirmation_due",
            col(School.reaffirmation_due_by) <= now,
        )
        .order_by(col(School.reaffirmation_due_by), col(School.id))
        .limit(LAPSE_BATCH)
        .with_for_update(skip_locked=True)
    ).all()
    base_url = registry.settings_for(session).public_base_url
    for school in schools:
        school.alignment_status = "lapsed"
        school.reaffirmation_due_by = None
        _commit_change(
            session,
            school,
            action="lapsed",
            previous_status="reaffirmation_due",
            actor=None,
            now=now,
            base_url=base_url,
            reason="re-affirmation not received within the grace period",
        )
    return len(schools)


events.subscribe("standards.version.published", on_standards_published)
jobs.register("registry.lapse", LAPSE_INTERVAL_S, lapse_overdue)
