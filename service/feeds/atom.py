"""Writing Atom 1.0 documents (RFC 4287) with the paging links of RFC 5005 §3.

Plain data in (:class:`Feed`, :class:`Entry`, :class:`Link`), UTF-8 bytes out
(:func:`render`). Every text is escaped (``service/web/markup.py``): a title
with ``<script>`` or ``]]>`` is character data; ``content`` of type ``html`` is
HTML escaped once more, as RFC 4287 §3.1.1.2 asks. Timestamps are RFC 3339 in
UTC. Entry ids are ``tag:`` URIs (RFC 4151) minted from the public base URL's host
and the event id (:func:`tag_uri`): stable for as long as the event is kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from service.web import markup

NAMESPACE = "http://www.w3.org/2005/Atom"
MEDIA_TYPE = "application/atom+xml"
#: The year in the ``tag:`` URIs' tagging entity: the first year these ids were minted.
TAG_YEAR = "2026"


@dataclass(frozen=True)
class Link:
    """An ``atom:link``: ``rel`` (``alternate``, ``related``, ``self``, ``first``, ``next``…)."""

    rel: str
    href: str
    type: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class Entry:
    """An ``atom:entry``; ``content_html`` is an HTML fragment (escaped on output)."""

    id: str
    title: str
    updated: dt.datetime
    content_html: str
    links: Sequence[Link] = ()
    categories: Sequence[tuple[str, str]] = ()  # (term, scheme)


@dataclass(frozen=True)
class Feed:
    """An ``atom:feed`` document: one page of a paged feed."""

    id: str
    title: str
    subtitle: str
    updated: dt.datetime
    author: str
    author_uri: str
    links: Sequence[Link] = ()
    entries: Sequence[Entry] = field(default_factory=tuple)
    lang: str = "en"


def timestamp(value: dt.datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` (seconds, and microseconds when there are any)."""
    moment = value.astimezone(dt.UTC)
    text = moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def tag_uri(base_url: str, specific: str) -> str:
    """``tag:{host},2026:{specific}`` (RFC 4151) for the host of ``base_url``."""
    host = urlsplit(base_url).hostname or "localhost"
    return f"tag:{host},{TAG_YEAR}:{specific}"


def _link(link: Link) -> str:
    out = f'<link rel="{markup.attr(link.rel)}" href="{markup.attr(link.href)}"'
    if link.type:
        out += f' type="{markup.attr(link.type)}"'
    if link.title:
        out += f' title="{markup.attr(link.title)}"'
    return out + "/>"


def _entry(entry: Entry) -> str:
    parts = [
        "<entry>",
        f"<id>{markup.text(entry.id)}</id>",
        f'<title type="text">{markup.text(entry.title)}</title>',
        f"<updated>{timestamp(entry.updated)}</updated>",
        f"<published>{timestamp(entry.updated)}</published>",
        *(_link(link) for link in entry.links),
        *(
            f'<category term="{markup.attr(term)}" scheme="{markup.attr(scheme)}"/>'
            for term, scheme in entry.categories
        ),
        f'<content type="html">{markup.text(entry.content_html)}</content>',
        "</entry>",
    ]
    return "".join(parts)


def render(feed: Feed) -> bytes:
    """The feed document as UTF-8 bytes."""
    head = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<feed xmlns="{NAMESPACE}" xml:lang="{markup.attr(feed.lang)}">',
        f"<id>{markup.text(feed.id)}</id>",
        f'<title type="text">{markup.text(feed.title)}</title>',
        f'<subtitle type="text">{markup.text(feed.subtitle)}</subtitle>',
        f"<updated>{timestamp(feed.updated)}</updated>",
        f"<author><name>{markup.text(feed.author)}</name><uri>{markup.text(feed.author_uri)}</uri></author>",
        '<generator version="1.0">IMI Standards API</generator>',
        *(_link(link) for link in feed.links),
    ]
    return ("".join(head) + "".join(_entry(e) for e in feed.entries) + "</feed>").encode()
