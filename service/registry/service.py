"""The registry of training schools: create, read, edit, delist, erase private data.

Plain functions with keyword-only arguments; the caller owns the transaction.
Every write bumps the school's ``revision`` (its ETag and every cache key
follow it), emits its public event (``school.listed``/``updated``/``delisted``)
and writes an audit entry, and keeps the school's search index entries in step
(``search_index.py``). The private ``contact`` never leaves through an event, the
audit details or a public representation.

Importing this module wires the registry into the rest of the service: it
imports :mod:`service.registry.alignment`, which registers the in-transaction
listener on ``standards.version.published`` and the periodic
``registry.lapse`` job.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from service.core import audit, changes
from service.core.config import Settings, bind_settings
from service.core.config import settings_for as core_settings_for
from service.core.db import utcnow
from service.core.errors import Conflict, Forbidden, Gone, NotFound, PreconditionFailed, Unprocessable
from service.core.ids import new_id
from service.core.jsonutil import isoformat
from service.events import service as events
from service.registry import folding, search_index, status_lists
from service.registry.models import School
from service.registry.schemas import SchoolCreate, SchoolUpdate
from service.registry.verify import registrable_domain
from service.security.clients import Principal
from service.standards import service as standards
from service.web.http import check_if_match, make_etag

#: Public fields of a school (what ``school.updated`` reports as changed).
PUBLIC_FIELDS = ("name", "alternate_names", "country", "city", "website", "programmes", "languages")

# --- wiring -------------------------------------------------------------------------------


def configure(*, engine: Engine, settings: Settings) -> None:
    """Remember the settings of the app that owns ``engine``.

    The publish listener and the lapse job only receive a session; they find
    the grace period and the base URL through its engine. Engines nobody
    configured (a standalone worker) use :func:`service.core.config.get_settings`.
    """
    bind_settings(engine, settings)


def settings_for(session: Session) -> Settings:
    """The settings of the app whose engine ``session`` is bound to."""
    return core_settings_for(session)


# --- representations ----------------------------------------------------------------------


def school_url(base_url: str, school_id: str) -> str:
    """The canonical URL of a school (the ``sub`` of its credentials)."""
    return f"{base_url}/v1/schools/{school_id}"


def links(base_url: str, school_id: str) -> dict[str, str]:
    """Links of a school: itself, its affiliation and its alignment history."""
    url = school_url(base_url, school_id)
    return {"self": url, "affiliation": f"{url}/affiliation", "history": f"{url}/alignment/history"}


def ts(value: Any) -> str | None:
    """RFC 3339 for a timestamp, ``None`` for ``None``."""
    return isoformat(value) if value is not None else None


def alignment_dict(school: School) -> dict[str, Any]:
    """``{"status", "version", "stated_at", "stated_by", "evidence_url", "reaffirmation_due_by"}``."""
    return {
        "status": school.alignment_status,
        "version": school.aligned_version,
        "stated_at": ts(school.alignment_stated_at),
        "stated_by": school.alignment_stated_by,
        "evidence_url": school.evidence_url,
        "reaffirmation_due_by": ts(school.reaffirmation_due_by),
    }


def public_dict(school: School, *, base_url: str, private: bool = False) -> dict[str, Any]:
    """The JSON-ready representation; ``contact`` only when ``private`` (stewards, the school)."""
    body: dict[str, Any] = {
        "id": school.id,
        "name": school.name,
        "alternate_names": [dict(a) for a in school.alternate_names],
        "country": school.country,
        "city": school.city,
        "website": school.website,
        "programmes": list(school.programmes),
        "languages": list(school.languages),
        "listing": school.listing,
        "alignment": alignment_dict(school),
        "created_at": isoformat(school.created_at),
        "updated_at": isoformat(school.updated_at),
        "links": links(base_url, school.id),
    }
    if private:
        body["contact"] = dict(school.contact) if school.contact else None
    return body


def emit_school_event(
    session: Session,
    event_type: str,
    school: School,
    *,
    base_url: str,
    previous_country: str | None = None,
) -> None:
    """``school.listed`` / ``updated`` / ``delisted``: the public record; the event's ``status``
    attribute is the alignment status (for the feeds' ``status`` filter). An update that moved
    the school gives ``previous_country``, so country filters on either country see the move."""
    events.emit(
        session,
        event_type,
        public_dict(school, base_url=base_url),
        attributes={"status": school.alignment_status, "previous_country": previous_country},
    )


def etag(school: School, *, private: bool = False) -> str:
    """Strong ETag of a school's representation; it changes with every revision."""
    return make_etag(school.id, str(school.revision), "private" if private else "public")


def check_precondition(school: School, if_match: str | None, *, required: bool) -> None:
    """``If-Match`` against either representation's ETag (428 when required and absent, 412 stale)."""
    if if_match is not None:
        try:
            check_if_match(if_match, etag(school, private=True), required=required)
            return
        except PreconditionFailed:
            pass  # not the private representation's tag: compare with the public one
    check_if_match(if_match, etag(school), required=required)


# --- access ---------------------------------------------------------------------------------


def is_steward(principal: Principal | None) -> bool:
    """True for a registry steward (scope ``registry:write``)."""
    return principal is not None and principal.has("registry:write")


def may_act_for(principal: Principal | None, school_id: str) -> bool:
    """A steward, or a ``school:self`` client bound to this school."""
    if principal is None:
        return False
    if is_steward(principal):
        return True
    return principal.has("school:self") and principal.school_id == school_id


def authorize(principal: Principal, school_id: str) -> None:
    """:class:`Forbidden` unless ``principal`` may act for ``school_id``."""
    if not may_act_for(principal, school_id):
        raise Forbidden("This client may act only for its own school.")


def actor_role(principal: Principal | None) -> str:
    """The public role of an actor: ``steward``, ``school`` or ``system``."""
    if principal is None:
        return "system"
    return "steward" if is_steward(principal) else "school"


# --- reads ----------------------------------------------------------------------------------


def get_school(*, session: Session, school_id: str, lock: bool = False) -> School:
    """The school ``school_id`` (row-locked when ``lock``); :class:`NotFound` when unknown.

    Locking first share-locks the standards document (``hold_releases``). A writer locks the
    school, then emits (the event counter's row); a major publish locks the document, emits, then
    locks every aligned school. Without the document lock the two deadlock on PostgreSQL (each
    waits for the other's row); with it, a writer waits for a publish in progress before it
    takes the school, and a publish waits for writers holding schools.
    """
    stmt = select(School).where(col(School.id) == school_id)
    if lock:
        standards.hold_releases(session=session, slug=standards.DEFAULT_DOCUMENT)
        stmt = stmt.with_for_update()
    school = session.exec(stmt).first() if len(school_id) <= 40 else None
    if school is None:
        raise NotFound(f"There is no school {school_id!r}.")
    return school


def visible_school(*, session: Session, school_id: str, principal: Principal | None) -> School:
    """A school the caller may read: a delisted one is 410 Gone except for stewards
    and the school itself."""
    school = get_school(session=session, school_id=school_id)
    if school.listing == "delisted" and not may_act_for(principal, school_id):
        raise Gone(
            f"School {school_id} has been delisted from the registry.",
            extra={"affiliation": f"/v1/schools/{school_id}/affiliation"},
        )
    return school


# --- writes ---------------------------------------------------------------------------------


def _alternates(values: Any) -> list[dict[str, Any]]:
    return [{"value": a.value, "lang": a.lang} for a in values]


def create_school(*, session: Session, data: SchoolCreate, actor: Principal | str, base_url: str) -> School:
    """List a new school (status ``none``); emits ``school.listed``.

    ``actor`` is the steward (or ``"cli"``/``"sample"`` for loaders).
    """
    now = utcnow()
    school = School(
        id=new_id("sch"),
        name=data.name,
        name_key=folding.sort_key(data.name),
        alternate_names=_alternates(data.alternate_names),
        country=data.country,
        city=data.city,
        website=data.website,
        website_domain=registrable_domain(data.website),
        programmes=list(data.programmes),
        languages=list(data.languages),
        listing="listed",
        contact=_contact(None, data.contact),
        created_at=now,
        updated_at=now,
    )
    session.add(school)
    session.flush()
    search_index.rebuild(session, school, new=True)
    emit_school_event(session, "school.listed", school, base_url=base_url)
    # After the emit: its counter lock orders the draws of status list entries.
    status_lists.assign(session, school)
    audit.record(
        session,
        actor=_actor_id(actor),
        action="school.create",
        target=school.id,
        details={"name": school.name, "country": school.country},
    )
    return school


def _contact(current: dict[str, Any] | None, patch: Any) -> dict[str, Any] | None:
    """Merge a :class:`Contact` patch into the stored contact (RFC 7396 member by member)."""
    if patch is None:
        return None
    merged = dict(current or {})
    for name in patch.model_fields_set:
        value = getattr(patch, name)
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    merged = {k: v for k, v in merged.items() if v}
    return merged or None


def _actor_id(actor: Principal | str) -> str:
    return actor if isinstance(actor, str) else actor.client_id


def update_school(
    *,
    session: Session,
    school_id: str,
    patch: SchoolUpdate,
    actor: Principal,
    if_match: str | None,
    base_url: str,
) -> School:
    """Apply a JSON merge patch (RFC 7396) to a school.

    ``If-Match`` is required (428/412). A ``school:self`` client may patch only
    its own school (403). ``null`` for ``name`` or ``country`` is a 422. Emits
    ``school.updated`` when a public field changed.
    """
    authorize(actor, school_id)
    school = get_school(session=session, school_id=school_id, lock=True)
    check_precondition(school, if_match, required=True)
    fields = patch.model_fields_set
    for required in ("name", "country"):
        if required in fields and getattr(patch, required) is None:
            raise Unprocessable(f"`{required}` cannot be removed.")
    before = public_dict(school, base_url=base_url)
    if "name" in fields and patch.name is not None:
        school.name = patch.name
        school.name_key = folding.sort_key(patch.name)
    if "country" in fields and patch.country is not None:
        school.country = patch.country
    if "city" in fields:
        school.city = patch.city
    if "website" in fields:
        school.website = patch.website
        school.website_domain = registrable_domain(patch.website)
    if "programmes" in fields:
        school.programmes = list(patch.programmes or [])
    if "languages" in fields:
        school.languages = list(patch.languages or [])
    if "alternate_names" in fields:
        school.alternate_names = _alternates(patch.alternate_names or [])
    contact_changed = False
    if "contact" in fields:
        merged = _contact(school.contact, patch.contact) if patch.contact is not None else None
        contact_changed = merged != school.contact
        school.contact = merged
    after = public_dict(school, base_url=base_url)
    changed = [f for f in PUBLIC_FIELDS if before[f] != after[f]]
    if not changed and not contact_changed:
        return school
    school.revision += 1
    school.updated_at = utcnow()
    session.add(school)
    session.flush()
    if changed:
        search_index.rebuild(session, school)
        emit_school_event(
            session, "school.updated", school, base_url=base_url, previous_country=before["country"]
        )
    else:  # only the contact changed: no event, but the public `updated_at` did
        changes.touch(session, changes.SCHOOL_RECORD)
    audit.record(
        session,
        actor=actor.client_id,
        action="school.update",
        target=school.id,
        details={"fields": changed + (["contact"] if contact_changed else [])},
    )
    return school


def delist_school(
    *, session: Session, school_id: str, actor: Principal, if_match: str | None, base_url: str
) -> School:
    """Remove a school from the public registry (steward); emits ``school.delisted``.

    Its alignment is kept (history stays whole) but it is no longer affiliated.
    :class:`Conflict` when it is already delisted.
    """
    school = get_school(session=session, school_id=school_id, lock=True)
    check_precondition(school, if_match, required=False)
    if school.listing == "delisted":
        raise Conflict(f"School {school_id} is already delisted.")
    school.listing = "delisted"
    school.revision += 1
    school.updated_at = utcnow()
    session.add(school)
    session.flush()
    search_index.relist(session, school)
    emit_school_event(session, "school.delisted", school, base_url=base_url)
    status_lists.record(session, school)  # its credentials are no longer true
    audit.record(session, actor=actor.client_id, action="school.delist", target=school.id, details={})
    return school


def erase_contact(*, session: Session, school_id: str, actor: Principal) -> None:
    """Erase the school's private contact details (steward). No event: nothing public changed."""
    school = get_school(session=session, school_id=school_id, lock=True)
    if school.contact is not None:
        school.contact = None
        school.revision += 1
        school.updated_at = utcnow()
        session.add(school)
        # No event (nothing public but `updated_at` changed); the caches must still learn of it.
        changes.touch(session, changes.SCHOOL_RECORD)
    audit.record(session, actor=actor.client_id, action="school.contact.erase", target=school.id, details={})


def listed_schools_for_snapshot(
    *, session: Session, base_url: str, batch: int = 500
) -> Iterator[dict[str, Any]]:
    """Every listed school (public representation) with ``affiliation``:
    ``{"affiliated", "status", "aligned_version", "reaffirmation_due_by"}``, ordered by name.

    For ``GET /v1/snapshot``; no credentials (fetch ``links.affiliation`` for a signed one).
    Rows come from a cursor ``batch`` at a time (a server-side cursor on PostgreSQL), so a
    registry of any size is never held in memory at once.
    """
    from service.registry.models import AFFILIATED_STATUSES

    stmt = (
        select(School)
        .where(col(School.listing) == "listed")
        .order_by(col(School.name_key), col(School.id))
        .execution_options(yield_per=batch)
    )
    for school in session.exec(stmt):
        body = public_dict(school, base_url=base_url)
        body["affiliation"] = {
            "affiliated": school.alignment_status in AFFILIATED_STATUSES,
            "status": school.alignment_status,
            "aligned_version": school.aligned_version,
            "reaffirmation_due_by": ts(school.reaffirmation_due_by),
        }
        # Read once: a school already written out needs no place in the identity map.
        session.expunge(school)
        yield body
