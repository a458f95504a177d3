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

Why a clause changed: ``added``, ``modified`` and ``moved`` items carry the ``to``
clause's ``change_note`` when it has one, and items of every list carry
``accepted_comments`` (ids) when comments on that clause were accepted in the
``to`` version's review. A change note alone does not make a clause modified.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

_FIELDS = ("kind", "applies_to", "text")


def _index(content: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Clause key -> ``{"section", "order", "rank", "kind", "applies_to", "text", "change_note"}``."""
    out: dict[str, dict[str, Any]] = {}
    rank = 0
    for section in content.get("sections", []):
        for order, clause in enumerate(section.get("clauses", []), start=1):
            out[clause["key"]] = {
                "section": section["key"],
                "order": order,
                "rank": rank,
                "change_note": clause.get("change_note"),
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


def _explained(item: dict[str, Any], note: str | None, accepted: list[str] | None) -> dict[str, Any]:
    """``item`` with the reasons for the change, where there are any."""
    if note:
        item["change_note"] = note
    if accepted:
        item["accepted_comments"] = accepted
    return item


def diff_contents(
    before: dict[str, Any], after: dict[str, Any], *, accepted: dict[str, list[str]] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """``{"added", "removed", "modified", "moved"}`` from ``before`` to ``after``.

    ``accepted``: clause key -> ids of the comments accepted on it in ``after``'s review.
    """
    old, new = _index(before), _index(after)
    accepted = accepted or {}
    new_keys = sorted(new, key=lambda k: new[k]["rank"])
    old_keys = sorted(old, key=lambda k: old[k]["rank"])

    def item(entry: dict[str, Any], key: str) -> dict[str, Any]:
        return {
            "key": key,
            "section": entry["section"],
            "order": entry["order"],
            **{f: entry[f] for f in _FIELDS},
        }

    added = [
        _explained(item(new[k], k), new[k]["change_note"], accepted.get(k)) for k in new_keys if k not in old
    ]
    removed = [_explained(item(old[k], k), None, accepted.get(k)) for k in old_keys if k not in new]
    modified = [
        _explained(
            {
                "key": k,
                "section": new[k]["section"],
                "before": {f: old[k][f] for f in _FIELDS},
                "after": {f: new[k][f] for f in _FIELDS},
            },
            new[k]["change_note"],
            accepted.get(k),
        )
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
        _explained(
            {
                "key": k,
                "from": {"section": old[k]["section"], "order": old[k]["order"]},
                "to": {"section": new[k]["section"], "order": new[k]["order"]},
            },
            new[k]["change_note"],
            accepted.get(k),
        )
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


_KINDS = ("added", "removed", "modified", "moved")


def change_summary(diff: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The ``changes`` member of ``standards.version.published``: the keys of each list, and
    ``change_notes`` (``{key: {"change_note"?, "accepted_comments"?}}``) when any item says why."""
    summary: dict[str, Any] = {name: [entry["key"] for entry in diff[name]] for name in _KINDS}
    notes: dict[str, dict[str, Any]] = {}
    for name in _KINDS:
        for entry in diff[name]:
            reasons: dict[str, Any] = {
                f: entry[f] for f in ("change_note", "accepted_comments") if f in entry
            }
            if reasons:
                notes.setdefault(entry["key"], {}).update(reasons)
    if notes:
        summary["change_notes"] = notes
    return summary
