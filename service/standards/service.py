"""The write side of the standards publication: documents, drafts, translations; publishing
and withdrawing (``publishing.py``, importable from here).

Plain functions with keyword-only arguments; the caller owns the transaction
(they never commit) and events are emitted inside it (DESIGN §2, §4, §5).
Reads live in ``views.py``; a version's canonical content and its hash in
``content.py``; finding and locking rows in ``lookup.py``; what every write of a
version shares (``If-Match``, counting a change) in ``writes.py``.

Invariants kept here:

- A version's number is greater than every other version of its document
  that existed when it was drafted (publishing keeps the rest of the ordering:
  see ``publishing.py``).
- Published content (title, summary, sections, clauses, regional notes,
  contributors) and published translations never change; ``content_hash``
  (``sha256:`` + hex over the canonical content, see
  :func:`~service.standards.content.content_hash`) proves it.

Interface for other domains (defined in ``releases.py``, importable from here as
it always was): :data:`DEFAULT_DOCUMENT`, :func:`published_versions`,
:func:`current_version_number`, :func:`hold_releases`, :func:`current_versions_for_snapshot`,
:func:`representations_change_at`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, col, select

from service.core import audit
from service.core.db import utcnow
from service.core.errors import Conflict, NotFound, Unprocessable
from service.core.ids import new_id
from service.security.clients import Principal
from service.standards import events, lookup, mdform, translations
from service.standards.content import (
    content_from_draft,
    content_hash,
    empty_content,
    load_content,
    without_change_notes,
    write_content,
)
from service.standards.models import (
    DRAFT,
    PUBLISHED,
    RELEASED,
    WITHDRAWN,
    StandardsDocument,
    StandardsTranslation,
    StandardsVersion,
)

# The "X as X" names are re-exports: other packages have always imported them from here.
from service.standards.publishing import publish as publish
from service.standards.publishing import withdraw as withdraw
from service.standards.releases import DEFAULT_DOCUMENT as DEFAULT_DOCUMENT
from service.standards.releases import current_version_number as current_version_number
from service.standards.releases import current_versions_for_snapshot as current_versions_for_snapshot
from service.standards.releases import hold_releases as hold_releases
from service.standards.releases import published_versions as published_versions
from service.standards.releases import representations_change_at as representations_change_at
from service.standards.schemas import DocumentCreate, DraftReplace, TranslationPut, normalise_language
from service.standards.views import VersionView
from service.standards.writes import actor_id, check_precondition, editor_view, touch

_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?")


# --- documents and drafts -----------------------------------------------------------------------


def create_document(
    *, session: Session, slug: str, title: str, language: str, actor: Principal | str
) -> StandardsDocument:
    """A new, empty document; :class:`Conflict` when ``slug`` exists, 422 for a bad slug."""
    if not _SLUG.fullmatch(slug):
        raise Unprocessable(
            "A document slug is lower-case letters, digits and hyphens (e.g. 'training-standards')."
        )
    if lookup.document_or_none(session, slug):
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
        actor=actor_id(actor),
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
    major, minor = lookup.parse_version(version)
    if lookup.document_or_none(session, slug) is None:
        if new_document is None:
            raise NotFound(f"There is no standards document {slug!r}; send `document` to create it.")
        create_document(
            session=session, slug=slug, title=new_document.title, language=new_document.language, actor=actor
        )
    doc = lookup.find_document(session, slug, lock=True)
    versions = lookup.versions_of(session, doc, fresh=True)
    if versions and (major, minor) <= lookup.number(versions[-1]):
        raise Conflict(
            f"A new version must be greater than every existing one; the highest is {versions[-1].version}.",
            extra={"highest_version": versions[-1].version},
        )
    content = empty_content(doc.title)
    if based_on is not None:
        source = next((v for v in versions if v.version == based_on), None)
        if source is None:
            raise Unprocessable(f"`based_on`: there is no version {based_on!r} of {slug!r}.")
        # The copy's clauses start without the reasons the source gave for its own changes.
        content = without_change_notes(load_content(session, source))
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
    write_content(session, ver, content)
    audit.record(
        session,
        actor=actor_id(actor),
        action="standards.version.create",
        target=f"{slug}/{ver.version}",
        details={"based_on": based_on},
    )
    return editor_view(session, doc, ver, base_url)


def replace_draft(
    *,
    session: Session,
    slug: str,
    version: str,
    body: DraftReplace,
    if_match: str | None,
    actor: Principal | str,
    base_url: str | None = None,
    checked: bool = False,
) -> VersionView:
    """Replace a draft's content with ``body`` (its edited representation).

    ``If-Match`` is required (428 without, 412 when stale; strong comparison
    with the ETag of the draft's JSON representation, or of its Markdown form, in
    its source language) unless the caller ``checked`` it already in this transaction.
    :class:`Conflict` when the version is not a draft (published content is
    immutable).
    """
    doc = lookup.find_document(session, slug)
    ver = lookup.find_version(session, doc, version, editor=True, lock=True)
    if ver.status != DRAFT:
        raise Conflict(f"Version {ver.version} is {ver.status}: published content never changes.")
    if not checked:
        check_precondition(session, doc, ver, if_match, required=True, base_url=base_url)
    content = content_from_draft(body)
    write_content(session, ver, content)
    ver.effective_from = body.effective_from
    ver.content_hash = content_hash(content, language=doc.language)
    touch(session, ver, utcnow())
    session.flush()
    audit.record(
        session,
        actor=actor_id(actor),
        action="standards.version.update",
        target=f"{slug}/{ver.version}",
        details={"content_hash": ver.content_hash},
    )
    return editor_view(session, doc, ver, base_url)


def replace_draft_markdown(
    *,
    session: Session,
    slug: str,
    version: str,
    text: str,
    if_match: str | None,
    actor: Principal | str,
    base_url: str | None = None,
) -> VersionView:
    """Replace a draft's content with its Markdown form, edited (``mdform.py``).

    Like :func:`replace_draft` (``If-Match`` with the ETag of the draft's JSON or
    Markdown representation: 428 / 412; 409 for a version that is not a draft);
    the draft keeps its ``effective_from``. :class:`~mdform.MarkdownFormError` (422)
    names the line of the first problem, validation errors included.
    """
    doc = lookup.find_document(session, slug)
    # Locked before the comparison, as for JSON: two PUTs with one ETag cannot both pass it.
    ver = lookup.find_version(session, doc, version, editor=True, lock=True)
    if ver.status != DRAFT:
        raise Conflict(f"Version {ver.version} is {ver.status}: published content never changes.")
    check_precondition(session, doc, ver, if_match, required=True, base_url=base_url)
    parsed = mdform.parse(text)
    try:
        body = DraftReplace.model_validate({**parsed.body(), "effective_from": ver.effective_from})
    except ValidationError as exc:
        errors: list[dict[str, Any]] = [
            {"line": parsed.line_of(tuple(e["loc"])), "loc": [str(p) for p in e["loc"]], "msg": e["msg"]}
            for e in exc.errors()
        ]
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise mdform.MarkdownFormError(errors[0]["line"], f"{where}: {first['msg']}", errors=errors) from None
    # The If-Match was compared above, under the lock this transaction keeps.
    return replace_draft(
        session=session,
        slug=slug,
        version=version,
        body=body,
        if_match=None,
        actor=actor,
        base_url=base_url,
        checked=True,
    )


# --- translations -------------------------------------------------------------------------------


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
    doc = lookup.find_document(session, slug)
    if lang == doc.language:
        raise Unprocessable(f"{lang!r} is the source language of {slug!r}; edit the version itself.")
    ver = lookup.find_version(session, doc, version, editor=True, lock=True)
    if ver.status == WITHDRAWN:
        raise Conflict(f"Version {ver.version} is withdrawn: it takes no new translations.")
    existing = session.exec(
        select(StandardsTranslation).where(
            col(StandardsTranslation.version_id) == ver.id, col(StandardsTranslation.language) == lang
        )
    ).first()
    if existing is not None and existing.status == PUBLISHED:
        raise Conflict(f"The {lang} translation of version {ver.version} is published and never changes.")
    texts = translations.texts_from_body(body)
    problems = translations.mismatches(load_content(session, ver), texts)
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
    touch(session, ver, (published_at or now) if publish_now else now)
    session.flush()
    if publish_now:
        events.translation_published(
            session, slug=slug, version=ver.version, language=lang, base_url=base_url
        )
    audit.record(
        session,
        actor=actor_id(actor),
        action="standards.translation.put",
        target=f"{slug}/{ver.version}/{lang}",
        details={"status": tr.status},
    )
    return translations.representation(doc, ver, tr, base_url), existing is None
