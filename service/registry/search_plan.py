"""The planner of registry search (``search.py``): which plan a page takes, from statistics.

For every query word the planner needs how many index entries its range holds (each
count stops at ``SELECTIVE + 1``), and the registry's size. Both are planning
statistics, kept per database and reused for ``STATS_TTL_S`` (type-ahead repeats
words), so most pages skip the probe statement; a word counted just now with no
entries answers "no match" at once. From the counts, :func:`plan` chooses a **drive**
(the rarest word's range and those about as rare are intersected, commoner words
checked per candidate) or a **walk** (``schools`` in name order, each row checked).
A stale statistic can only make a plan slower, never an answer different.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from service.registry.search_sql import _forgiving_probe_sql, _probe_sql, _statement

#: A word whose range holds at most this many index entries — or ``1/SELECTIVE_SHARE`` of the
#: registry, when that is more — may drive the query (each count stops just above it).
SELECTIVE = 2000
SELECTIVE_SHARE = 4
#: Drive when the rarest word's entries are fewer than this × the rows a walk would pass:
#: reading an index entry costs a small fraction of a walked row with its probes (SQLite,
#: 100,000 schools, 2026-12-06: two words of 11,000 entries each intersect in 7 ms, while
#: walking the 4,200 rows before their page fills takes 45 ms — ~0.3 µs an entry, ~11 µs a row).
DRIVE_FACTOR = 10.0
#: Words whose ranges hold at most this × the rarest word's entries are intersected with it;
#: commoner words are checked per candidate instead.
INTERSECT_FACTOR = 4
#: How long planning statistics (the registry's size, words' entry counts) are reused, in seconds.
STATS_TTL_S = 60.0
#: Most words whose entry counts are kept per database.
MAX_STATISTICS = 8192


def successor(prefix: str) -> str:
    """The smallest string greater than every string that starts with ``prefix``."""
    last = ord(prefix[-1])
    if last >= 0x10FFFF:
        return successor(prefix[:-1]) if len(prefix) > 1 else "\U0010ffff" * 2
    return prefix[:-1] + chr(last + 1)


class _Statistics:
    """Planning statistics of one database, each reused for ``STATS_TTL_S``: the number of
    schools, and per word how many index entries its range holds (capped). They only steer
    the plan: a stale figure can make a query slower, never its answer different."""

    def __init__(self) -> None:
        self.size: tuple[float, int] | None = None
        self.counts: dict[str, tuple[float, int]] = {}


_statistics: dict[str, _Statistics] = {}
_statistics_lock = threading.Lock()


def _statistics_of(session: Session) -> _Statistics:
    bind = session.get_bind()
    url = str(bind.engine.url if isinstance(bind, sa.Connection) else bind.url)
    found = _statistics.get(url)
    if found is None:
        with _statistics_lock:
            if len(_statistics) > 64:
                _statistics.clear()
            found = _statistics.setdefault(url, _Statistics())
    return found


def _registry_size(session: Session) -> int:
    """How many schools there are (counted at most every ``STATS_TTL_S``)."""
    stats = _statistics_of(session)
    now = time.monotonic()
    if stats.size is not None and now - stats.size[0] < STATS_TTL_S:
        return stats.size[1]
    size = int(session.execute(_statement("SELECT count(*) FROM schools", page=False)).scalar_one())
    stats.size = (now, size)
    return size


def selective(session: Session) -> int:
    """The most index entries a driving word may have: ``SELECTIVE``, or a quarter of the
    registry when that is more. At 100,000 schools a city named in 3 % of them drives
    (two such words intersect in a few ms) instead of walking every school (0.4 s here when
    the two never meet)."""
    return max(SELECTIVE, _registry_size(session) // SELECTIVE_SHARE)


def word_counts(session: Session, words: tuple[str, ...]) -> tuple[list[int], bool]:
    """Each word's index entries (at most :func:`selective` + 1), and whether a word just counted
    has none (then nothing matches). Counts younger than ``STATS_TTL_S`` are reused; the
    others are counted in one statement."""
    stats = _statistics_of(session)
    now = time.monotonic()
    counts: list[int | None] = []
    for word in words:
        known = stats.counts.get(word)
        counts.append(known[1] if known is not None and now - known[0] < STATS_TTL_S else None)
    missing = [w for w, c in zip(words, counts, strict=True) if c is None]
    if not missing:
        return [c for c in counts if c is not None], False
    params: dict[str, Any] = {"cap": selective(session) + 1}
    for i, word in enumerate(missing):
        params[f"w{i}"], params[f"x{i}"] = word, successor(word)
    probe = _statement(_probe_sql(len(missing)), page=False)
    found = {w: int(c) for w, c in zip(missing, session.execute(probe, params).one(), strict=True)}
    if len(stats.counts) > MAX_STATISTICS:
        stats.counts.clear()
    for word, count in found.items():
        stats.counts[word] = (now, count)
    return [found[w] if c is None else c for w, c in zip(words, counts, strict=True)], 0 in found.values()


def plan(session: Session, counts: list[int], limit: int) -> tuple[list[int], list[int]] | None:
    """``(intersected, checked)`` word indexes for a drive, or ``None`` for a walk."""
    order = sorted(range(len(counts)), key=counts.__getitem__)
    rarest = counts[order[0]]
    cap = selective(session)
    if rarest > cap:
        return None
    size = max(_registry_size(session), 1)
    share = 1.0
    for count in counts:
        share *= min(1.0, max(count, 1) / size)
    walked = min(size, (limit + 1) / share)
    if rarest > DRIVE_FACTOR * walked:
        return None
    bound = min(cap, INTERSECT_FACTOR * rarest)
    intersect = [order[0], *(i for i in order[1:] if counts[i] <= bound)]
    return intersect, [i for i in order if i not in intersect]


def forgiving_counts(
    session: Session, shape: tuple[int, ...], params: dict[str, Any]
) -> tuple[list[int], bool]:
    """Each word's index entries over all its ranges (at most :func:`selective` + 1), and whether
    one has none; counted in one statement (the forgiving tier runs on a miss of the page cache)."""
    probe = _statement(_forgiving_probe_sql(shape), page=False)
    counts = [int(c) for c in session.execute(probe, {**params, "cap": selective(session) + 1}).one()]
    return counts, 0 in counts
