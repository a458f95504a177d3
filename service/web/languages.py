"""Language negotiation: ``Accept-Language`` (RFC 9110 §12.5.4) by RFC 4647 *lookup*.

One function for every public read that has languages (standards versions, clauses,
diffs; feeds, badges and review reports later)::

    served = negotiate(request.headers.get("accept-language"), available, default="en")

- The header is a list of language ranges with optional quality values
  (``de-CH, de;q=0.9, en;q=0.5, *;q=0.1``). Ranges are tried by descending quality,
  ties in the order written (RFC 9110 §12.4.2); a range with ``q=0`` is never
  chosen.
- Each range is looked up (RFC 4647 §3.4): ``de-CH-1996`` tries ``de-CH-1996``,
  then ``de-CH``, then ``de`` (a singleton such as ``x`` is never left at the
  end), case-insensitively, against the available tags; the first range that
  finds one wins. ``*`` (or no usable range at all) gives ``default``.
- Hostile or broken headers never fail a request: a header is read up to
  :data:`MAX_HEADER` characters and :data:`MAX_RANGES` ranges; a range that is not
  ``1*8ALPHA *("-" 1*8alphanum)`` or ``*`` (``de_CH``, mixed scripts, ``q=`` that is
  not a quality value, such as ``q=2`` or 1,000 digits) is ignored, as RFC 9110
  lets a recipient do with an invalid field. A request is never refused for its
  ``Accept-Language``: the fallback is the document's own language (200).

``?lang=`` wins over the header: an explicit choice in the URL is cacheable without
``Vary``. :func:`choose` does both for a route that knows its languages::

    choice = languages.choose(lang, request.headers.get("accept-language"), available, default="en")
    headers = {"Content-Language": choice.language}
    if choice.vary:
        headers["Vary"] = "Accept, Accept-Encoding, " + choice.vary

A cached route keys its representation on ``choice.language`` and ``choice.explicit``, never
on the raw header (``service/web/cache.py``). A read whose only words are ours (a badge, a
feed) chooses among the message catalogue's languages: :func:`choose_ours`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from service.core import codes, messages

#: Characters of ``Accept-Language`` read (longer headers are cut: browsers send < 200).
MAX_HEADER = 1024
#: Ranges taken from one header.
MAX_RANGES = 32
_RANGE = re.compile(r"^(?:\*|[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*)$")
_QVALUE = re.compile(r"^(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)$")


def ranges(header: str | None) -> tuple[tuple[str, float], ...]:
    """The well-formed ``(range, quality)`` pairs of ``header``, best first (stable order).

    ``"de-CH, de;q=0.9, *;q=0"`` → ``(("de-ch", 1.0), ("de", 0.9), ("*", 0.0))``;
    ranges are lower-cased. Malformed elements are left out.
    """
    if not header:
        return ()
    return _ranges(header[:MAX_HEADER])


@lru_cache(maxsize=2048)
def _ranges(header: str) -> tuple[tuple[str, float], ...]:
    found: list[tuple[str, float]] = []
    for element in header.split(",")[: MAX_RANGES * 2]:
        text, _, params = element.partition(";")
        tag = text.strip()
        if not tag or not _RANGE.match(tag):
            continue
        quality = 1.0
        for param in params.split(";") if params else ():
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                value = value.strip()
                quality = float(value) if _QVALUE.match(value) else -1.0
        if quality < 0:
            continue  # not a quality value: the element is ignored
        found.append((tag.lower(), quality))
        if len(found) >= MAX_RANGES:
            break
    found.sort(key=lambda pair: -pair[1])  # stable: ties keep the written order
    return tuple(found)


def _truncations(tag: str) -> Iterable[str]:
    """RFC 4647 §3.4: ``de-ch-1996``, ``de-ch``, ``de`` (never ending on a singleton)."""
    parts = tag.split("-")
    while parts:
        yield "-".join(parts)
        parts.pop()
        if parts and len(parts[-1]) == 1:
            parts.pop()


def lookup(wanted: Iterable[str], available: Iterable[str], default: str) -> str:
    """RFC 4647 lookup of ``wanted`` (language tags or ranges, best first) in ``available``.

    Returns the available tag as it is spelled there, or ``default``.
    """
    by_lower = {tag.lower(): tag for tag in available}
    by_lower.setdefault(default.lower(), default)
    for tag in wanted:
        if tag == "*":
            return default
        for candidate in _truncations(tag.lower()):
            found = by_lower.get(candidate)
            if found is not None:
                return found
    return default


def negotiate(header: str | None, available: Iterable[str], default: str) -> str:
    """The language to serve for ``Accept-Language: header`` among ``available`` tags.

    ``default`` (the document's source language, always available) when nothing
    acceptable is found; ranges with ``q=0`` are skipped.
    """
    acceptable = [tag for tag, quality in ranges(header) if quality > 0]
    return lookup(acceptable, available, default)


def vary(explicit: bool) -> str | None:
    """The ``Vary`` member a response needs for language: ``Accept-Language`` unless the
    language was chosen in the URL (``?lang=``), because then the header did not matter."""
    return None if explicit else "Accept-Language"


def vary_header(explicit: bool, *names: str) -> str:
    """A ``Vary`` value: ``names`` (``Accept``, ``Accept-Encoding``), then ``Accept-Language``
    unless ``?lang=`` chose the language (``explicit``)."""
    return ", ".join(v for v in (*names, vary(explicit)) if v)


@dataclass(frozen=True)
class Choice:
    """The language a read serves: ``language`` (an available tag or the default), and whether
    ``?lang=`` chose it (``explicit``) rather than ``Accept-Language``."""

    language: str
    explicit: bool

    @property
    def vary(self) -> str | None:
        """``Accept-Language`` when the header decided (see :func:`vary`)."""
        return vary(self.explicit)

    def vary_with(self, *names: str) -> str:
        """A ``Vary`` value: ``names``, then ``Accept-Language`` when the header decided
        (:func:`vary_header`)."""
        return vary_header(self.explicit, *names)


def choose(lang: str | None, header: str | None, available: Iterable[str], default: str) -> Choice:
    """The language for ``?lang=`` (``lang``: read by ``service.core.codes``, a 422 problem when
    malformed, then looked up) or else ``Accept-Language`` (``header``), among ``available``;
    ``default`` when nothing fits."""
    if lang is not None:
        tag = codes.parameter(codes.language_tag, lang, "lang")
        return Choice(language=lookup([tag], available, default), explicit=True)
    return Choice(language=negotiate(header, available, default), explicit=False)


def choose_ours(lang: str | None, header: str | None) -> Choice:
    """:func:`choose` for a read whose only words are ours (a badge, a verification page, a
    feed): among English and the message catalogue's languages (``service.core.messages``)."""
    return choose(lang, header, messages.languages(), messages.SOURCE)
