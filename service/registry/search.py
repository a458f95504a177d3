"""``GET /v1/schools``: filter, word-prefix search and keyset pagination.

Word-prefix search: the query is folded and split into words exactly as the
indexed names are (:mod:`service.registry.folding`); a school matches when
every query word is a prefix of one of its indexed terms. Each word becomes a
range on the indexed ``school_terms.term`` column — ``term >= 'zur' AND term <
'zus'`` — which is exactly "starts with ``zur``" under code-point order (the
column is ``COLLATE "C"`` on PostgreSQL, BINARY on SQLite), so a B-tree answers
it on both databases.

Pagination is keyset on ``(name_key, id)`` (the folded name, then the unique
id): the cursor holds the last row's pair, and the next page starts strictly
after it, so schools added or removed between pages never cause a skip or a
repeat of the rows that stayed.

A page costs at most two statements, each one round trip:

1. The probe counts, for every query word at once, the index entries its range
   holds (each count stops just above ``search_plan.selective``). Counts are planning
   statistics, reused for a minute per word (type-ahead repeats words), so
   most pages skip this statement; a word counted just now with no entries
   answers "no match" at once.
2. The page itself, planned from those counts:

   - **drive** (some word is selective): the candidates come from the
     ``(term, listing, name_key, school_id)`` index alone — the ranges of the
     rarest word and of the words about as rare are intersected, the commoner
     words are checked per candidate — sorted by ``(name_key, id)``; only the
     page's rows are then read from ``schools``. Cost ∝ the rarest word's entries.
   - **walk** (every word is common): ``schools`` in ``(listing, name_key, id)``
     order, each row checked with one primary-key probe of ``school_terms`` per
     word, stopping after one page. Cost ∝ the rows passed before the page fills.

   The drive is taken when the rarest word's entries are fewer than
   ``DRIVE_FACTOR`` × the rows a walk is expected to pass (independent words;
   the registry's size is another statistic, counted at most once a minute).
   A stale statistic can only make a plan slower, never an answer different.
   The statistics and the choice are ``search_plan.py``.

Both statements are fixed SQL texts per query shape (number of words, filters,
cursor, plan; ``search_sql.py``), so they are compiled once; rows come back as plain
tuples with just the public columns, not ORM objects.

After those schools come the ones found only when typos are forgiven (the forgiving
tier: each word's typo alternatives from ``fuzzy.py`` are more ranges of the same
index, planned the same way), and an empty first page gets ``suggestions``.
"""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session

from service.core import codes
from service.core.errors import Unprocessable
from service.core.jsonutil import dumps
from service.registry import folding, fuzzy, search_plan
from service.registry import service as registry
from service.registry.models import STATUSES
from service.registry.schemas import programme_name
from service.registry.search_plan import successor
from service.registry.search_sql import (
    _JSON_AT,
    Filters,
    PageRow,
    Shape,
    _drive_sql,
    _statement,
    _walk_sql,
)
from service.registry.verify import MatchIndex
from service.web.http import decode_cursor, encode_cursor

#: Longest ``q`` accepted (characters); longer is a 422.
MAX_QUERY_LENGTH = 200
#: Most suggestions on a page that found nothing, and the least name score (0–100, the
#: ``token_sort_ratio`` of ``/v1/verify``) they need: unrelated names score under 55.
MAX_SUGGESTIONS = 5
SUGGESTION_CUTOFF = 60.0


def _check(parse: Any, value: str, name: str) -> str:
    try:
        return str(parse(value))
    except ValueError as exc:
        raise Unprocessable(f"`{name}`: {exc}", extra={"parameter": name}) from None


def parse_filters(
    *,
    q: str | None,
    country: str | None,
    programme: str | None,
    language: str | None,
    status: str | None,
) -> Filters:
    """Validate and normalise the query parameters (422 for anything malformed).

    A blank ``q`` does not filter; a ``q`` with no words at all (only
    punctuation or emoji) matches nothing.
    """
    words: tuple[str, ...] = ()
    no_match = False
    if q is not None and q.strip():
        if len(q) > MAX_QUERY_LENGTH:
            raise Unprocessable(
                f"`q` is longer than {MAX_QUERY_LENGTH} characters.", extra={"parameter": "q"}
            )
        words = tuple(folding.query_words(q))
        no_match = not words
    if status and status not in STATUSES:  # blank, like the other filters, does not filter
        raise Unprocessable(
            "`status` must be one of " + ", ".join(STATUSES) + ".", extra={"parameter": "status"}
        )
    return Filters(
        words=words,
        no_match=no_match,
        country=codes.parameter(codes.country_code, country, "country") if country else None,
        programme=_check(programme_name, programme, "programme") if programme else None,
        language=codes.parameter(codes.language_tag, language, "language").lower() if language else None,
        status=status or None,
    )


# --- the page -------------------------------------------------------------------------------


def search(
    *,
    session: Session,
    filters: Filters,
    include_delisted: bool,
    cursor: str | None,
    limit: int,
    vocabulary: fuzzy.Vocabularies | None = None,
) -> tuple[list[Any], str | None]:
    """One page of schools and the cursor of the next page.

    Two tiers: first the schools every query word finds by its own prefix, in
    ``(name_key, id)`` order; then — with a ``vocabulary`` — the schools found only
    when typos are forgiven (:mod:`service.registry.fuzzy`), in the same order. A page
    may end one tier and start the next; the cursor says which tier it continues.
    The rows are :data:`PageRow` tuples (the attributes
    :func:`service.registry.service.public_dict` reads). 422 for a cursor this
    API did not issue.
    """
    position = decode_cursor(cursor)
    tier = 0
    if position is not None:
        tier = position.get("t", 0)
        named = isinstance(position.get("n"), str) and isinstance(position.get("i"), str)
        if tier not in (0, 1) or not (named or (tier == 1 and position.keys() == {"t"})):
            raise Unprocessable("The cursor is not one this API issued.")
        if not named:
            position = None
    if filters.no_match:
        return [], None
    params = _params(filters, position)
    rows: list[Any] = []
    if tier == 0:
        rows = _tier(session, filters, params, public=not include_delisted, limit=limit, shape=None)
        if len(rows) > limit:
            page = rows[:limit]
            return page, encode_cursor({"n": page[-1].name_key, "i": page[-1].id})
        if not filters.words or vocabulary is None:
            return rows, None
        position = None
        params = _params(filters, None)
    shape = _alternatives(session, filters, vocabulary, params) if vocabulary is not None else None
    if shape is None:
        return rows, None
    room = limit - len(rows)
    more = _tier(session, filters, params, public=not include_delisted, limit=room, shape=shape)
    page = rows + more[:room]
    if len(more) <= room:
        return page, None
    if room == 0:
        return page, encode_cursor({"t": 1})
    return page, encode_cursor({"t": 1, "n": page[-1].name_key, "i": page[-1].id})


def _params(filters: Filters, position: dict[str, Any] | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for i, word in enumerate(filters.words):
        params[f"w{i}"], params[f"x{i}"] = word, successor(word)
    if filters.country:
        params["country"] = filters.country
    if filters.status:
        params["status"] = filters.status
    if filters.programme:
        params["programme"] = filters.programme
    if filters.language:
        lang = filters.language
        params.update(language=lang, language_lo=lang + "-", language_hi=lang + ".")
    if position is not None:
        params.update(after_name=position["n"], after_id=position["i"])
    return params


def _alternatives(
    session: Session, filters: Filters, vocabulary: fuzzy.Vocabularies, params: dict[str, Any]
) -> tuple[int, ...] | None:
    """Add each word's ranges (its own, then its typo alternatives) to ``params``; their
    count per word, or ``None`` when no word has an alternative."""
    found = vocabulary.current(session)
    alternatives = [found.alternatives(word) for word in filters.words]
    if not any(alternatives):
        return None
    for i, (word, extra) in enumerate(zip(filters.words, alternatives, strict=True)):
        for j, prefix in enumerate([word, *(p for p, _distance in extra)]):
            params[f"w{i}_{j}"], params[f"x{i}_{j}"] = prefix, successor(prefix)
    return tuple(1 + len(extra) for extra in alternatives)


def _tier(
    session: Session,
    filters: Filters,
    params: dict[str, Any],
    *,
    public: bool,
    limit: int,
    shape: Shape,
) -> list[Any]:
    """Up to ``limit + 1`` rows of one tier after ``params``' position (if any)."""
    after = "after_name" in params
    plan = None
    if filters.words:
        if shape is None:
            counts, none = search_plan.word_counts(session, filters.words)
        else:
            counts, none = search_plan.forgiving_counts(session, shape, params)
        if none:
            return []
        plan = search_plan.plan(session, counts, limit)
    if plan is None:
        sql = _walk_sql(filters, public=public, after=after, shape=shape)
    else:
        sql = _drive_sql(filters, intersect=plan[0], check=plan[1], public=public, after=after, shape=shape)
    found = session.execute(_statement(sql, page=True), {**params, "limit": limit + 1})
    return [_page_row(row) for row in found]


def _page_row(row: Any) -> Any:
    values = list(row)
    for at in _JSON_AT:
        values[at] = json.loads(values[at])
    return PageRow._make(values)


def suggestions(index: MatchIndex, filters: Filters, *, base_url: str) -> list[dict[str, Any]]:
    """For a page that found nothing: listed schools whose names are close to the query
    words (the ``/v1/verify`` index and scorer, every filter but ``q`` left aside), best first, at most
    :data:`MAX_SUGGESTIONS`, each ``{"name", "school_id", "country", "score", "links"}``."""
    if not filters.words:
        return []
    query = " ".join(filters.words)
    out: list[dict[str, Any]] = []
    seen: set[int] = set()
    for position, score in fuzzy.name_matches(
        query, index.choices, limit=4 * MAX_SUGGESTIONS, cutoff=SUGGESTION_CUTOFF
    ):
        owner = index.owners[position]
        if owner in seen:
            continue
        seen.add(owner)
        school = index.candidates[owner]
        out.append(
            {
                "name": school.names[0][1],
                "school_id": school.school_id,
                "country": school.country,
                "score": round(score / 100, 3),
                "links": {"school": registry.school_url(base_url, school.school_id)},
            }
        )
        if len(out) >= MAX_SUGGESTIONS:
            break
    return out


def page_body(
    rows: list[Any],
    next_cursor: str | None,
    *,
    base_url: str,
    suggested: list[dict[str, Any]] | None = None,
) -> bytes:
    """The serialised page ``{"data": [...], "next_cursor": ..., "suggestions": [...]}``
    (public representations; ``suggestions`` is empty unless ``data`` is)."""
    data = [registry.public_dict(row, base_url=base_url) for row in rows]
    return dumps({"data": data, "next_cursor": next_cursor, "suggestions": suggested or []})
