"""Merkle tree hashing and proofs as RFC 9162 §2.1 defines them, over stored subtree hashes.

Pure functions: no database, no I/O. The tree is kept as its *perfect subtrees*:
node ``(level, index)`` is the hash of the ``2**level`` leaves starting at leaf
``index * 2**level`` (level 0: the leaf hashes). Every hash RFC 9162 asks for —
a root, an inclusion path, a consistency proof — is the hash of a leaf range
``D[start:end]`` whose ``start`` is aligned to the largest power of two not above its
length, so it is a few stored perfect subtrees folded from the right
(:func:`range_nodes`, :func:`fold`): at most ``log2(n)`` nodes per range, and one
read of all the nodes a proof needs.

Hashes (RFC 9162 §2.1.1, the same as RFC 6962): ``MTH({}) = SHA-256()``, a leaf is
``SHA-256(0x00 || data)``, an interior node ``SHA-256(0x01 || left || right)``.

Sources: RFC 9162 §2.1.1 (MTH), §2.1.3.1 (PATH), §2.1.4.1 (PROOF/SUBPROOF).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

#: ``(level, index)`` of a perfect subtree.
Node = tuple[int, int]
#: Reads the hashes of ``nodes`` (absent nodes are simply missing from the answer).
NodeReader = Callable[[Iterable[Node]], dict[Node, bytes]]

EMPTY_ROOT = hashlib.sha256(b"").digest()


class MissingNodes(LookupError):
    """The store lacks nodes a computation needs (the tree is smaller than asked)."""


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n >= 2``): RFC 9162's ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


def range_nodes(start: int, end: int) -> list[Node]:
    """The perfect subtrees covering leaves ``[start, end)``, left to right, each smaller than
    the one before; :class:`ValueError` when ``start`` is not aligned so (then RFC 9162 never
    asks for the range's hash)."""
    out: list[Node] = []
    previous = None
    while start < end:
        aligned = (start & -start).bit_length() - 1 if start else 63
        level = min(aligned, (end - start).bit_length() - 1)
        if previous is not None and level >= previous:
            raise ValueError(f"range [{start}, {end}) is not a Merkle subtree range")
        out.append((level, start >> level))
        previous = level
        start += 1 << level
    return out


def fold(hashes: Sequence[bytes]) -> bytes:
    """The hash of consecutive perfect subtrees, largest first: folded from the right."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes make the inclusion proof of leaf ``index`` in a tree of
    ``size`` leaves, in proof order (leaf to root): RFC 9162 §2.1.3.1 ``PATH``."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index - start < k:  # PATH(m, D[0:k]) : MTH(D[k:n])
            ranges.append((start + k, end))
            end = start + k
        else:  # PATH(m - k, D[k:n]) : MTH(D[0:k])
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes make the consistency proof from size ``first`` to size
    ``second`` (``0 < first <= second``), in proof order: RFC 9162 §2.1.4.1 ``PROOF``
    (empty when the sizes are equal)."""
    if not 0 < first <= second:
        raise ValueError(f"no consistency proof from {first} to {second}")
    ranges: list[tuple[int, int]] = []
    start, end, m, complete = 0, second, first, True
    while True:
        if m == end - start:  # SUBPROOF(m, D[m], b): {} when b, else {MTH(D[m])}
            if not complete:
                ranges.append((start, end))
            break
        k = split_point(end - start)
        if m <= k:  # SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            ranges.append((start + k, end))
            end = start + k
        else:  # SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
            ranges.append((start, start + k))
            start += k
            m -= k
            complete = False
    ranges.reverse()
    return ranges


def nodes_of(ranges: Sequence[tuple[int, int]]) -> set[Node]:
    """Every stored node the hashes of ``ranges`` need."""
    return {node for start, end in ranges for node in range_nodes(start, end)}


def range_hashes(ranges: Sequence[tuple[int, int]], read: NodeReader) -> list[bytes]:
    """The hash of each leaf range, with one call of ``read`` for every node they need.

    Raises :class:`MissingNodes` when ``read`` lacks one.
    """
    layout = [range_nodes(start, end) for start, end in ranges]
    wanted = {node for nodes in layout for node in nodes}
    found = read(wanted) if wanted else {}
    missing = wanted - found.keys()
    if missing:
        raise MissingNodes(f"{len(missing)} node(s) missing, first {min(missing)}")
    return [fold([found[node] for node in nodes]) for nodes in layout]


def root(size: int, read: NodeReader) -> bytes:
    """``MTH`` of the first ``size`` leaves (``EMPTY_ROOT`` for 0)."""
    if size == 0:
        return EMPTY_ROOT
    return range_hashes([(0, size)], read)[0]


def inclusion_proof(index: int, size: int, read: NodeReader) -> list[bytes]:
    """RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
    return range_hashes(inclusion_ranges(index, size), read)


def consistency_proof(first: int, second: int, read: NodeReader) -> list[bytes]:
    """RFC 9162 consistency proof between the trees of ``first`` and ``second`` leaves."""
    return range_hashes(consistency_ranges(first, second), read)


def frontier(size: int) -> list[Node]:
    """The perfect subtrees that make up a tree of ``size`` leaves, largest first."""
    return range_nodes(0, size)


def append(
    index: int, leaf: bytes, edge: dict[Node, bytes]
) -> tuple[list[tuple[int, int, bytes]], dict[Node, bytes]]:
    """Append the leaf hash ``leaf`` as leaf ``index``.

    ``edge`` holds (at least) the nodes of :func:`left_siblings` of ``index``. Returns
    the new nodes as ``(level, index, hash)`` — the leaf, then every subtree it
    completes — and the edge of the grown tree (for appending the next leaf).
    """
    rows = [(0, index, leaf)]
    h, level, i = leaf, 0, index
    grown = dict(edge)
    grown[(0, index)] = leaf
    while i & 1:
        left = edge.get((level, i - 1))
        if left is None:
            raise MissingNodes(f"node {(level, i - 1)} is missing")
        h = node_hash(left, h)
        level, i = level + 1, i >> 1
        rows.append((level, i, h))
        grown[(level, i)] = h
    keep = set(frontier(index + 1))
    return rows, {node: value for node, value in grown.items() if node in keep}


def left_siblings(index: int) -> list[Node]:
    """The stored nodes appending leaf ``index`` combines with: one per subtree it completes."""
    out: list[Node] = []
    level, i = 0, index
    while i & 1:
        out.append((level, i - 1))
        level, i = level + 1, i >> 1
    return out
