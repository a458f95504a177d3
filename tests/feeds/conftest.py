"""Fixtures of the feed tests: the registry tests' builders (stewards, editors, schools, publishes)
and the Atom checks every feed goes through."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import feedparser
import rnc2rng
from lxml import etree

from tests.registry.conftest import auth, editor, make_school, publish, state, steward  # noqa: F401

SCHEMA = Path(__file__).with_name("atom.rnc")
ATOM = "{http://www.w3.org/2005/Atom}"


@functools.cache
def atom_schema() -> etree.RelaxNG:
    """RFC 4287's RELAX NG schema (tests/feeds/atom.rnc) for lxml.

    rnc2rng declares the RNC's ``namespace local = ""`` as ``xmlns:local=""``, which
    Namespaces in XML 1.0 forbids; the declaration is dropped (its uses are already
    written as ``ns=""``)."""
    rng = rnc2rng.dumps(rnc2rng.loads(SCHEMA.read_text()))
    rng = rng.replace('\n         xmlns:local=""', "").replace(' xmlns:local=""', "")
    return etree.RelaxNG(etree.fromstring(rng.encode()))


def read_feed(body: bytes) -> tuple[Any, etree._Element]:
    """Parse ``body`` as a feed reader does (feedparser) and validate it against RFC 4287's
    schema and its two Schematron rules (author; alternate link or content); returns both
    views. Fails the test on any problem."""
    document = etree.fromstring(body)
    schema = atom_schema()
    assert schema.validate(document), schema.error_log
    for entry in document.iter(f"{ATOM}entry"):
        assert (
            entry.find(f"{ATOM}content") is not None
            or entry.find(f"{ATOM}link[@rel='alternate']") is not None
        )
    assert document.find(f"{ATOM}author") is not None
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    return parsed, document
