"""Translations of a version: their texts, whether they fit the content, and which language to serve.

A translation's ``texts`` (one JSON object per version and language) are::

    {"title", "summary",
     "sections": {key: {"title", "intro"}},   # for lookups by key
     "clauses": {key: text},
     "section_list": [...]}                   # the body as it was put, for the translation's own GET

A translation must cover exactly the version's section and clause keys
(:func:`mismatches`). Serving one overlays its texts on the source
content (:func:`apply`); a missing text falls back to the source.
Putting and publishing them is write-side (``service.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session, col, select

from service.standards.content import clause_keys
from service.standards.links import translated_version_url
from service.standards.models import (
    DRAFT,
    PUBLISHED,
    StandardsDocument,
    StandardsTranslation,
    StandardsVersion,
)
from service.standards.schemas import TranslationPut
from service.web.languages import lookup


def texts_from_body(body: TranslationPut) -> dict[str, Any]:
    """The stored ``texts`` of a ``PUT …/translations/{lang}`` body."""
    return {
        "title": body.title,
        "summary": body.summary,
        "sections": {s.key: {"title": s.title, "intro": s.intro} for s in body.sections},
        "clauses": {c.key: c.text for s in body.sections for c in s.clauses},
        "section_list": [s.model_dump(exclude_none=True) for s in body.sections],
    }


def representation(
    doc: StandardsDocument, ver: StandardsVersion, tr: StandardsTranslation, base_url: str | None
) -> dict[str, Any]:
    """The representation of one translation (``TranslationPublic``): its texts as they were put."""
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
        "links": {"version": translated_version_url(base_url, doc.slug, ver.version, tr.language)},
    }


def for_version(session: Session, ver: StandardsVersion, *, editor: bool) -> list[StandardsTranslation]:
    """The translations of ``ver`` by language: published ones, and on a draft its drafts for editors."""
    rows = session.exec(
        select(StandardsTranslation)
        .where(col(StandardsTranslation.version_id) == ver.id)
        .order_by(col(StandardsTranslation.language))
    ).all()
    if ver.status == DRAFT and editor:
        return list(rows)
    return [t for t in rows if t.status == PUBLISHED]


def mismatches(content: dict[str, Any], texts: dict[str, Any]) -> list[str]:
    """What a translation misses or adds compared with ``content`` (empty when it fits)."""
    problems: list[str] = []
    sections = texts.get("sections", {})
    clauses = texts.get("clauses", {})
    want_sections = {s["key"]: s for s in content["sections"]}
    want_clauses = set(clause_keys(content))
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


def choose_language(requested: str | None, source: str, available: Sequence[str]) -> str:
    """The language to serve for ``?lang=`` (RFC 4647 §3.4 lookup, then the source language).

    ``de-AT`` is served by ``de`` when only ``de`` exists; an unknown
    language falls back to ``source``.
    """
    return lookup([requested], available, source) if requested else source


def apply(content: dict[str, Any], texts: dict[str, Any]) -> dict[str, Any]:
    """``content`` with the translated texts in place (each missing text keeps the source's)."""
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
