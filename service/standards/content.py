"""A version's canonical content: reading and writing its rows, building it from a draft, hashing it.

The canonical shape, in the source language, lists in their order::

    {"title", "summary",
     "sections": [{"key", "title", "intro",
                   "clauses": [{"key", "kind", "applies_to", "text",
                                "change_note"?}]}],
     "regional_notes": [{"region", "target", "text"}],
     "contributors": [{"name", "affiliation", "region"}]}

It is what ``content_hash`` covers, what ``diff.py`` compares and what
``views.py`` turns into representations. Published content never changes
(``service.py`` refuses to write it again); the hash proves it.

A clause's ``change_note`` (why it changed in this version) is there only when
the clause has one, so content written before change notes existed keeps its hash.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, TypeVar

from sqlmodel import Session, col, delete, select

from service.core.errors import Unprocessable
from service.standards.models import (
    StandardsClause,
    StandardsContributor,
    StandardsRegionalNote,
    StandardsSection,
    StandardsVersion,
)
from service.standards.schemas import ClauseIn, ContributorIn, DraftReplace, RegionalNoteIn

#: The tables holding a version's content, each row with ``version_id`` and a 1-based ``position``.
_Row = TypeVar("_Row", StandardsSection, StandardsClause, StandardsRegionalNote, StandardsContributor)


def empty_content(title: str) -> dict[str, Any]:
    """The content of a new draft that copies nothing: ``title`` and nothing else."""
    return {"title": title, "summary": "", "sections": [], "regional_notes": [], "contributors": []}


def clause_keys(content: dict[str, Any]) -> list[str]:
    """Every clause key of ``content``, in document order."""
    return [c["key"] for s in content["sections"] for c in s["clauses"]]


def _clause(c: StandardsClause | ClauseIn) -> dict[str, Any]:
    out = {"key": c.key, "kind": c.kind, "applies_to": c.applies_to, "text": c.text}
    if c.change_note:
        out["change_note"] = c.change_note
    return out


def without_change_notes(content: dict[str, Any]) -> dict[str, Any]:
    """``content`` with every clause's ``change_note`` left out (a new draft copies content,
    not the reasons the copied version gave for its own changes)."""
    return {
        **content,
        "sections": [
            {**s, "clauses": [{k: v for k, v in c.items() if k != "change_note"} for c in s["clauses"]]}
            for s in content["sections"]
        ],
    }


def _note(n: StandardsRegionalNote | RegionalNoteIn) -> dict[str, Any]:
    return {"region": n.region, "target": n.target, "text": n.text}


def _contributor(p: StandardsContributor | ContributorIn) -> dict[str, Any]:
    return {"name": p.name, "affiliation": p.affiliation, "region": p.region}


def _rows(session: Session, table: type[_Row], ver: StandardsVersion) -> list[_Row]:
    """The rows of ``table`` that belong to ``ver``, by position."""
    stmt = select(table).where(col(table.version_id) == ver.id).order_by(col(table.position))
    return list(session.exec(stmt).all())


def load_content(session: Session, ver: StandardsVersion) -> dict[str, Any]:
    """The canonical content of ``ver`` in its source language (see the module docstring)."""
    by_section: dict[int, list[StandardsClause]] = {}
    for clause in _rows(session, StandardsClause, ver):
        by_section.setdefault(clause.section_id, []).append(clause)
    return {
        "title": ver.title,
        "summary": ver.summary,
        "sections": [
            {
                "key": s.key,
                "title": s.title,
                "intro": s.intro,
                "clauses": [_clause(c) for c in by_section.get(s.id or 0, [])],
            }
            for s in _rows(session, StandardsSection, ver)
        ],
        "regional_notes": [_note(n) for n in _rows(session, StandardsRegionalNote, ver)],
        "contributors": [_contributor(p) for p in _rows(session, StandardsContributor, ver)],
    }


def write_content(session: Session, ver: StandardsVersion, content: dict[str, Any]) -> None:
    """Replace the content rows of ``ver`` (and its title and summary) with ``content``."""
    # Children before sections: clauses refer to their section's row.
    for table in (StandardsClause, StandardsRegionalNote, StandardsContributor, StandardsSection):
        session.exec(delete(table).where(col(table.version_id) == ver.id))  # type: ignore[attr-defined]
    ver.title = content["title"]
    ver.summary = content.get("summary") or ""
    for i, s in enumerate(content["sections"], start=1):
        section = StandardsSection(
            version_id=ver.id, key=s["key"], position=i, title=s["title"], intro=s["intro"]
        )
        session.add(section)
        session.flush()  # the clauses need the section's id
        assert section.id is not None
        for j, c in enumerate(s["clauses"], start=1):
            session.add(StandardsClause(version_id=ver.id, section_id=section.id, position=j, **c))
    for i, n in enumerate(content["regional_notes"], start=1):
        session.add(StandardsRegionalNote(version_id=ver.id, position=i, **n))
    for i, p in enumerate(content["contributors"], start=1):
        session.add(StandardsContributor(version_id=ver.id, position=i, **p))
    session.flush()


def content_from_draft(body: DraftReplace) -> dict[str, Any]:
    """The canonical content of a replace body.

    :class:`Unprocessable` (with ``errors``) when a section or clause key is
    used twice or a regional note targets a key the body does not have.
    """
    errors: list[str] = []
    seen: set[str] = set()
    for key in (k for s in body.sections for k in (s.key, *(c.key for c in s.clauses))):
        if key in seen:
            errors.append(f"key {key!r} is used twice")
        seen.add(key)
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
                "clauses": [_clause(c) for c in s.clauses],
            }
            for s in body.sections
        ],
        "regional_notes": [_note(n) for n in body.regional_notes],
        "contributors": [_contributor(p) for p in body.contributors],
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
