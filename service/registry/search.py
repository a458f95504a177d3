"""``GET /v1/schools``: filter, word-prefix search and keyset pagination.

Word-prefix search: the query is folded and split into words exactly as the
indexed names are (:mod:`service.registry.folding`); a school matches when
every query word is a prefix of one of its indexed terms. Each word becomes a
range on the indexed ``school_terms.term`` column — ``term >= 'zur' AND term <
'zus'`` — which is exactly "starts with ``zur``" under code-point order (the
column is ``COLLATE "C"`` on PostgreSQL, BINARY on SQLite), so the B-tree index
answers it on both databases.

Pagination is keyset on ``(name_key, id)`` (the folded name, then the unique
id): the cursor holds the last row's pair, and the next page starts strictly
after it, so schools added or removed between pages never cause a skip or a
repeat of the rows that stayed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from service.errors import Unprocessable
from service.http import decode_cursor, encode_cursor
from service.registry import folding
from service.registry.models import STATUSES, School, SchoolFacet, SchoolTerm
from service.registry.schemas import country_code, language_tag, programme_name

#: Longest ``q`` accepted (characters); longer is a 422.
MAX_QUERY_LENGTH = 200


@dataclass(frozen=True)
class Filters:
    """Validated search parameters."""

    words: tuple[str, ...] = ()
    no_match: bool = False
    country: str | None = None
    programme: str | None = None
    language: str | None = None
    status: str | None = None


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
    if status is not None and status not in STATUSES:
        raise Unprocessable(
            "`status` must be one of " + ", ".join(STATUSES) + ".", extra={"parameter": "status"}
        )
    return Filters(
        words=words,
        no_match=no_match,
        country=_check(country_code, country, "country") if country else None,
        programme=_check(programme_name, programme, "programme") if programme else None,
        language=_check(language_tag, language, "language").lower() if language else None,
        status=status,
    )


def _successor(prefix: str) -> str:
    """The smallest string greater than every string that starts with ``prefix``."""
    last = ord(prefix[-1])
    if last >= 0x10FFFF:
        return _successor(prefix[:-1]) if len(prefix) > 1 else "\U0010ffff" * 2
    return prefix[:-1] + chr(last + 1)


#: A query word matching at most this many indexed terms drives the query (see :func:`search`).
SELECTIVE = 200


def _range(word: str) -> Any:
    """``term`` starts with ``word``, as an index range under code-point order."""
    return sa.and_(col(SchoolTerm.term) >= word, col(SchoolTerm.term) < _successor(word))


def _count_upto(session: Session, word: str, cap: int) -> int:
    """How many indexed terms start with ``word``, counted no further than ``cap``."""
    sub = sa.select(sa.literal(1)).select_from(SchoolTerm).where(_range(word)).limit(cap).subquery()
    return int(session.execute(sa.select(sa.func.count()).select_from(sub)).scalar_one())


def search(
    *,
    session: Session,
    filters: Filters,
    include_delisted: bool,
    cursor: str | None,
    limit: int,
) -> tuple[list[School], str | None]:
    """One page of schools in ``(name_key, id)`` order and the cursor of the next page."""
    position = decode_cursor(cursor)
    if position is not None and not (
        isinstance(position.get("n"), str) and isinstance(position.get("i"), str)
    ):
        raise Unprocessable("The cursor is not one this API issued.")
    if filters.no_match:
        return [], None
    stmt = select(School)
    if not include_delisted:
        stmt = stmt.where(col(School.listing) == "listed")
    if filters.country:
        stmt = stmt.where(col(School.country) == filters.country)
    if filters.status:
        stmt = stmt.where(col(School.alignment_status) == filters.status)
    if filters.programme:
        stmt = stmt.where(
            col(School.id).in_(
                sa.select(col(SchoolFacet.school_id)).where(
                    col(SchoolFacet.facet) == "programme", col(SchoolFacet.value) == filters.programme
                )
            )
        )
    if filters.language:
        # A language matches itself and its more specific tags: `de` finds `de-CH`.
        lang = filters.language
        stmt = stmt.where(
            col(School.id).in_(
                sa.select(col(SchoolFacet.school_id)).where(
                    col(SchoolFacet.facet) == "language",
                    sa.or_(
                        col(SchoolFacet.value) == lang,
                        sa.and_(col(SchoolFacet.value) >= lang + "-", col(SchoolFacet.value) < lang + "."),
                    ),
                )
            )
        )
    words = list(filters.words)
    if words:
        # A selective word drives the query: fetch its few schools by the term
        # index, then filter and sort just those. Otherwise walk the schools in
        # name order and stop after one page (the common words match early).
        counts = sorted((_count_upto(session, word, SELECTIVE + 1), word) for word in words)
        count, rarest = counts[0]
        if count <= SELECTIVE:
            ids = list(
                session.execute(
                    sa.select(col(SchoolTerm.school_id)).where(_range(rarest)).distinct()
                ).scalars()
            )
            if not ids:
                return [], None
            stmt = stmt.where(col(School.id).in_(ids))
            words.remove(rarest)
    for word in words:
        stmt = stmt.where(col(School.id).in_(sa.select(col(SchoolTerm.school_id)).where(_range(word))))
    if position is not None:
        name_key, last_id = position["n"], position["i"]
        stmt = stmt.where(
            sa.or_(
                col(School.name_key) > name_key,
                sa.and_(col(School.name_key) == name_key, col(School.id) > last_id),
            )
        )
    stmt = stmt.order_by(col(School.name_key), col(School.id)).limit(limit + 1)
    rows = list(session.exec(stmt))
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = encode_cursor({"n": last.name_key, "i": last.id})
    return page, next_cursor
