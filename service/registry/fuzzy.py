"""The one module that knows the fuzzy matcher (rapidfuzz): typo-tolerant words for search,
scored names for ``/v1/verify`` and for search suggestions.

**Typos in search words.** A query word may differ from the start of an indexed term by
a few edits (insertions, deletions, substitutions, and transpositions of neighbours —
the optimal string alignment distance): none for words of up to 3 letters, one for 4–7,
two from 8 (:func:`allowed_edits`); words without a letter (numbers) never. What is
compared is the word against *prefixes* of terms of nearby lengths, because search is
by prefix: ``zurik`` is one edit from ``zuri``/``zuric`` (Zürich), ``centrr`` one from
``centr`` (Centre, Centro). Each close prefix becomes one more range on the same index
the exact search uses (``service/registry/search.py``), so fuzzy matches obey every filter
and the listing rule in SQL.

The prefixes come from a :class:`Vocabulary`: the distinct folded terms of the registry
(with a letter), grouped per prefix length and per first and per second letter on first
use — a prefix is compared only when it shares the word's first or its second letter, so a
typo in one of the first two letters is forgiven but not in both, and a lookup reads a
small share of a large vocabulary (200,000 distinct terms: about 3 ms instead of 75). It is
rebuilt when schools changed —
at once while a build is cheap, at most every few seconds when it is not (a large
registry): a term added since can miss a typo match for that long, never an exact one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import sqlalchemy as sa
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

#: Most alternative prefixes taken for one query word (the closest, then the shortest).
MAX_ALTERNATIVES = 24
#: A vocabulary that took longer than this to build (seconds) is rebuilt at most every
#: ``REBUILD_FACTOR`` × its build time (capped at ``MAX_STALE_S``) after schools changed.
CHEAP_BUILD_S = 0.02
REBUILD_FACTOR = 20.0
MAX_STALE_S = 30.0


def allowed_edits(word: str) -> int:
    """How many edits a query word may be away from a term: 0 up to 3 letters, 1 up to 7,
    then 2; 0 for a word without any letter (a number is meant exactly)."""
    if not any(ch.isalpha() for ch in word):
        return 0
    n = len(word)
    return 0 if n <= 3 else 1 if n <= 7 else 2


class Vocabulary:
    """Distinct folded terms (with a letter) of one registry, by prefix length."""

    def __init__(self, terms: Sequence[str], stamp: Hashable, built_in_s: float) -> None:
        self.terms = [t for t in terms if any(ch.isalpha() for ch in t)]
        self.stamp = stamp
        self.built_in_s = built_in_s
        self.built_at = time.monotonic()
        self._by_length: dict[int, tuple[dict[str, list[str]], dict[str, list[str]]]] = {}
        self._lock = threading.Lock()

    def prefixes(self, length: int, word: str) -> list[str]:
        """The distinct ``length``-character prefixes of the terms that share ``word``'s first
        or second character (grouped once per length)."""
        found = self._by_length.get(length)
        if found is None:
            with self._lock:
                found = self._by_length.get(length)
                if found is None:
                    first: dict[str, list[str]] = {}
                    second: dict[str, list[str]] = {}
                    for prefix in sorted({t[:length] for t in self.terms if len(t) >= length}):
                        first.setdefault(prefix[0], []).append(prefix)
                        if length > 1:
                            second.setdefault(prefix[1], []).append(prefix)
                    found = (first, second)
                    self._by_length[length] = found
        by_first, by_second = found
        shared = by_first.get(word[0], [])
        if len(word) > 1:
            shared = shared + [p for p in by_second.get(word[1], []) if p[0] != word[0]]
        return shared

    def alternatives(self, word: str) -> list[tuple[str, int]]:
        """Prefixes within :func:`allowed_edits` of ``word`` that its own range does not
        cover, as ``(prefix, distance)``: the closest first, none covered by another."""
        edits = allowed_edits(word)
        if edits == 0:
            return []
        n = len(word)
        found: list[tuple[str, int]] = []
        for length in range(max(1, n - edits), n + edits + 1):
            choices = self.prefixes(length, word)
            if not choices:
                continue
            for prefix, distance, _index in process.extract(
                word, choices, scorer=OSA.distance, score_cutoff=edits, limit=None
            ):
                if not prefix.startswith(word):  # those are in the word's own range already
                    found.append((prefix, int(distance)))
        found.sort(key=lambda pair: (pair[1], len(pair[0]), pair[0]))
        kept: list[tuple[str, int]] = []
        for prefix, distance in found:
            if not any(prefix.startswith(other) for other, _ in kept):
                kept.append((prefix, distance))
            if len(kept) >= MAX_ALTERNATIVES:
                break
        return kept


class Vocabularies:
    """The per-application :class:`Vocabulary`, rebuilt from the database when ``stamp()``
    (blocking; the change generations of the schools) moved — see the module docstring."""

    def __init__(self, stamp: Callable[[], Hashable]) -> None:
        self.stamp = stamp
        self._current: Vocabulary | None = None
        self._lock = threading.Lock()

    def _fresh_enough(self, vocabulary: Vocabulary, stamp: Hashable) -> bool:
        if vocabulary.stamp == stamp:
            return True
        if vocabulary.built_in_s < CHEAP_BUILD_S:
            return False
        allowed = min(MAX_STALE_S, REBUILD_FACTOR * vocabulary.built_in_s)
        return time.monotonic() - vocabulary.built_at < allowed

    def current(self, session: Any) -> Vocabulary:
        """The vocabulary to use now (built from ``session`` when stale)."""
        stamp = self.stamp()
        found = self._current
        if found is not None and self._fresh_enough(found, stamp):
            return found
        with self._lock:
            found = self._current
            if found is not None and self._fresh_enough(found, stamp):
                return found
            began = time.perf_counter()
            terms = session.execute(sa.text("SELECT DISTINCT term FROM school_terms")).scalars().all()
            self._current = Vocabulary(terms, stamp, time.perf_counter() - began)
            return self._current


# --- scoring whole names (``/v1/verify`` and search suggestions) ----------------------------


def token_sorted(name: str) -> str:
    """``name``'s words sorted and single-spaced: what ``token_sort_ratio`` compares. The name
    index keeps its names in this form, so a query sorts only its own words."""
    return " ".join(sorted(name.split()))


def name_matches(query: str, choices: Sequence[str], *, limit: int, cutoff: float) -> list[tuple[int, float]]:
    """``(position in choices, score 0–100)`` of the names closest to ``query`` by
    ``token_sort_ratio`` (word order does not matter), at least ``cutoff``, best first.

    ``choices`` are :func:`token_sorted` already: ``token_sort_ratio`` is ``ratio`` of the two
    token-sorted strings, and sorting 100,000 names per query cost two thirds of the time
    (38 ms of 50 here)."""
    hits = process.extract(token_sorted(query), choices, scorer=fuzz.ratio, limit=limit, score_cutoff=cutoff)
    return [(position, float(score)) for _choice, score, position in hits]
