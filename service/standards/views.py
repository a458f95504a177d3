"""The read side of the standards publication: representations of documents, versions, clauses, diffs.

Plain functions with keyword-only arguments over the caller's session; they
never write. A version is served as a :class:`VersionView` (its JSON-shaped
representation plus what the HTTP layer needs: status, served language,
``Last-Modified``); ``render.py`` serialises it, ``cache.py`` keeps the bytes.

What other domains read of the releases (the published versions, the one in force
next) is ``releases.py``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from service.core.db import utcnow
from service.core.errors import NotFound
from service.standards import diff as diffing
from service.standards import lookup, mdform, render, reviews, translations
from service.standards.content import load_content
from service.standards.links import document_url, version_url
from service.standards.models import DRAFT, RELEASED, StandardsDocument, StandardsVersion
from service.web.http import JSON, MARKDOWN
from service.web.languages import choose

# --- versions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionView:
    """A version as served: the representation dict and what the HTTP layer needs.

    ``public`` is true for everything but drafts never put under review (their
    reads are ``private, no-cache``); ``last_modified`` is the last change of the
    version's row (publication, status, translation); ``content`` is the
    canonical content in the source language; ``changes_at`` the next instant at
    which the representation changes by the clock alone (a version takes effect,
    a review runs out), or ``None``.
    """

    document: str
    version: str
    status: str
    language: str
    representation: dict[str, Any]
    last_modified: dt.datetime | None
    content: dict[str, Any]
    public: bool = True
    changes_at: dt.datetime | None = None
    #: The language editors wrote the version in: what untranslated content (regional notes,
    #: change notes) is in, whatever ``language`` was served.
    source_language: str = ""

    @property
    def cacheable(self) -> bool:
        return self.public

    def body(self, media_type: str) -> bytes:
        """The representation in ``media_type``: a draft's Markdown is its editing form (``mdform.py``)."""
        if media_type == MARKDOWN and self.status == DRAFT:
            return mdform.render(self.representation).encode()
        return render.render_version(self.representation, media_type)

    def etag(self, media_type: str) -> str:
        """The ETag of the representation in ``media_type``."""
        return render.representation_etag(media_type, self.language, self.status, self.body(media_type))

    def json_etag(self) -> str:
        """The ETag of the JSON representation (what ``If-Match`` is compared with)."""
        return self.etag(JSON)

    def markdown_etag(self) -> str:
        """The ETag of the Markdown representation (of a draft: its editing form)."""
        return self.etag(MARKDOWN)


def build_view(
    session: Session,
    doc: StandardsDocument,
    ver: StandardsVersion,
    *,
    lang: str | None,
    editor: bool,
    base_url: str | None,
    content: dict[str, Any] | None = None,
) -> VersionView:
    """The view of a version already loaded, in ``lang`` when translated (else the source language).

    ``content``: the version's :func:`load_content`, when the caller has it already.
    A draft is shown alike to everybody who may see it (editors, and the public
    once it is under review): with its draft translations.
    """
    if content is None:
        content = load_content(session, ver)
    drafts_too = editor or ver.status == DRAFT
    texts_by_language = {
        t.language: t.texts for t in translations.for_version(session, ver, editor=drafts_too)
    }
    available = list(texts_by_language)
    served = translations.choose_language(lang, doc.language, available)
    shown = content
    if served != doc.language:
        shown = translations.apply(content, texts_by_language[served])
    url = document_url(base_url, doc.slug)
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
                "clauses": [
                    {"key": c["key"], "order": j, **c, "change_note": c.get("change_note")}
                    for j, c in enumerate(s["clauses"], start=1)
                ],
            }
            for i, s in enumerate(shown["sections"], start=1)
        ],
        "regional_notes": shown["regional_notes"],
        "contributors": shown["contributors"],
        "translations": available,
        "links": {
            "self": version_url(base_url, doc.slug, ver.version),
            "document": url,
            "current": f"{url}/current",
        },
    }
    now = utcnow()
    moments: list[dt.datetime | None] = []
    modified = ver.updated_at
    if ver.status != DRAFT:
        versions = lookup.versions_of(session, doc)
        # `in_force` and `in_force_version` change with other versions' writes and when a
        # version takes effect: Last-Modified covers both, or If-Modified-Since answers 304
        # for a representation that changed.
        modified = max(
            [
                modified,
                *(v.updated_at for v in versions if v.status != DRAFT),
                *(v.effective_from for v in versions if v.effective_from and v.effective_from <= now),
                *(v.withdrawn_at for v in versions if v.withdrawn_at and v.withdrawn_at <= now),
            ]
        )
        # A draft is never in force, and its representation (its ETag, which edits are compared
        # with) must not change whenever another version is published or withdrawn.
        in_force = lookup.in_force_at(versions, now)
        rep["in_force"] = in_force is not None and in_force.id == ver.id
        rep["in_force_version"] = in_force.version if in_force is not None else None
        moments.append(lookup.next_in_force_change(versions, now))
    review = reviews.review_of(session, ver)
    rep["review"] = (
        reviews.summary(session, slug=doc.slug, ver=ver, review=review, base_url=base_url) if review else None
    )
    if review is not None and rep["review"]["state"] == "open":
        moments.append(review.closes_at)
    return VersionView(
        document=doc.slug,
        version=ver.version,
        status=ver.status,
        language=served,
        representation=rep,
        # A draft under review changes with every comment (its counts): ETag only.
        last_modified=None if ver.status == DRAFT and review is not None else modified,
        content=content,
        public=ver.status != DRAFT or review is not None,
        changes_at=min((m for m in moments if m is not None), default=None),
        source_language=rep["source_language"],
    )


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
    doc = lookup.find_document(session, slug)
    if version == "current":
        ver = lookup.current_of(lookup.versions_of(session, doc))
        if ver is None:
            raise NotFound(f"{slug!r} has no published version yet.")
    else:
        ver = lookup.find_version(session, doc, version, editor=editor)
    return build_view(session, doc, ver, lang=lang, editor=editor, base_url=base_url)


def languages(*, session: Session, slug: str, version: str, editor: bool = False) -> tuple[str, list[str]]:
    """``(source language, [translations])`` of one version (``"current"`` resolves), what
    ``Accept-Language`` is negotiated among; :class:`NotFound` as for :func:`version_view`.

    A draft is negotiated among the translations it is shown with (:func:`build_view`: its
    draft ones too, to everybody who may see it), as ``?lang=`` serves them."""
    doc = lookup.find_document(session, slug)
    if version == "current":
        ver = lookup.current_of(lookup.versions_of(session, doc))
        if ver is None:
            raise NotFound(f"{slug!r} has no published version yet.")
    else:
        ver = lookup.find_version(session, doc, version, editor=editor)
    shown = translations.for_version(session, ver, editor=editor or ver.status == DRAFT)
    return doc.language, [t.language for t in shown]


def version_in_force(
    *, session: Session, slug: str, at: dt.datetime | None
) -> tuple[str, dt.datetime | None]:
    """``(version, changes_at)``: the version in force at ``at`` (``None``: now; see
    :func:`~service.standards.lookup.in_force_at`) and, for now, the next instant another
    takes effect (``None`` for a given instant: only a publish or withdrawal, which are
    events, could change that answer).

    :class:`NotFound` for an unknown document, or an instant before its first version took effect.
    """
    doc = lookup.find_document(session, slug)
    versions = lookup.versions_of(session, doc)
    now = utcnow()
    ver = lookup.in_force_at(versions, at or now)
    if ver is None:
        when = (at or now).isoformat()
        raise NotFound(
            f"No version of {slug!r} was in force at {when}: that is before the first one took effect."
        )
    return ver.version, (lookup.next_in_force_change(versions, now) if at is None else None)


def in_force_view(
    *, session: Session, slug: str, at: dt.datetime, lang: str | None = None, base_url: str | None = None
) -> VersionView:
    """The version that was (or will be) in force at the instant ``at`` (see
    :func:`~service.standards.lookup.in_force_at`), in full.

    :class:`NotFound` for an unknown document, or an instant before its first version took effect.
    """
    doc = lookup.find_document(session, slug)
    ver = lookup.in_force_at(lookup.versions_of(session, doc), at)
    if ver is None:
        raise NotFound(
            f"No version of {slug!r} was in force at {at.isoformat()}: "
            "that is before the first one took effect."
        )
    return build_view(session, doc, ver, lang=lang, editor=False, base_url=base_url)


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

    The view's ``representation`` is the clause's shape (see ``ClauseView``);
    :class:`NotFound` as for :func:`version_view`, or when the version has no
    clause ``key``.
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
                if clause["change_note"]:  # only when it says (clause reads had no such member)
                    clause_rep["change_note"] = clause["change_note"]
                return dataclasses.replace(view, representation=clause_rep)
    raise NotFound(f"Version {view.version} of {slug!r} has no clause {key!r}.")


def list_versions(
    *,
    session: Session,
    slug: str,
    editor: bool = False,
    base_url: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Version summaries ascending by number (after ``after``); drafts only for editors, or
    when they are (or were) under review."""
    doc = lookup.find_document(session, slug)
    floor = lookup.parse_version(after) if after else None
    out = []
    for v in lookup.versions_of(session, doc):
        if floor is not None and lookup.number(v) <= floor:
            continue
        if v.status == DRAFT and not editor and not lookup.under_review(session, v):
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
    lang: str | None = None,
    accept_language: str | None = None,
) -> tuple[dict[str, Any], bool, bool, str]:
    """The clause-level diff between any two versions, either direction.

    Which clauses were added, removed, modified or moved is decided on the source
    language (the normative text). Their texts are shown in ``lang`` (a normalised tag
    from ``?lang=``) or else the language negotiated from ``accept_language`` — when
    *both* versions have that translation; otherwise in the source language. Items carry
    the ``to`` version's change notes and the comments accepted in its review. Returns
    ``(body, immutable, public, language)``; ``immutable`` is false when a draft is
    involved, ``public`` false when a draft not under review is, ``language`` is the
    language of the texts (the ``Content-Language``).
    :class:`NotFound` for unknown versions (drafts for non-editors).
    """
    doc = lookup.find_document(session, slug)
    before = lookup.find_version(session, doc, from_version, editor=editor)
    after = lookup.find_version(session, doc, to_version, editor=editor)
    old, new = load_content(session, before), load_content(session, after)
    texts = [
        {t.language: t.texts for t in translations.for_version(session, v, editor=editor)}
        for v in (before, after)
    ]
    common = [tag for tag in texts[0] if tag in texts[1]]
    served = choose(lang, accept_language, common, doc.language).language
    changes = diffing.diff_contents(old, new, accepted=reviews.accepted_by_clause(session, after))
    if served != doc.language:
        changes = diffing.in_language(
            changes,
            translations.apply(old, texts[0][served]),
            translations.apply(new, texts[1][served]),
        )
    body = {"document": slug, "from": before.version, "to": after.version, **changes}
    drafts = [v for v in (before, after) if v.status == DRAFT]
    return body, not drafts, all(lookup.under_review(session, v) for v in drafts), served


# --- documents ----------------------------------------------------------------------------------


def _document_rep(session: Session, doc: StandardsDocument, base_url: str | None) -> dict[str, Any]:
    versions = lookup.versions_of(session, doc)
    current = lookup.current_of(versions)
    url = document_url(base_url, doc.slug)
    return {
        "id": doc.slug,
        "slug": doc.slug,
        "title": doc.title,
        "language": doc.language,
        "current_version": current.version if current else None,
        "versions": [v.version for v in versions if v.status in RELEASED],
        "links": {
            "self": url,
            "current": f"{url}/current" if current else None,
            "versions": f"{url}/versions",
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
    return _document_rep(session, lookup.find_document(session, slug), base_url)
