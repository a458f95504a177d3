"""The SQL texts of registry search (``search.py``), one per query shape.

Each query word is a range on the indexed ``school_terms.term`` column — ``term >= 'zur'
AND term < 'zus'`` — or, in the forgiving tier, the OR of its ranges (its own and those of
its typo alternatives, :mod:`service.registry.fuzzy`). Two plans (``search.py`` chooses):
*walk* the schools in ``(listing, name_key, id)`` order checking each word per row, or
*drive* from the index entries of the rarest words. The texts depend only on the query's
shape (number of words and ranges, filters, cursor, plan), so each is compiled once
(:func:`statement`); rows come back as plain tuples of :data:`PAGE_COLUMNS`.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.selectable import TextualSelect

from service.registry.models import School

#: The columns a page reads: those of the public representation, and the sort key.
PAGE_COLUMNS: tuple[str, ...] = (
    "id",
    "name",
    "name_key",
    "alternate_names",
    "country",
    "city",
    "website",
    "programmes",
    "languages",
    "listing",
    "alignment_status",
    "aligned_version",
    "alignment_stated_at",
    "alignment_stated_by",
    "evidence_url",
    "reaffirmation_due_by",
    "created_at",
    "updated_at",
)
#: One row of a page: a named tuple (attribute reads cost a fraction of an SQLAlchemy ``Row``'s).
PageRow = namedtuple("PageRow", PAGE_COLUMNS)  # type: ignore[misc]
#: JSON columns are read as text and parsed here: psycopg's own JSON loading took ~1 ms a page.
_JSON_COLUMNS = ("alternate_names", "programmes", "languages")
_JSON_AT = tuple(PAGE_COLUMNS.index(name) for name in _JSON_COLUMNS)
#: The select list of a page (``s`` is ``schools``).
_SELECT = ", ".join(
    f"CAST(s.{name} AS TEXT) AS {name}" if name in _JSON_COLUMNS else f"s.{name}" for name in PAGE_COLUMNS
)


@dataclass(frozen=True)
class Filters:
    """Validated search parameters (hashable: part of the search cache's key)."""

    words: tuple[str, ...] = ()
    no_match: bool = False
    country: str | None = None
    programme: str | None = None
    language: str | None = None
    status: str | None = None


# --- SQL texts, one per query shape ---------------------------------------------------------

_texts: dict[str, TextClause | TextualSelect] = {}


def _statement(sql: str, *, page: bool) -> TextClause | TextualSelect:
    """The compiled-once statement for ``sql``; ``page`` types its columns like ``schools``'."""
    found = _texts.get(sql)
    if found is None:
        text = sa.text(sql)
        table = School.__table__  # type: ignore[attr-defined]
        typed = [sa.column(c, sa.Text) if c in _JSON_COLUMNS else table.c[c] for c in PAGE_COLUMNS]
        found = text.columns(*typed) if page else text
        if len(_texts) > 2048:
            _texts.clear()
        _texts[sql] = found
    return found


#: Ranges per query word in the forgiving tier (``None``: each word is its own range only).
Shape = tuple[int, ...] | None


def _word(alias: str, i: int, shape: Shape = None) -> str:
    """Word ``i``'s condition on ``alias.term``: its own range, or (``shape``) the OR of its
    ranges ``:w{i}_{j}`` … ``:x{i}_{j}`` (its own and its typo alternatives)."""
    if shape is None:
        return f"{alias}.term >= :w{i} AND {alias}.term < :x{i}"
    ranges = [f"({alias}.term >= :w{i}_{j} AND {alias}.term < :x{i}_{j})" for j in range(shape[i])]
    return "(" + " OR ".join(ranges) + ")"


def _word_exists(i: int, school_id: str, shape: Shape = None) -> str:
    t = f"t{i}"
    cond = _word(t, i, shape)
    return f"EXISTS (SELECT 1 FROM school_terms {t} WHERE {t}.school_id = {school_id} AND {cond})"


def _not_exact(count: int, school_id: str) -> str:
    """The forgiving tier leaves out the schools the exact tier found (every word by its own range)."""
    return "NOT (" + " AND ".join(_word_exists(i, school_id) for i in range(count)) + ")"


def _facet_conditions(filters: Filters, school_id: str) -> list[str]:
    conds = []
    if filters.programme:
        conds.append(
            "EXISTS (SELECT 1 FROM school_facets fp WHERE fp.school_id = "
            f"{school_id} AND fp.facet = 'programme' AND fp.value = :programme)"
        )
    if filters.language:
        # A language matches itself and its more specific tags: `de` finds `de-CH`.
        conds.append(
            "EXISTS (SELECT 1 FROM school_facets fl WHERE fl.school_id = "
            f"{school_id} AND fl.facet = 'language' AND (fl.value = :language "
            "OR (fl.value >= :language_lo AND fl.value < :language_hi)))"
        )
    return conds


def _after(name_key: str, school_id: str) -> str:
    return f"({name_key} > :after_name OR ({name_key} = :after_name AND {school_id} > :after_id))"


def _where(conds: list[str]) -> str:
    return " WHERE " + " AND ".join(conds) if conds else ""


def _walk_sql(filters: Filters, *, public: bool, after: bool, shape: Shape = None) -> str:
    conds = ["s.listing = 'listed'"] if public else []
    if filters.country:
        conds.append("s.country = :country")
    if filters.status:
        conds.append("s.alignment_status = :status")
    conds += _facet_conditions(filters, "s.id")
    conds += [_word_exists(i, "s.id", shape) for i in range(len(filters.words))]
    if shape is not None:
        conds.append(_not_exact(len(filters.words), "s.id"))
    if after:
        conds.append(_after("s.name_key", "s.id"))
    return f"SELECT {_SELECT} FROM schools s{_where(conds)} ORDER BY s.name_key, s.id LIMIT :limit"


def _drive_sql(
    filters: Filters,
    *,
    intersect: list[int],
    check: list[int],
    public: bool,
    after: bool,
    shape: Shape = None,
) -> str:
    arms = []
    for i in intersect:
        conds = [_word("r", i, shape)]
        if public:
            conds.append("r.listing = 'listed'")
        if after:
            conds.append(_after("r.name_key", "r.school_id"))
        arms.append(f"SELECT r.name_key, r.school_id FROM school_terms r{_where(conds)}")
    if len(arms) > 1:
        # Ordered like its arms, SQLite merges them (two sorts) instead of probing a temp B-tree.
        candidates = " INTERSECT ".join(arms) + " ORDER BY 1, 2"  # INTERSECT drops duplicates
    else:
        candidates = arms[0].replace("SELECT", "SELECT DISTINCT", 1) + " ORDER BY 1, 2"
    join = ""
    conds = []
    if filters.country or filters.status:
        join = " JOIN schools f ON f.id = p.school_id"
        if filters.country:
            conds.append("f.country = :country")
        if filters.status:
            conds.append("f.alignment_status = :status")
    conds += _facet_conditions(filters, "p.school_id")
    conds += [_word_exists(i, "p.school_id", shape) for i in check]
    if shape is not None:
        conds.append(_not_exact(len(filters.words), "p.school_id"))
    if conds:
        page = (
            f"SELECT p.name_key, p.school_id FROM ({candidates}) p{join}{_where(conds)}"
            " ORDER BY p.name_key, p.school_id LIMIT :limit"
        )
    else:
        page = f"{candidates} LIMIT :limit"
    return (
        f"SELECT {_SELECT} FROM ({page}) page JOIN schools s ON s.id = page.school_id"
        " ORDER BY page.name_key, page.school_id"
    )


def _probe_sql(count: int) -> str:
    parts = [
        f"(SELECT count(*) FROM (SELECT 1 FROM school_terms c WHERE {_word('c', i)} LIMIT :cap) c{i})"
        for i in range(count)
    ]
    return "SELECT " + ", ".join(parts)


def _forgiving_probe_sql(shape: tuple[int, ...]) -> str:
    """Like :func:`_probe_sql`, each word with all its ranges (the forgiving tier's plan)."""
    parts = [
        f"(SELECT count(*) FROM (SELECT 1 FROM school_terms c WHERE {_word('c', i, shape)} LIMIT :cap) c{i})"
        for i in range(len(shape))
    ]
    return "SELECT " + ", ".join(parts)
