"""Clause-level differences between two versions' contents (DESIGN §2 "Diff").

Pure functions over the canonical content shape of ``content.py``:
``{"sections": [{"key", "title", "intro", "clauses": [{"key", "kind",
"applies_to", "text"}]}]}``. Clauses are matched by their stable ``key``.

- ``added``: keys only in ``to``; ``removed``: keys only in ``from``
  (each item: ``key``, ``section``, ``order``, ``kind``, ``applies_to``, ``text``).
- ``modified``: ``kind``, ``applies_to`` or ``text`` differ; items carry
  ``before`` and ``after`` (those three fields each).
- ``moved``: the clause changed section, or changed its place relative to the
  other clauses its section has in both versions. A position that shifts only
  because clauses were added or removed around it is not a move. Among the
  common clauses of a section, the ones kept in place are a longest common
  subsequence of the two orders; the others moved. Items carry ``from`` and
  ``to``, each ``{"section", "order"}``.

A clause can be both modified and moved. Lists follow the ``to`` version's
order (``removed``: the ``from`` version's).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

_FIELDS = ("kind", "applies_to", "text")


def _index(content: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Clause key -> ``{"section", "order", "rank", "kind", "applies_to", "text"}``."""
    out: dict[str, dict[str, Any]] = {}
    rank = 0
    for section in content.get("sections", []):
        for order, clause in enumerate(section.get("clauses", []), start=1):
            out[clause["key"]] = {
                "section": section["key"],
                "order": order,
                "rank": rank,
                **{f: clause[f] for f in _FIELDS},
            }
            rank += 1
    return out


def _kept_in_place(old_orders: list[int]) -> set[int]:
    """Indices (into ``old_orders``) of one longest strictly increasing subsequence.

    Patience sorting, O(n log n); ties broken towards the earliest elements so
    the answer is deterministic.
    """
    tails: list[int] = []
    tail_index: list[int] = []
    parent: list[int] = [-1] * len(old_orders)
    for i, value in enumerate(old_orders):
        pos = bisect_left(tails, value)
        if pos == len(tails):
            tails.append(value)
            tail_index.append(i)
        else:
            tails[pos] = value
            tail_index[pos] = i
        parent[i] = tail_index[pos - 1] if pos > 0 else -1
    kept: set[int] = set()
    i = tail_index[-1] if tail_index else -1
    while i != -1:
        kept.add(i)
        i = parent[i]
    return kept


def diff_contents(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """``{"added", "removed", "modified", "moved"}`` from ``before`` to ``after``."""
    old, new = _index(before), _index(after)
    new_keys = sorted(new, key=lambda k: new[k]["rank"])
    old_keys = sorted(old, key=lambda k: old[k]["rank"])

    def item(entry: dict[str, Any], key: str) -> dict[str, Any]:
        return {
            "key": key,
            "section": entry["section"],
            "order": entry["order"],
            **{f: entry[f] for f in _FIELDS},
        }

    added = [item(new[k], k) for k in new_keys if k not in old]
    removed = [item(old[k], k) for k in old_keys if k not in new]
    modified = [
        {
            "key": k,
            "section": new[k]["section"],
            "before": {f: old[k][f] for f in _FIELDS},
            "after": {f: new[k][f] for f in _FIELDS},
        }
        for k in new_keys
        if k in old and any(old[k][f] != new[k][f] for f in _FIELDS)
    ]

    moved_keys: set[str] = set()
    by_section: dict[str, list[str]] = {}
    for k in new_keys:
        if k not in old:
            continue
        if old[k]["section"] != new[k]["section"]:
            moved_keys.add(k)
        else:
            by_section.setdefault(new[k]["section"], []).append(k)
    for keys in by_section.values():
        kept = _kept_in_place([old[k]["order"] for k in keys])
        moved_keys.update(k for i, k in enumerate(keys) if i not in kept)
    moved = [
        {
            "key": k,
            "from": {"section": old[k]["section"], "order": old[k]["order"]},
            "to": {"section": new[k]["section"], "order": new[k]["order"]},
        }
        for k in new_keys
        if k in moved_keys
    ]
    return {"added": added, "removed": removed, "modified": modified, "moved": moved}


def in_language(
    diff: dict[str, list[dict[str, Any]]], before: dict[str, Any], after: dict[str, Any]
) -> dict[str, list[dict[str, Any]]]:
    """``diff`` (computed on the source language) with the clause texts of ``before`` and
    ``after`` in another language: the same keys, kinds and places, translated ``text``."""
    old, new = _index(before), _index(after)
    return {
        "added": [{**item, "text": new[item["key"]]["text"]} for item in diff["added"]],
        "removed": [{**item, "text": old[item["key"]]["text"]} for item in diff["removed"]],
        "modified": [
            {
                **item,
                "before": {**item["before"], "text": old[item["key"]]["text"]},
                "after": {**item["after"], "text": new[item["key"]]["text"]},
            }
            for item in diff["modified"]
        ],
        "moved": diff["moved"],
    }


def change_summary(diff: dict[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
    """Only the keys of each list: the ``changes`` member of ``standards.version.published``."""
    return {
        name: [entry["key"] for entry in diff[name]] for name in ("added", "removed", "modified", "moved")
    }
