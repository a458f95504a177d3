"""A school's entries in the search index: its folded terms (``school_terms``) and facets
(``school_facets``), derived from its current fields.

The registry's writes (``service.py``) rebuild them when a field they come from changes;
bulk loaders (``bench/bulk.py``) insert the rows of :func:`index_rows` themselves. Search
reads them (``search.py``, ``search_sql.py``).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from service.registry import folding
from service.registry.models import School, SchoolFacet, SchoolTerm


def index_rows(school: School) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows of ``school_terms`` and ``school_facets`` for ``school``'s current fields:
    a folded term per word of its name, city and alternate names (with its ``name_key`` and
    ``listing``, which the search index sorts and filters by), a facet per programme and
    language."""
    names = [school.name, school.city, *(a.get("value") for a in school.alternate_names)]
    terms = [
        {"school_id": school.id, "term": t, "name_key": school.name_key, "listing": school.listing}
        for t in sorted(folding.terms(names))
    ]
    facets = [{"school_id": school.id, "facet": "programme", "value": p} for p in school.programmes]
    facets += [
        {"school_id": school.id, "facet": "language", "value": lang.lower()} for lang in school.languages
    ]
    return terms, facets


def rebuild(session: Session, school: School, *, new: bool = False) -> None:
    """Rebuild the school's search terms and facets from its current fields (:func:`index_rows`).

    Call this after the name, city, alternate names, programmes, languages, ``name_key`` or
    ``listing`` change. Core statements, not ORM objects: bulk loads (10,000 schools in one
    transaction) would otherwise grow the identity map and re-scan it on every delete.
    """
    terms_table = SchoolTerm.__table__  # type: ignore[attr-defined]
    facets_table = SchoolFacet.__table__  # type: ignore[attr-defined]
    if not new:
        session.execute(terms_table.delete().where(terms_table.c.school_id == school.id))
        session.execute(facets_table.delete().where(facets_table.c.school_id == school.id))
    terms, facets = index_rows(school)
    if terms:
        session.execute(terms_table.insert(), terms)
    if facets:
        session.execute(facets_table.insert(), facets)


def relist(session: Session, school: School) -> None:
    """Carry the school's ``listing`` into its terms (the index filters by it)."""
    terms_table = SchoolTerm.__table__  # type: ignore[attr-defined]
    session.execute(
        terms_table.update().where(terms_table.c.school_id == school.id).values(listing=school.listing)
    )
