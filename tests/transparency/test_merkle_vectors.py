"""The tree math against the RFC 6962/9162 test vectors (the eight leaves of the Certificate
Transparency reference tests, as github.com/transparency-dev/merkle publishes them), and
every tree size up to 64 against the independent verifier of ``verifier.py``."""

from __future__ import annotations

import base64

import pytest

from service.transparency import merkle
from tests.transparency import verifier

#: RFC 6962 reference leaf inputs (hex) and the roots of the trees of 0..8 of them.
LEAF_INPUTS = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
#: (leaf index, tree size, proof): the inclusion "happy path" vectors.
INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
            "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
            "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
        ],
    ),
    (
        5,
        8,
        [
            "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
            "yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=",
            "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
        ],
    ),
    (2, 3, ["+sVCA+fMaWzw38tCySodnbr3CtnmIfS9jZhmLwDjwSU="]),
    (
        1,
        5,
        [
            "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
            "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
            "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
        ],
    ),
]
#: (first size, second size, proof): the consistency "happy path" vectors.
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
            "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
            "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
        ],
    ),
    (
        6,
        8,
        [
            "DrxdNDf74tsVi58Sah0RjjCBgQMdCpSfje3t68VY72o=",
            "yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=",
            "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
        ],
    ),
    (2, 5, ["Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=", "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms="]),
    (
        6,
        7,
        [
            "DrxdNDf74tsVi58Sah0RjjCBgQMdCpSfje3t68VY72o=",
            "sIaT7C5yFZcTBkHoIR5+7cy0wmQTlj7ubB4u0W/7Gl8=",
            "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
        ],
    ),
]


class Store:
    """An in-memory node store filled by :func:`merkle.append`, as the log table is."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.nodes: dict[merkle.Node, bytes] = {}
        self.reads = 0
        edge: dict[merkle.Node, bytes] = {}
        for index, data in enumerate(leaves):
            rows, edge = merkle.append(index, merkle.leaf_hash(data), edge)
            for level, idx, h in rows:
                assert (level, idx) not in self.nodes
                self.nodes[(level, idx)] = h

    def read(self, wanted: object) -> dict[merkle.Node, bytes]:
        self.reads += 1
        return {n: self.nodes[n] for n in wanted if n in self.nodes}  # type: ignore[attr-defined]


def _b64(items: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in items]


VECTOR_LEAVES = [bytes.fromhex(h) for h in LEAF_INPUTS]


def test_roots_of_the_reference_tree() -> None:
    store = Store(VECTOR_LEAVES)
    for size, expected in enumerate(ROOTS):
        assert merkle.root(size, store.read).hex() == expected
        assert verifier.mth(VECTOR_LEAVES[:size]).hex() == expected  # the verifier agrees


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_vectors(index: int, size: int, proof: list[str]) -> None:
    store = Store(VECTOR_LEAVES)
    assert _b64(merkle.inclusion_proof(index, size, store.read)) == proof
    root = bytes.fromhex(ROOTS[size])
    leaf = merkle.leaf_hash(VECTOR_LEAVES[index])
    assert verifier.verify_inclusion(index, size, leaf, [base64.b64decode(p) for p in proof], root)


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY)
def test_consistency_vectors(first: int, second: int, proof: list[str]) -> None:
    store = Store(VECTOR_LEAVES)
    assert _b64(merkle.consistency_proof(first, second, store.read)) == proof
    roots = bytes.fromhex(ROOTS[first]), bytes.fromhex(ROOTS[second])
    assert verifier.verify_consistency(first, second, *roots, [base64.b64decode(p) for p in proof])


def test_every_size_up_to_64_checked_by_the_independent_verifier() -> None:
    leaves = [f"leaf {i}".encode() for i in range(64)]
    store = Store(leaves)
    roots = [verifier.mth(leaves[:n]) for n in range(65)]
    for size in range(1, 65):
        assert merkle.root(size, store.read) == roots[size]
        for index in range(size):
            proof = merkle.inclusion_proof(index, size, store.read)
            assert verifier.verify_inclusion(index, size, merkle.leaf_hash(leaves[index]), proof, roots[size])
            # A proof for another leaf, or against another root, fails.
            assert not verifier.verify_inclusion(index, size, merkle.leaf_hash(b"forged"), proof, roots[size])
        for first in range(1, size + 1):
            proof = merkle.consistency_proof(first, size, store.read)
            assert verifier.verify_consistency(first, size, roots[first], roots[size], proof)
            if first < size:
                assert not verifier.verify_consistency(
                    first, size, roots[first - 1] or b"x", roots[size], proof
                )


def test_a_proof_is_one_read_of_few_nodes_even_at_a_million_leaves() -> None:
    """No O(n) work per request: the ranges of any proof at 10**6 leaves need few nodes."""
    size = 1_000_000
    for index in (0, 1, 499_999, 999_998, 999_999):
        nodes = {n for r in merkle.inclusion_ranges(index, size) for n in merkle.range_nodes(*r)}
        assert len(nodes) <= 40
    for first in (1, 3, 524_288, 777_777, 999_999):
        nodes = {n for r in merkle.consistency_ranges(first, size) for n in merkle.range_nodes(*r)}
        assert len(nodes) <= 60
    assert len(merkle.range_nodes(0, size)) == bin(size).count("1")


def test_out_of_range_arguments_are_refused() -> None:
    store = Store(VECTOR_LEAVES)
    with pytest.raises(ValueError):
        merkle.inclusion_proof(8, 8, store.read)
    with pytest.raises(ValueError):
        merkle.consistency_proof(0, 8, store.read)
    with pytest.raises(ValueError):
        merkle.consistency_proof(5, 4, store.read)
    with pytest.raises(merkle.MissingNodes):
        merkle.root(9, store.read)
