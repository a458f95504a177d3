"""The embeddable badge: ``GET /v1/schools/{id}/badge.svg?lang=``.

A small SVG (at most 4 KB, whatever the school's name) that says what the
registry records — "States alignment with IMI Training Standards 2.0",
"Re-affirmation due" or "No current alignment statement" (``wording.py``, through the
message catalogue), in the language of ``?lang=`` or else ``Accept-Language`` with fallback
to English (``embeds.py`` negotiates) — with a colour per state. It is
accessible (``role="img"`` named by its ``<title>``, which also carries the school's
name), every text is escaped, and it has no script, no style sheet, no link and no
external reference; its own ``Content-Security-Policy`` forbids scripts even when
the SVG is opened as a document. A school puts it on its page inside a link to the
verification page (``…/affiliation``, HTML for browsers), so a visitor who clicks
sees the live answer.

Served from the public-representation cache (``service/web/cache.py``): any school
change may change it; ``Cache-Control: public, max-age=300``; the strong ETag is
over the bytes, so it changes with the status and the language. ``Content-Language``
names the language; ``Vary: Accept-Language`` is sent when the header chose it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session

from service.core.errors import NotFound
from service.core.messages import words as words_of
from service.registry import wording
from service.registry.models import School
from service.web import cache, markup
from service.web.http import make_etag

MEDIA_TYPE = "image/svg+xml"
#: Scripts, styles, images, frames: nothing may load or run, even with the SVG opened as a page.
CSP = "default-src 'none'; script-src 'none'; style-src 'none'; frame-ancestors 'none'; base-uri 'none'"
CACHE_CONTROL = "public, max-age=300"
#: The badge's largest size (bytes): the tests check it with a 300-character name.
MAX_BYTES = 4096
#: Characters of the school's name kept in the badge's title (the page has it whole).
NAME_CHARS = 120

#: Background per state: contrast with white text at least 4.5:1 (WCAG AA).
COLOURS = {"aligned": "#2e7d32", "reaffirmation_due": "#8a5300", "no_statement": "#5f6368"}
LABEL_COLOUR = "#3c4043"
#: Average advance of Verdana/DejaVu Sans at 11 px, per character, for sizing the boxes.
CHAR_WIDTH = 6.6
PADDING = 10

RESOURCE = cache.Resource(route="/v1/schools/{school_id}/badge.svg", domains=("school",), max_age_s=300.0)


@dataclass(frozen=True)
class BadgeText:
    """What a badge shows: the label, the status phrase, the title, and the language used."""

    label: str
    message: str
    title: str
    lang: str
    state: str


def badge_text(school: School, *, lang: str) -> BadgeText:
    """The words of ``school``'s badge in ``lang`` (a language of
    :func:`service.core.messages.languages`; another falls back by lookup, then to English)."""
    words = words_of(lang)
    state = wording.state_of(school.alignment_status, listed=school.listing == "listed")
    message = wording.status_phrase(state, version=school.aligned_version, words=words)
    name = school.name if len(school.name) <= NAME_CHARS else school.name[: NAME_CHARS - 1] + "…"
    return BadgeText(
        label=wording.NETWORK, message=message, title=f"{name}: {message}", lang=words.language, state=state
    )


def _width(text: str) -> int:
    return int(len(text) * CHAR_WIDTH + 2 * PADDING)


def render_svg(words: BadgeText) -> bytes:
    """The badge as SVG bytes: two boxes (label, message), a title for assistive technology."""
    left, right = _width(words.label), _width(words.message)
    total = left + right
    colour = COLOURS[words.state]
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" viewBox="0 0 {total} 20" '
        f'role="img" aria-labelledby="imi-badge-title" xml:lang="{markup.attr(words.lang)}">'
        f'<title id="imi-badge-title">{markup.text(words.title)}</title>'
        f'<rect width="{left}" height="20" fill="{LABEL_COLOUR}"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        '<g fill="#ffffff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11" text-anchor="middle">'
        f'<text x="{left / 2:g}" y="14">{markup.text(words.label)}</text>'
        f'<text x="{left + right / 2:g}" y="14">{markup.text(words.message)}</text>'
        "</g></svg>"
    )
    return svg.encode()


def read_school(engine: Engine, school_id: str) -> School:
    """The school ``school_id``, detached, read in its own read-only session (blocking);
    :class:`NotFound` for an unknown one (the badge's and the page's builds)."""
    with Session(engine.execution_options(imi_readonly=True)) as session:
        school = session.get(School, school_id) if len(school_id) <= 40 else None
        if school is None:
            raise NotFound(f"There is no school {school_id!r}.")
        session.expunge(school)
    return school


def build(*, engine: Engine, school_id: str, lang: str, vary: str) -> cache.Built:
    """The badge of ``school_id`` in ``lang`` (blocking); :class:`NotFound` for an unknown school.

    A delisted school's badge says "No current alignment statement". ``vary``: the response's
    ``Vary`` (``Accept-Encoding``, and ``Accept-Language`` when the header chose ``lang``).
    """
    words = badge_text(read_school(engine, school_id), lang=lang)
    body = render_svg(words)
    return cache.Built(
        body=body,
        media_type=MEDIA_TYPE,
        headers={
            "ETag": make_etag(body),
            "Cache-Control": CACHE_CONTROL,
            "Content-Language": words.lang,
            "Content-Security-Policy": CSP,
            "Vary": vary,
        },
    )
