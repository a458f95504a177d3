"""The standards publication: drafts, publishing, withdrawing, translations and reads.

Plain functions with keyword-only arguments; the caller owns the transaction
(they never commit) and events are emitted inside it (DESIGN §2, §4, §5).

Invariants kept here:

- A version's number is greater than every other version of its document
  that existed when it was drafted, and a draft can only be published while
  no higher-numbered version has been published: "most recently published"
  and "highest number" are the same thing.
- At most one version of a document is ``published`` (the current one);
  every other released version is ``superseded`` or ``withdrawn``.
  Publishes and withdrawals lock the document row first (``SELECT … FOR
  UPDATE`` on PostgreSQL; SQLite writers are serialised by ``BEGIN
  IMMEDIATE``), then re-read the version, so concurrent publishes serialise
  and a second publish of the same draft is a 409.
- Published content (title, summary, sections, clauses, regional notes,
  contributors) and published translations never change; ``content_hash``
  (``sha256:`` + hex over the canonical content, see :func:`content_hash`)
  proves it.

Interface for other domains: :data:`DEFAULT_DOCUMENT`,
:func:`published_versions`, :func:`current_version_number`,
:func:`current_versions_for_snapshot`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, delete, select

from service import audit
from service.auth.service import Principal
from service.db import utcnow
from service.errors import Conflict, NotFound, Unprocessable
from service.events import service as events
from service.http import JSON, check_if_match
from service.ids import new_id
from service.jsonutil import isoformat
from service.standards import diff as diffing
from service.standards import render
from service.standards.models import (
    DRAFT,
    PUBLISHED,
    RELEASED,
    SUPERSEDED,
    WITHDRAWN,
    StandardsClause,
    StandardsContributor,
    StandardsDocument,
    StandardsRegionalNote,
    StandardsSection,
    StandardsTranslation,
    StandardsVersion,
)
from service.standards.schemas import (
    VERSION_PATTERN,
    DocumentCreate,
    DraftReplace,
    TranslationPut,
    normalise_language,
)

#: The slug of the IMI Network's document (the registry states alignment against it).
DEFAULT_DOCUMENT = "training-standards"

EVENT_PUBLISHED = "standards.version.published"
EVENT_WITHDRAWN = "standards.version.withdrawn"
EVENT_TRANSLATION = "standards.translation.published"


# --- small helpers ------------------------------------------------------------------------------


def parse_version(value: str) -> tuple[int, int]:
    """``"2.10"`` -> ``(2, 10)``; :class:`Unprocessable` when not ``major.minor``."""
    import re

    if not re.fullmatch(VERSION_PATTERN, value or ""):
        raise Unprocessable(f"{value!r} is not a version number of the form major.minor (e.g. '2.0').")
    major, minor = value.split(".")
    return int(major), int(minor)


def _number(v: StandardsVersion) -> tuple[int, int]:
    return (v.major, v.minor)


def _actor(actor: Principal | str) -> str:
    return actor if isinstance(actor, str) else actor.client_id


def _links(base_url: str | None, slug: str, version: str | None = None) -> dict[str, str | None]:
    base = f"{base_url or ''}/v1/standards/{slug}"
    links: dict[str, str | None] = {"document": base, "current": f"{base}/current"}
    if version is not None:
        links = {"self": f"{base}/versions/{version}", **links}
    return links


def version_url(base_url: str | None, slug: str, version: str) -> str:
    """The absolute (or, without ``base_url``, root-relative) URL of a version."""
    return f"{base_url or ''}/v1/standards/{slug}/versions/{version}"


def diff_url(base_url: str | None, slug: str, from_version: str, to_version: str) -> str:
    """The URL of the diff between two versions."""
    return f"{base_url or ''}/v1/standards/{slug}/diff?from={from_version}&to={to_version}"


# --- loading ------------------------------------------------------------------------------------


def _document(session: Session, slug: str, *, lock: bool = False) -> StandardsDocument:
    stmt = select(StandardsDocument).where(col(StandardsDocument.slug) == slug)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    doc = session.exec(stmt).first()
    if doc is None:
        raise NotFound(f"There is no standards document {slug!r}.")
    return doc


def _versions(session: Session, doc: StandardsDocument, *, fresh: bool = False) -> list[StandardsVersion]:
    """Every version of ``doc``, ascending by number."""
    stmt = select(StandardsVersion).where(col(StandardsVersion.document_id) == doc.id)
    if fresh:
        stmt = stmt.execution_options(populate_existing=True)
    return sorted(session.exec(stmt).all(), key=_number)


def _version(
    session: Session, doc: StandardsDocument, version: str, *, editor: bool, lock: bool = False
) -> StandardsVersion:
    """One version; drafts only for editors (404 for everybody else, DESIGN §3)."""
    try:
        major, minor = parse_version(version)
    except Unprocessable as exc:
        raise NotFound(f"There is no version {version!r} of {doc.slug!r}.") from exc
    stmt = select(StandardsVersion).where(
        col(StandardsVersion.document_id) == doc.id,
        col(StandardsVersion.major) == major,
        col(StandardsVersion.minor) == minor,
    )
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    row = session.exec(stmt).first()
    if row is None or (row.status == DRAFT and not editor):
        raise NotFound(f"There is no version {version!r} of {doc.slug!r}.")
    return row


def _current(versions: Sequence[StandardsVersion]) -> StandardsVersion | None:
    for v in versions:
        if v.status == PUBLISHED:
            return v
    return None


def load_content(session: Session, ver: StandardsVersion) -> dict[str, Any]:
    """The canonical content of a version in its source language.

    ``{"title", "summary", "sections": [{"key", "title", "intro", "clauses":
    [{"key", "kind", "applies_to", "text"}]}], "regional_notes": [{"region",
    "target", "text"}], "contributors": [{"name", "affiliation", "region"}]}``,
    lists in their order.
    """
    sections = session.exec(
        select(StandardsSection)
        .where(col(StandardsSection.version_id) == ver.id)
        .order_by(col(StandardsSection.position))
    ).all()
    clauses = session.exec(
        select(StandardsClause)
        .where(col(StandardsClause.version_id) == ver.id)
        .order_by(col(StandardsClause.position))
    ).all()
    by_section: dict[int, list[StandardsClause]] = {}
    for clause in clauses:
        by_section.setdefault(clause.section_id, []).append(clause)
    notes = session.exec(
        select(StandardsRegionalNote)
        .where(col(StandardsRegionalNote.version_id) == ver.id)
        .order_by(col(StandardsRegionalNote.position))
    ).all()
    people = session.exec(
        select(StandardsContributor)
        .where(col(StandardsContributor.version_id) == ver.id)
        .order_by(col(StandardsContributor.position))
    ).all()
    return {
        "title": ver.title,
        "summary": ver.summary,
        "sections": [
            {
                "key": s.key,
                "title": s.title,
                "intro": s.intro,
                "clauses": [
                    {"key": c.key, "kind": c.kind, "applies_to": c.applies_to, "text": c.text}
                    for c in by_section.get(s.id or 0, [])
                ],
            }
            for s in sections
        ],
        "regional_notes": [{"region": n.region, "target": n.target, "text": n.text} for n in notes],
        "contributors": [{"name": p.name, "affiliation": p.affiliation, "region": p.region} for p in people],
    }


def content_hash(content: dict[str, Any], *, language: str) -> str:
    """``sha256:<hex>`` over the canonical serialisation of ``content`` plus its language.

    Canonical form: JSON with sorted keys, no insignificant whitespace,
    UTF-8 (for this all-string content it coincides with RFC 8785 JCS).
    """
    canonical = json.dumps(
        {"language": language, **content}, sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _translations(session: Session, ver: StandardsVersion, *, editor: bool) -> list[StandardsTranslation]:
    rows = session.exec(
        select(StandardsTranslation)
        .where(col(StandardsTranslation.version_id) == ver.id)
        .order_by(col(StandardsTranslation.language))
    ).all()
    if ver.status == DRAFT and editor:
        return list(rows)
    return [t for t in rows if t.status == PUBLISHED]


def choose_language(requested: str | None, source: str, available: Sequence[str]) -> str:
    """The language to serve for ``?lang=`` (RFC 4647 §3.4 lookup, then the source language).

    ``de-AT`` is served by ``de`` when only ``de`` exists; an unknown
    language falls back to ``source``.
    """
    if not requested:
        return source
    parts = requested.split("-")
    while parts:
        candidate = "-".join(parts)
        if candidate == source or candidate in available:
            return candidate
        parts.pop()
        if parts and len(parts[-1]) == 1:  # never end on a singleton (RFC 4647 §3.4)
            parts.pop()
    return source


def _apply_translation(content: dict[str, Any], texts: dict[str, Any]) -> dict[str, Any]:
    sections = texts.get("sections", {})
    clauses = texts.get("clauses", {})
    out = dict(content)
    out["title"] = texts.get("title") or content["title"]
    out["summary"] = texts.get("summary") or content["summary"]
    out["sections"] = [
        {
            **s,
            "title": sections.get(s["key"], {}).get("title") or s["title"],
            "intro": sections.get(s["key"], {}).get("intro") or s["intro"],
            "clauses": [{**c, "text": clauses.get(c["key"]) or c["text"]} for c in s["clauses"]],
        }
        for s in content["sections"]
    ]
    return out


@dataclass(frozen=True)
class VersionView:
    """A version as served: the representation dict and what the HTTP layer needs.

    ``cacheable`` is true for everything but drafts (their reads are
    ``private, no-cache``); ``last_modified`` is the last change of the
    version's row (publication, status, translation).
    """

    document: str
    version: str
    status: str
    language: str
    representation: dict[str, Any]
    last_modified: dt.datetime
    content: dict[str, Any]

    @property
    def cacheable(self) -> bool:
        return self.status != DRAFT

    def json_etag(self) -> str:
        """The ETag of the JSON representation (what ``If-Match`` is compared with)."""
        body = render.render_version(self.representation, JSON)
        return render.representation_etag(JSON, self.language, self.status, body)


def _view(
    session: Session,
    doc: StandardsDocument,
    ver: StandardsVersion,
    *,
    lang: str | None,
    editor: bool,
    base_url: str | None,
) -> VersionView:
    content = load_content(session, ver)
    translations = _translations(session, ver, editor=editor)
    available = [t.language for t in translations]
    served = choose_language(lang, doc.language, available)
    shown = content
    if served != doc.language:
        texts = next(t.texts for t in translations if t.language == served)
        shown = _apply_translation(content, texts)
    rep: dict[str, Any] = {
        "document": doc.slug,
        "version": ver.version,
        "status": ver.status,
        "title": shown["title"],
        "summary": shown["summary"],
        "language": served,
        "source_language": doc.language,
        "based_on": ver.based_on,
        "published_at": ver.published_at,
        "effective_from": ver.effective_from,
        "withdrawn_at": ver.withdrawn_at,
        "content_hash": ver.content_hash,
        "sections": [
            {
                "key": s["key"],
                "order": i,
                "title": s["title"],
                "intro": s["intro"],
                "clauses": [{"key": c["key"], "order": j, **c} for j, c in enumerate(s["clauses"], start=1)],
            }
            for i, s in enumerate(shown["sections"], start=1)
        ],
        "regional_notes": shown["regional_notes"],
        "contributors": shown["contributors"],
        "translations": available,
        "links": _links(base_url, doc.slug, ver.version),
    }
    return VersionView(
        document=doc.slug,
        version=ver.version,
        status=ver.status,
        language=served,
        representation=rep,
        last_modified=ver.updated_at,
        content=content,
    )


# --- reads --------------------------------------------------------------------------------------


def version_view(
    *,
    session: Session,
    slug: str,
    version: str,
    lang: str | None = None,
    editor: bool = False,
    base_url: str | None = None,
) -> VersionView:
    """One version in full; ``version="current"`` resolves the current one.

    ``lang`` is a normalised BCP 47 tag or ``None``. Raises :class:`NotFound`
    for an unknown document or version, a draft for non-editors, or no
    current version.
    """
    doc = _document(session, slug)
    if version == "current":
        ver = _current(_versions(session, doc))
        if ver is None:
            raise NotFound(f"{slug!r} has no published version yet.")
    else:
        ver = _version(session, doc, version, editor=editor)
    return _view(session, doc, ver, lang=lang, editor=editor, base_url=base_url)


def clause_view(
    *,
    session: Session,
    slug: str,
    version: str,
    key: str,
    lang: str | None = None,
    editor: bool = False,
    base_url: str | None = None,
) -> VersionView:
    """One clause of one version (with its section and regional notes), as a view.

    The view's ``representation`` is the clause's shape (see ``ClauseView``).
    """
    view = version_view(
        session=session, slug=slug, version=version, lang=lang, editor=editor, base_url=base_url
    )
    rep = view.representation
    for section in rep["sections"]:
        for clause in section["clauses"]:
            if clause["key"] == key:
                url = version_url(base_url, slug, view.version)
                clause_rep = {
                    "document": slug,
                    "version": view.version,
                    "status": view.status,
                    "language": view.language,
                    "key": key,
                    "order": clause["order"],
                    "section": {"key": section["key"], "title": section["title"]},
                    "kind": clause["kind"],
                    "applies_to": clause["applies_to"],
                    "text": clause["text"],
                    "regional_notes": [n for n in rep["regional_notes"] if n["target"] == key],
                    "links": {"self": f"{url}/clauses/{key}", "version": url},
                }
                return VersionView(
                    document=slug,
                    version=view.version,
                    status=view.status,
                    language=view.language,
                    representation=clause_rep,
                    last_modified=view.last_modified,
                    content=view.content,
                )
    raise NotFound(f"Version {view.version} of {slug!r} has no clause {key!r}.")


def _document_rep(session: Session, doc: StandardsDocument, base_url: str | None) -> dict[str, Any]:
    versions = _versions(session, doc)
    current = _current(versions)
    return {
        "id": doc.slug,
        "slug": doc.slug,
        "title": doc.title,
        "language": doc.language,
        "current_version": current.version if current else None,
        "versions": [v.version for v in versions if v.status in RELEASED],
        "links": {
            "self": f"{base_url or ''}/v1/standards/{doc.slug}",
            "current": f"{base_url or ''}/v1/standards/{doc.slug}/current" if current else None,
            "versions": f"{base_url or ''}/v1/standards/{doc.slug}/versions",
        },
    }


def list_documents(
    *, session: Session, base_url: str | None = None, after: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Documents ordered by slug (after ``after``), each with its current version number."""
    stmt = select(StandardsDocument).order_by(col(StandardsDocument.slug))
    if after is not None:
        stmt = stmt.where(col(StandardsDocument.slug) > after)
    return [_document_rep(session, d, base_url) for d in session.exec(stmt.limit(limit)).all()]


def document(*, session: Session, slug: str, base_url: str | None = None) -> dict[str, Any]:
    """Document metadata, its current version and released version numbers, and links."""
    return _document_rep(session, _document(session, slug), base_url)


def list_versions(
    *,
    session: Session,
    slug: str,
    editor: bool = False,
    base_url: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Version summaries ascending by number (after ``after``); drafts only for editors."""
    doc = _document(session, slug)
    floor = parse_version(after) if after else None
    out = []
    for v in _versions(session, doc):
        if (v.status == DRAFT and not editor) or (floor is not None and _number(v) <= floor):
            continue
        out.append(
            {
                "version": v.version,
                "status": v.status,
                "title": v.title,
                "published_at": v.published_at,
                "effective_from": v.effective_from,
                "withdrawn_at": v.withdrawn_at,
                "content_hash": v.content_hash,
                "links": {"self": version_url(base_url, slug, v.version)},
            }
        )
        if len(out) >= limit:
            break
    return out


def diff(
    *,
    session: Session,
    slug: str,
    from_version: str,
    to_version: str,
    editor: bool = False,
) -> tuple[dict[str, Any], bool]:
    """The clause-level diff between any two versions, either direction.

    Returns ``(body, immutable)``; ``immutable`` is false when a draft is
    involved. :class:`NotFound` for unknown versions (drafts for non-editors).
    """
    doc = _document(session, slug)
    before = _version(session, doc, from_version, editor=editor)
    after = _version(session, doc, to_version, editor=editor)
    changes = diffing.diff_contents(load_content(session, before), load_content(session, after))
    body = {"document": slug, "from": before.version, "to": after.version, **changes}
    return body, DRAFT not in (before.status, after.status)


def published_versions(*, session: Session, slug: str) -> list[str]:
    """Versions of ``slug`` that were published and are not withdrawn, ascending (``["1.0", "2.0"]``).

    An unknown document has none (``[]``).
    """
    doc = session.exec(select(StandardsDocument).where(col(StandardsDocument.slug) == slug)).first()
    if doc is None:
        return []
    return [v.version for v in _versions(session, doc) if v.status in RELEASED]


def current_version_number(*, session: Session, slug: str) -> str | None:
    """The current version of ``slug`` (``"2.0"``), or ``None`` when none is published."""
    row = session.exec(
        select(StandardsVersion.version)
        .join(StandardsDocument, col(StandardsDocument.id) == col(StandardsVersion.document_id))
        .where(col(StandardsDocument.slug) == slug, col(StandardsVersion.status) == PUBLISHED)
    ).first()
    return row


def current_versions_for_snapshot(*, session: Session, base_url: str | None = None) -> list[dict[str, Any]]:
    """The current version of every document, each as its full JSON representation (source language)."""
    out = []
    for doc in session.exec(select(StandardsDocument).order_by(col(StandardsDocument.slug))).all():
        ver = _current(_versions(session, doc))
        if ver is not None:
            out.append(_view(session, doc, ver, lang=None, editor=False, base_url=base_url).representation)
    return out


# --- writes -------------------------------------------------------------------------------------


def _write_content(session: Session, ver: StandardsVersion, content: dict[str, Any]) -> None:
    """Replace the content rows of ``ver`` with ``content`` (canonical shape)."""
    for table in (StandardsClause, StandardsRegionalNote, StandardsContributor):
        session.exec(delete(table).where(col(table.version_id) == ver.id))  # type: ignore[attr-defined]
    session.exec(delete(StandardsSection).where(col(StandardsSection.version_id) == ver.id))
    ver.title = content["title"]
    ver.summary = content.get("summary") or ""
    for i, s in enumerate(content["sections"], start=1):
        section = StandardsSection(
            version_id=ver.id, key=s["key"], position=i, title=s["title"], intro=s["intro"]
        )
        session.add(section)
        session.flush()
        assert section.id is not None
        for j, c in enumerate(s["clauses"], start=1):
            session.add(
                StandardsClause(
                    version_id=ver.id,
                    section_id=section.id,
                    key=c["key"],
                    position=j,
                    kind=c["kind"],
                    applies_to=c["applies_to"],
                    text=c["text"],
                )
            )
    for i, n in enumerate(content["regional_notes"], start=1):
        session.add(
            StandardsRegionalNote(
                version_id=ver.id, position=i, region=n["region"], target=n["target"], text=n["text"]
            )
        )
    for i, p in enumerate(content["contributors"], start=1):
        session.add(
            StandardsContributor(
                version_id=ver.id,
                position=i,
                name=p["name"],
                affiliation=p["affiliation"],
                region=p["region"],
            )
        )
    session.flush()


def _validate_content(body: DraftReplace) -> dict[str, Any]:
    """The canonical content of a replace body; :class:`Unprocessable` for duplicate or dangling keys."""
    errors: list[str] = []
    seen: set[str] = set()
    for s in body.sections:
        if s.key in seen:
            errors.append(f"key {s.key!r} is used twice")
        seen.add(s.key)
        for c in s.clauses:
            if c.key in seen:
                errors.append(f"key {c.key!r} is used twice")
            seen.add(c.key)
    for n in body.regional_notes:
        if n.target not in seen:
            errors.append(
                f"regional note for {n.region} targets {n.target!r}, which is not a key of this version"
            )
    if errors:
        raise Unprocessable(
            "The draft's keys do not add up: " + "; ".join(errors) + ".",
            extra={"errors": [{"msg": e} for e in errors]},
        )
    return {
        "title": body.title,
        "summary": body.summary,
        "sections": [
            {
                "key": s.key,
                "title": s.title,
                "intro": s.intro or None,
                "clauses": [
                    {"key": c.key, "kind": c.kind, "applies_to": c.applies_to, "text": c.text}
                    for c in s.clauses
                ],
            }
            for s in body.sections
        ],
        "regional_notes": [
            {"region": n.region, "target": n.target, "text": n.text} for n in body.regional_notes
        ],
        "contributors": [
            {"name": p.name, "affiliation": p.affiliation, "region": p.region} for p in body.contributors
        ],
    }


def create_document(
    *, session: Session, slug: str, title: str, language: str, actor: Principal | str
) -> StandardsDocument:
    """A new, empty document; :class:`Conflict` when ``slug`` exists, 422 for a bad slug."""
    import re

    if not re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?", slug):
        raise Unprocessable(
            "A document slug is lower-case letters, digits and hyphens (e.g. 'training-standards')."
        )
    if session.exec(select(StandardsDocument).where(col(StandardsDocument.slug) == slug)).first():
        raise Conflict(f"The document {slug!r} exists already.")
    now = utcnow()
    doc = StandardsDocument(
        id=new_id("doc"),
        slug=slug,
        title=title,
        language=normalise_language(language),
        created_at=now,
        updated_at=now,
    )
    session.add(doc)
    session.flush()
    audit.record(
        session,
        actor=_actor(actor),
        action="standards.document.create",
        target=slug,
        details={"title": title},
    )
    return doc


def create_draft(
    *,
    session: Session,
    slug: str,
    version: str,
    actor: Principal | str,
    based_on: str | None = None,
    new_document: DocumentCreate | None = None,
    base_url: str | None = None,
) -> VersionView:
    """A new draft ``version`` of ``slug``, optionally copying ``based_on``'s content.

    ``new_document`` creates the document when it does not exist (404
    otherwise). :class:`Conflict` when ``version`` is not greater than every
    existing version; :class:`Unprocessable` when ``based_on`` does not exist.
    """
    major, minor = parse_version(version)
    exists = session.exec(select(StandardsDocument).where(col(StandardsDocument.slug) == slug)).first()
    if exists is None:
        if new_document is None:
            raise NotFound(f"There is no standards document {slug!r}; send `document` to create it.")
        create_document(
            session=session, slug=slug, title=new_document.title, language=new_document.language, actor=actor
        )
    doc = _document(session, slug, lock=True)
    versions = _versions(session, doc, fresh=True)
    if versions and (major, minor) <= _number(versions[-1]):
        raise Conflict(
            f"A new version must be greater than every existing one; the highest is {versions[-1].version}.",
            extra={"highest_version": versions[-1].version},
        )
    content: dict[str, Any] = {
        "title": doc.title,
        "summary": "",
        "sections": [],
        "regional_notes": [],
        "contributors": [],
    }
    if based_on is not None:
        source = next((v for v in versions if v.version == based_on), None)
        if source is None:
            raise Unprocessable(f"`based_on`: there is no version {based_on!r} of {slug!r}.")
        content = load_content(session, source)
    now = utcnow()
    ver = StandardsVersion(
        id=new_id("ver"),
        document_id=doc.id,
        version=f"{major}.{minor}",
        major=major,
        minor=minor,
        status=DRAFT,
        title=content["title"],
        summary=content["summary"],
        based_on=based_on,
        content_hash=content_hash(content, language=doc.language),
        created_at=now,
        updated_at=now,
    )
    session.add(ver)
    session.flush()
    _write_content(session, ver, content)
    audit.record(
        session,
        actor=_actor(actor),
        action="standards.version.create",
        target=f"{slug}/{ver.version}",
        details={"based_on": based_on},
    )
    return _view(session, doc, ver, lang=None, editor=True, base_url=base_url)


def replace_draft(
    *,
    session: Session,
    slug: str,
    version: str,
    body: DraftReplace,
    if_match: str | None,
    actor: Principal | str,
    base_url: str | None = None,
) -> VersionView:
    """Replace a draft's content with ``body`` (its edited representation).

    ``If-Match`` is required (428 without, 412 when stale; strong comparison
    with the ETag of the draft's JSON representation in its source language).
    :class:`Conflict` when the version is not a draft (published content is
    immutable).
    """
    doc = _document(session, slug)
    ver = _version(session, doc, version, editor=True, lock=True)
    if ver.status != DRAFT:
        raise Conflict(f"Version {ver.version} is {ver.status}: published content never changes.")
    check_if_match(
        if_match,
        _view(session, doc, ver, lang=None, editor=True, base_url=base_url).json_etag(),
        required=True,
    )
    content = _validate_content(body)
    _write_content(session, ver, content)
    ver.effective_from = body.effective_from
    ver.content_hash = content_hash(content, language=doc.language)
    ver.revision += 1
    ver.updated_at = utcnow()
    session.add(ver)
    session.flush()
    audit.record(
        session,
        actor=_actor(actor),
        action="standards.version.update",
        target=f"{slug}/{ver.version}",
        details={"content_hash": ver.content_hash},
    )
    return _view(session, doc, ver, lang=None, editor=True, base_url=base_url)


def _translation_problems(content: dict[str, Any], texts: dict[str, Any]) -> list[str]:
    """What a translation misses or adds compared with ``content`` (empty when it fits)."""
    problems: list[str] = []
    sections = texts.get("sections", {})
    clauses = texts.get("clauses", {})
    want_sections = {s["key"]: s for s in content["sections"]}
    want_clauses = {c["key"] for s in content["sections"] for c in s["clauses"]}
    for key in sorted(set(want_sections) - set(sections)):
        problems.append(f"section {key} is not translated")
    for key in sorted(set(sections) - set(want_sections)):
        problems.append(f"section {key} is not in this version")
    for key in sorted(want_clauses - set(clauses)):
        problems.append(f"clause {key} is not translated")
    for key in sorted(set(clauses) - want_clauses):
        problems.append(f"clause {key} is not in this version")
    for key, section in want_sections.items():
        if section["intro"] and key in sections and not sections[key].get("intro"):
            problems.append(f"the intro of section {key} is not translated")
    if content["summary"] and not texts.get("summary"):
        problems.append("the summary is not translated")
    return problems


def _translation_rep(
    doc: StandardsDocument, ver: StandardsVersion, tr: StandardsTranslation, base_url: str | None
) -> dict[str, Any]:
    texts = tr.texts
    return {
        "document": doc.slug,
        "version": ver.version,
        "language": tr.language,
        "status": tr.status,
        "published_at": tr.published_at,
        "title": texts.get("title"),
        "summary": texts.get("summary"),
        "sections": texts.get("section_list", []),
        "links": {"version": f"{version_url(base_url, doc.slug, ver.version)}?lang={tr.language}"},
    }


def put_translation(
    *,
    session: Session,
    slug: str,
    version: str,
    language: str,
    body: TranslationPut,
    actor: Principal | str,
    base_url: str | None = None,
    published_at: dt.datetime | None = None,
) -> tuple[dict[str, Any], bool]:
    """Create or replace a translation; returns ``(representation, created)``.

    On a draft the translation stays editable. On a published (or
    superseded) version it is published at once and emits
    ``standards.translation.published``; a second ``PUT`` is a
    :class:`Conflict`, as is any ``PUT`` on a withdrawn version.
    :class:`Unprocessable` for a malformed tag, the source language, or a
    translation that does not cover exactly the version's keys.
    """
    lang = normalise_language(language)
    doc = _document(session, slug)
    if lang == doc.language:
        raise Unprocessable(f"{lang!r} is the source language of {slug!r}; edit the version itself.")
    ver = _version(session, doc, version, editor=True, lock=True)
    if ver.status == WITHDRAWN:
        raise Conflict(f"Version {ver.version} is withdrawn: it takes no new translations.")
    existing = session.exec(
        select(StandardsTranslation).where(
            col(StandardsTranslation.version_id) == ver.id, col(StandardsTranslation.language) == lang
        )
    ).first()
    if existing is not None and existing.status == PUBLISHED:
        raise Conflict(f"The {lang} translation of version {ver.version} is published and never changes.")
    texts: dict[str, Any] = {
        "title": body.title,
        "summary": body.summary,
        "sections": {s.key: {"title": s.title, "intro": s.intro} for s in body.sections},
        "clauses": {c.key: c.text for s in body.sections for c in s.clauses},
        "section_list": [s.model_dump(exclude_none=True) for s in body.sections],
    }
    problems = _translation_problems(load_content(session, ver), texts)
    if problems:
        raise Unprocessable(
            f"The {lang} translation does not match version {ver.version}: " + "; ".join(problems) + ".",
            extra={"errors": [{"msg": p} for p in problems]},
        )
    now = utcnow()
    tr = existing or StandardsTranslation(version_id=ver.id, language=lang, status=DRAFT, updated_at=now)
    tr.texts = texts
    tr.updated_at = now
    publish_now = ver.status in RELEASED
    if publish_now:
        tr.status = PUBLISHED
        tr.published_at = published_at or now
    session.add(tr)
    ver.revision += 1
    ver.updated_at = (published_at or now) if publish_now else now
    session.add(ver)
    session.flush()
    if publish_now:
        _emit_translation(session, doc, ver, lang, base_url)
    audit.record(
        session,
        actor=_actor(actor),
        action="standards.translation.put",
        target=f"{slug}/{ver.version}/{lang}",
        details={"status": tr.status},
    )
    return _translation_rep(doc, ver, tr, base_url), existing is None


def _emit_translation(
    session: Session, doc: StandardsDocument, ver: StandardsVersion, lang: str, base_url: str | None
) -> None:
    events.emit(
        session,
        EVENT_TRANSLATION,
        {
            "document": doc.slug,
            "version": ver.version,
            "language": lang,
            "links": {"version": f"{version_url(base_url, doc.slug, ver.version)}?lang={lang}"},
        },
    )


def publish(
    *,
    session: Session,
    slug: str,
    version: str,
    actor: Principal | str,
    effective_from: dt.datetime | None = None,
    summary: str | None = None,
    if_match: str | None = None,
    base_url: str | None = None,
    published_at: dt.datetime | None = None,
) -> VersionView:
    """Publish a draft: it becomes current, the previous current one is superseded.

    Locks the document row, then re-reads the version (DESIGN §4), so
    concurrent publishes serialise. ``published_at`` (default now) is for the
    sample loader. Emits ``standards.version.published`` (then
    ``standards.translation.published`` for each of the draft's
    translations) in the caller's transaction.

    Raises :class:`Conflict` when the version is no longer a draft, when a
    higher version has been published, when the draft has no clauses, or
    when a draft translation no longer matches the content;
    :class:`PreconditionFailed` for a stale ``If-Match``.
    """
    doc = _document(session, slug, lock=True)
    versions = _versions(session, doc, fresh=True)
    ver = _version(session, doc, version, editor=True)
    if ver.status != DRAFT:
        raise Conflict(f"Version {ver.version} is {ver.status}, not a draft: it cannot be published again.")
    if if_match is not None:
        check_if_match(
            if_match,
            _view(session, doc, ver, lang=None, editor=True, base_url=base_url).json_etag(),
            required=False,
        )
    higher = [v for v in versions if v.status != DRAFT and _number(v) > _number(ver)]
    if higher:
        raise Conflict(
            f"Version {higher[-1].version} is already published; {ver.version} can no longer be published.",
            extra={"highest_version": higher[-1].version},
        )
    if summary is not None:
        ver.summary = summary
    content = load_content(session, ver)
    if not any(s["clauses"] for s in content["sections"]):
        raise Conflict(f"Version {ver.version} has no clauses: there is nothing to publish.")
    drafts = _translations(session, ver, editor=True)
    for tr in drafts:
        problems = _translation_problems(content, tr.texts)
        if problems:
            raise Conflict(
                f"The {tr.language} translation no longer matches the draft ({'; '.join(problems)}): "
                "put it again before publishing.",
                extra={"language": tr.language},
            )
    now = published_at or utcnow()
    previous = _current(versions)
    if previous is not None:
        previous.status = SUPERSEDED
        previous.revision += 1
        previous.updated_at = now
        session.add(previous)
    ver.status = PUBLISHED
    ver.published_at = now
    ver.effective_from = effective_from or ver.effective_from or now
    ver.content_hash = content_hash(content, language=doc.language)
    ver.revision += 1
    ver.updated_at = now
    session.add(ver)
    for tr in drafts:
        tr.status = PUBLISHED
        tr.published_at = now
        session.add(tr)
    session.flush()

    if previous is not None:
        changes = diffing.change_summary(diffing.diff_contents(load_content(session, previous), content))
    else:
        changes = {
            "added": [c["key"] for s in content["sections"] for c in s["clauses"]],
            "removed": [],
            "modified": [],
            "moved": [],
        }
    events.emit(
        session,
        EVENT_PUBLISHED,
        {
            "document": slug,
            "version": ver.version,
            "title": ver.title,
            "previous_version": previous.version if previous else None,
            "reaffirmation_required": previous is not None and ver.major > previous.major,
            "effective_from": isoformat(ver.effective_from),
            "changes": changes,
            "links": {
                "version": version_url(base_url, slug, ver.version),
                "diff": diff_url(base_url, slug, previous.version, ver.version) if previous else None,
            },
        },
    )
    for tr in drafts:
        _emit_translation(session, doc, ver, tr.language, base_url)
    audit.record(
        session,
        actor=_actor(actor),
        action="standards.version.publish",
        target=f"{slug}/{ver.version}",
        details={
            "previous_version": previous.version if previous else None,
            "content_hash": ver.content_hash,
        },
    )
    return _view(session, doc, ver, lang=None, editor=True, base_url=base_url)


def withdraw(
    *,
    session: Session,
    slug: str,
    version: str,
    actor: Principal | str,
    if_match: str | None = None,
    base_url: str | None = None,
) -> VersionView:
    """Withdraw a published or superseded version.

    Withdrawing the current version makes the highest remaining superseded
    version current again (its status goes back to ``published``). Emits
    ``standards.version.withdrawn``. :class:`Conflict` for drafts and for
    versions already withdrawn.
    """
    doc = _document(session, slug, lock=True)
    versions = _versions(session, doc, fresh=True)
    ver = _version(session, doc, version, editor=True)
    if ver.status not in RELEASED:
        raise Conflict(f"Version {ver.version} is {ver.status}: only published versions can be withdrawn.")
    if if_match is not None:
        check_if_match(
            if_match,
            _view(session, doc, ver, lang=None, editor=True, base_url=base_url).json_etag(),
            required=False,
        )
    now = utcnow()
    was_current = ver.status == PUBLISHED
    ver.status = WITHDRAWN
    ver.withdrawn_at = now
    ver.revision += 1
    ver.updated_at = now
    session.add(ver)
    current = _current(versions) if not was_current else None
    if was_current:
        remaining = [v for v in versions if v.status == SUPERSEDED]
        if remaining:
            current = remaining[-1]
            current.status = PUBLISHED
            current.revision += 1
            current.updated_at = now
            session.add(current)
    session.flush()
    events.emit(
        session,
        EVENT_WITHDRAWN,
        {
            "document": slug,
            "version": ver.version,
            "current_version": current.version if current else None,
            "links": {
                "version": version_url(base_url, slug, ver.version),
                "current": version_url(base_url, slug, current.version) if current else None,
            },
        },
    )
    audit.record(
        session,
        actor=_actor(actor),
        action="standards.version.withdraw",
        target=f"{slug}/{ver.version}",
        details={"current_version": current.version if current else None},
    )
    return _view(session, doc, ver, lang=None, editor=True, base_url=base_url)
