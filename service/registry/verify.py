"""``GET /v1/verify``: which registered school is meant by a name, a country and a website?

Names are scored by ``service.registry.fuzzy`` (the one module that knows rapidfuzz); this
module knows the Public Suffix List (``publicsuffixlist``, bundled with the package: nothing is downloaded at
run time; unknown TLDs follow the list's default rule ``*``).

Scoring (0.0–1.0), per candidate school:

- name: ``token_sort_ratio`` of the folded query against the school's folded
  name and each alternate name (the best counts): word order, case, accents,
  width and the Turkish i do not matter; typos cost in proportion.
- website: the registrable domains (``www.example.co.uk/x`` → ``example.co.uk``)
  are equal or not; scheme, ``www.``, path and case never matter.
- Both given: a domain match gives ``0.5 + 0.5 × name`` (so a name scoring
  0.8 with the right domain reaches 0.9, and two schools sharing a domain are
  told apart by name); a different domain gives ``0.85 × name``; a school
  with no website on record ``0.95 × name``. Website only: 1.0 on a match.
- A country that differs multiplies the score by 0.7.

A candidate is ``chosen`` when its score is ≥ 0.9 and no other candidate
reaches 0.9. Candidates below 0.5 are not shown.
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from publicsuffixlist import PublicSuffixList
from sqlmodel import col

from service.events import service as events
from service.events.models import Event
from service.registry import folding, fuzzy
from service.registry.models import School

CHOSEN_SCORE = 0.9
MIN_SCORE = 0.5
MAX_CANDIDATES = 10
#: How many name matches the fuzzy search returns before grouping by school.
_NAME_POOL = 200


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    return PublicSuffixList(accept_unknown=True)


def host_of(website: str | None) -> str | None:
    """The lower-case host of a URL or bare domain (``HTTPS://WWW.Example.org/x`` → ``www.example.org``).

    IDNA (``xn--``) labels are decoded so both spellings compare equal; ``None``
    for anything that has no usable host.
    """
    if not website:
        return None
    text = unicodedata.normalize("NFKC", website.strip())
    if len(text) > 2000 or any(unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") for ch in text):
        return None
    if "://" not in text:
        text = "//" + text
    try:
        host = urlsplit(text).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.strip(".").casefold()
    labels = []
    for label in host.split("."):
        if label.startswith("xn--"):
            try:
                label = label.encode("ascii").decode("idna")
            except (UnicodeError, ValueError):
                return None
        labels.append(label)
    host = ".".join(labels)
    if not host or len(host) > 253 or " " in host:
        return None
    return host


def registrable_domain(website: str | None) -> str | None:
    """The registrable domain ("eTLD+1") of a URL by the Public Suffix List, e.g.
    ``https://www.zen.example.co.uk/about`` → ``example.co.uk``; ``None`` when
    the host is itself a public suffix, an IP address or unusable."""
    host = host_of(website)
    if host is None or host.replace(".", "").isdigit() or ":" in host:
        return None
    try:
        found = _psl().privatesuffix(host)
    except (ValueError, TypeError, UnicodeError):
        return None
    return str(found) if found else None


# --- the in-memory index -------------------------------------------------------------------


@dataclass
class Candidate:
    """One listed school as the matcher sees it."""

    school_id: str
    country: str
    domain: str | None
    names: list[tuple[str, str]]  # (folded and token-sorted: what is scored, as written)


@dataclass
class MatchIndex:
    """Folded names of every listed school, for fuzzy search; built from the database
    and replaced whenever anything public changes."""

    stamp: Any
    candidates: list[Candidate]
    choices: list[str] = field(default_factory=list)  # folded names, token-sorted
    labels: list[str] = field(default_factory=list)
    owners: list[int] = field(default_factory=list)
    by_domain: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for index, cand in enumerate(self.candidates):
            for folded, written in cand.names:
                self.choices.append(folded)
                self.labels.append(written)
                self.owners.append(index)
            if cand.domain:
                self.by_domain.setdefault(cand.domain, []).append(index)


def folded_name(text: str) -> str:
    """A name reduced to its folded words, single-spaced (what the matcher compares)."""
    return " ".join(folding.words(text))


@dataclass
class Match:
    """A scored candidate: the school id, the score and why."""

    school_id: str
    score: float
    reason: str
    chosen: bool = False


def match(index: MatchIndex, *, name: str | None, country: str | None, website: str | None) -> list[Match]:
    """Score the schools of ``index`` against the query; best first, at most 10.

    Empty when neither a usable name nor a usable website was given.
    """
    query = folded_name(name)[:300] if name else ""
    domain = registrable_domain(website) if website else None
    if not query and not domain:
        return []
    name_scores: dict[int, tuple[float, str]] = {}
    if query:
        for position, score in fuzzy.name_matches(query, index.choices, limit=_NAME_POOL, cutoff=40):
            owner = index.owners[position]
            best = name_scores.get(owner)
            if best is None or score / 100 > best[0]:
                name_scores[owner] = (score / 100, index.labels[position])
    pool = set(name_scores)
    if domain:
        pool.update(index.by_domain.get(domain, ()))
    results: list[Match] = []
    for owner in pool:
        cand = index.candidates[owner]
        reasons: list[str] = []
        name_score, matched = name_scores.get(owner, (0.0, ""))
        if query:
            reasons.append(f"name {name_score:.2f} ({matched})" if matched else "name does not match")
        if domain:
            same = cand.domain == domain
            if cand.domain is None:
                reasons.append("no website on record")
            else:
                reasons.append("website domain matches" if same else "website domain differs")
            if not query:
                score = 1.0 if same else 0.0
            elif same:
                score = 0.5 + 0.5 * name_score
            else:
                score = (0.95 if cand.domain is None else 0.85) * name_score
        else:
            score = name_score
        if country:
            if cand.country == country:
                reasons.append("country matches")
            else:
                score *= 0.7
                reasons.append(f"country differs ({cand.country})")
        score = round(min(1.0, score), 3)
        if score >= MIN_SCORE:
            results.append(Match(school_id=cand.school_id, score=score, reason="; ".join(reasons)))
    results.sort(key=lambda m: (-m.score, m.school_id))
    results = results[:MAX_CANDIDATES]
    strong = [m for m in results if m.score >= CHOSEN_SCORE]
    if len(strong) == 1:
        strong[0].chosen = True
    return results


# --- building the index and answering ------------------------------------------------------


#: The events that change what the index holds of a school (names, country, website, listing).
INDEXED_EVENTS = ("school.listed", "school.updated", "school.delisted")
#: Most changed schools applied to an index in place; more (or events already pruned by
#: retention) rebuild it whole.
MAX_INCREMENTAL = 2000


class Verifier:
    """The per-application matcher: keeps a :class:`MatchIndex` and brings it up to date when
    ``stamp()`` (blocking; the change generations of the schools) returns something new.

    The first index reads every listed school (100,000 schools: about a second, most of it
    folding names). Later ones re-read only the schools named by the
    :data:`INDEXED_EVENTS` since the last sequence the index reflects — sequences are handed
    out in commit order (``EventCounter``), so every event at or below the newest sequence
    read before the schools is in what they read; a school read twice is simply replaced.
    """

    def __init__(self, stamp: Callable[[], Hashable]) -> None:
        self.stamp = stamp
        self._index: MatchIndex | None = None
        self._lock = threading.Lock()
        self._by_id: dict[str, Candidate] = {}
        self._through = 0  # the highest event sequence the index reflects
        self._through_id: str | None = None  # that event's id: a restored history has others

    def index(self, session: Any) -> MatchIndex:
        """The current index (brought up to date from ``session`` when stale)."""
        stamp = self.stamp()
        current = self._index
        if current is not None and current.stamp == stamp:
            return current
        with self._lock:
            if self._index is not None and self._index.stamp == stamp:
                return self._index
            if self._index is None or not self._apply_changes(session):
                self._rebuild(session)
            by_id = self._by_id
            self._index = MatchIndex(stamp=stamp, candidates=[by_id[k] for k in sorted(by_id)])
            return self._index

    @staticmethod
    def _event_id(session: Any, sequence: int) -> str | None:
        if sequence == 0:
            return None
        found = session.execute(sa.select(col(Event.id)).where(col(Event.sequence) == sequence)).scalar()
        return str(found) if found is not None else None

    def _rebuild(self, session: Any) -> None:
        self._through = events.last_sequence(session)
        self._through_id = self._event_id(session, self._through)
        self._by_id = {
            cand.school_id: cand for cand in self._candidates(session, col(School.listing) == "listed")
        }

    def _apply_changes(self, session: Any) -> bool:
        """Re-read the schools changed since the index was made; ``False`` when it must be
        rebuilt instead: too many changes, their events pruned, or another history (a backup
        restored: the newest sequence went back, or the last event it read has another id)."""
        through = events.last_sequence(session)
        if events.pruned_through(session) >= self._through > 0 or through < self._through:
            return False
        if self._event_id(session, self._through) != self._through_id:
            return False
        changed = (
            session.execute(
                sa.select(col(Event.data))
                .where(
                    col(Event.sequence) > self._through,
                    col(Event.sequence) <= through,
                    col(Event.type).in_(INDEXED_EVENTS),
                )
                .limit(MAX_INCREMENTAL + 1)
            )
            .scalars()
            .all()
        )
        if len(changed) > MAX_INCREMENTAL:
            return False
        ids = sorted({str(data.get("id")) for data in changed if isinstance(data, dict)})
        found: dict[str, Candidate] = {}
        for at in range(0, len(ids), 500):
            chunk = ids[at : at + 500]
            found.update(
                (cand.school_id, cand)
                for cand in self._candidates(
                    session, col(School.id).in_(chunk), col(School.listing) == "listed"
                )
            )
        for school_id in ids:
            if school_id in found:
                self._by_id[school_id] = found[school_id]
            else:  # delisted (or gone)
                self._by_id.pop(school_id, None)
        self._through = through
        self._through_id = self._event_id(session, through)
        return True

    @staticmethod
    def _candidates(session: Any, *where: Any) -> list[Candidate]:
        rows = session.execute(
            sa.select(
                col(School.id),
                col(School.country),
                col(School.website_domain),
                col(School.name),
                col(School.alternate_names),
            ).where(*where)
        ).all()
        candidates = []
        for school_id, country, domain, school_name, alternates in rows:
            written = [school_name, *(str(a.get("value", "")) for a in alternates or [])]
            names: dict[str, str] = {}
            for text in written:
                folded = fuzzy.token_sorted(folded_name(text))
                if folded:
                    names.setdefault(folded, text)
            candidates.append(
                Candidate(school_id=school_id, country=country, domain=domain, names=list(names.items()))
            )
        return candidates
