"""Serialising version and clause representations as JSON, Markdown and HTML.

Pure functions from the representation dicts built by ``views.py`` to bytes.

- JSON: ``service.core.jsonutil.dumps`` (UTF-8, RFC 3339 UTC timestamps).
- Markdown (CommonMark): headings for the title, sections and clause keys,
  then the clause text as written; regional notes as block quotes; the
  contributors as a closing list (``## Contributors``).
- HTML: an embeddable fragment (no ``<html>``/``<body>``): one ``<article>``
  root with ``lang`` and ``dir`` (``rtl`` for right-to-left scripts), a stable
  ``id`` per section (``section-A``) and clause (``clause-A1.2``), the
  contributors in a closing ``<footer class="imi-contributors">``. Every text is
  escaped; clause Markdown is rendered with markdown-it-py with raw HTML
  disabled, then sanitised with nh3 (ammonia) to a small set of tags.

Contributors are listed as ``name (affiliation, region)``, leaving out what is
empty; a version without contributors gets no list.

Entity tags: :func:`representation_etag` depends on the media type, the
served language and the status as well as the bytes, so a status change, a
translation or another media type always gets another ETag.
"""

from __future__ import annotations

import datetime as dt
import html
from functools import lru_cache
from typing import Any

import langcodes
import nh3
from markdown_it import MarkdownIt

from service.core.jsonutil import dumps
from service.web.http import HTML, JSON, MARKDOWN, make_etag

#: Media types of full-version and clause reads, the default first (DESIGN §3).
OFFERED = (JSON, MARKDOWN, HTML)
#: Scripts written right to left (ISO 15924).
RTL_SCRIPTS = frozenset({"Arab", "Hebr", "Thaa", "Syrc", "Nkoo", "Adlm", "Rohg", "Mand", "Samr"})
_ALLOWED_TAGS = {"p", "em", "strong", "ul", "ol", "li", "a", "code", "pre", "blockquote", "br", "hr"}
_ALLOWED_ATTRIBUTES: dict[str, set[str]] = {"a": {"href", "title"}, "ol": {"start"}}
_MARKDOWN = MarkdownIt("commonmark", {"html": False})


def representation_etag(media_type: str, language: str, status: str, body: bytes) -> str:
    """The strong ETag of one serialised representation."""
    return make_etag(media_type, language, status, body)


@lru_cache(maxsize=256)
def text_direction(language: str) -> str:
    """``rtl`` when the likely script of ``language`` is written right to left, else ``ltr``."""
    try:
        script = langcodes.Language.get(language).maximize().script
    except (ValueError, langcodes.LanguageTagError):
        return "ltr"
    return "rtl" if script in RTL_SCRIPTS else "ltr"


def markdown_to_html(text: str) -> str:
    """Clause Markdown as sanitised HTML (no raw HTML, no scripts, safe link schemes only)."""
    return nh3.clean(_MARKDOWN.render(text), tags=_ALLOWED_TAGS, attributes=_ALLOWED_ATTRIBUTES)


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _md_inline(value: str) -> str:
    """Plain text made safe for a Markdown heading or paragraph (no markup takes effect)."""
    out = []
    for ch in value.replace("\n", " "):
        out.append("\\" + ch if ch in "\\`*_[]<>#|!~&" else ch)
    return "".join(out)


def _date(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).date().isoformat()
    return str(value)


def _notes_by_target(rep: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    notes: dict[str, list[dict[str, Any]]] = {}
    for note in rep.get("regional_notes", []):
        notes.setdefault(note["target"], []).append(note)
    return notes


def _credit(person: dict[str, Any]) -> str:
    """``Ada Example (Example Institute, Germany)``: the name, then what is known of the rest."""
    details = ", ".join(part for part in (person.get("affiliation"), person.get("region")) if part)
    return f"{person['name']} ({details})" if details else person["name"]


def _status_line(rep: dict[str, Any]) -> str:
    parts = [f"Version {rep['version']}", rep["status"]]
    if rep.get("published_at"):
        parts.append(_date(rep["published_at"]))
    return " · ".join(parts)


# --- versions ---------------------------------------------------------------------------------


def version_json(rep: dict[str, Any]) -> bytes:
    """The JSON representation."""
    return dumps(rep)


def version_markdown(rep: dict[str, Any]) -> bytes:
    """The Markdown representation: headings + clause text, regional notes as quotes."""
    notes = _notes_by_target(rep)
    lines = [f"# {_md_inline(rep['title'])}", "", f"_{_md_inline(_status_line(rep))}_", ""]
    if rep.get("summary"):
        lines += [_md_inline(rep["summary"]), ""]
    for section in rep["sections"]:
        lines += [f"## {_md_inline(section['key'])} {_md_inline(section['title'])}", ""]
        if section.get("intro"):
            lines += [_md_inline(section["intro"]), ""]
        lines += _md_notes(notes.get(section["key"], []))
        for clause in section["clauses"]:
            lines += [
                f"### {_md_inline(clause['key'])}",
                "",
                _md_kind(clause),
                "",
            ]
            lines += [clause["text"].strip(), ""]
            lines += _md_change_note(clause)
            lines += _md_notes(notes.get(clause["key"], []))
    if rep.get("contributors"):
        lines += ["## Contributors", ""]
        lines += [f"- {_md_inline(_credit(p))}" for p in rep["contributors"]]
    return ("\n".join(lines).rstrip() + "\n").encode()


def _md_kind(clause: dict[str, Any]) -> str:
    return f"*{_md_inline(clause['kind'])} · {_md_inline(clause['applies_to'])}*"


def _md_change_note(clause: dict[str, Any]) -> list[str]:
    """Why the clause changed in this version (Markdown, quoted), when it says."""
    note = clause.get("change_note")
    if not note:
        return []
    quoted = "\n".join(f"> {line}" if line else ">" for line in note.strip().split("\n"))
    return ["> *Change note:*", ">", quoted, ""]


def _md_notes(notes: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for note in notes:
        out += [f"> **{_md_inline(note['region'])}:** {_md_inline(note['text'])}", ""]
    return out


def version_html(rep: dict[str, Any]) -> bytes:
    """The embeddable HTML fragment of a version."""
    notes = _notes_by_target(rep)
    lang = rep["language"]
    parts = [
        f'<article class="imi-standards" lang="{_esc(lang)}" dir="{text_direction(lang)}"'
        f' id="imi-{_esc(rep["document"])}-{_esc(rep["version"])}" data-version="{_esc(rep["version"])}"'
        f' data-status="{_esc(rep["status"])}">',
        f"<header><h1>{_esc(rep['title'])}</h1>",
        f'<p class="imi-meta">{_esc(_status_line(rep))}</p>',
    ]
    if rep.get("summary"):
        parts.append(f'<p class="imi-summary">{_esc(rep["summary"])}</p>')
    parts.append("</header>")
    for section in rep["sections"]:
        parts.append(f'<section class="imi-section" id="section-{_esc(section["key"])}">')
        parts.append(f"<h2>{_esc(section['key'])} {_esc(section['title'])}</h2>")
        if section.get("intro"):
            parts.append(f'<p class="imi-intro">{_esc(section["intro"])}</p>')
        parts += _html_notes(notes.get(section["key"], []))
        for clause in section["clauses"]:
            parts.append(_clause_html(clause, notes.get(clause["key"], [])))
        parts.append("</section>")
    if rep.get("contributors"):
        # The heading is not translated (contributors are not part of a translation): say so.
        parts.append('<footer class="imi-contributors"><h2 lang="en">Contributors</h2>')
        parts.append("<ul>")
        parts += [f"<li>{_esc(_credit(p))}</li>" for p in rep["contributors"]]
        parts.append("</ul></footer>")
    parts.append("</article>")
    return ("\n".join(parts) + "\n").encode()


def _clause_html(clause: dict[str, Any], notes: list[dict[str, Any]]) -> str:
    return "\n".join(
        [
            f'<div class="imi-clause imi-{_esc(clause["kind"])}" id="clause-{_esc(clause["key"])}"'
            f' data-kind="{_esc(clause["kind"])}" data-applies-to="{_esc(clause["applies_to"])}">',
            f"<h3>{_esc(clause['key'])}</h3>",
            f'<div class="imi-text">{markdown_to_html(clause["text"])}</div>',
            *(
                [f'<aside class="imi-change-note">{markdown_to_html(clause["change_note"])}</aside>']
                if clause.get("change_note")
                else []
            ),
            *_html_notes(notes),
            "</div>",
        ]
    )


def _html_notes(notes: list[dict[str, Any]]) -> list[str]:
    return [
        f'<aside class="imi-regional-note" data-region="{_esc(n["region"])}">'
        f"<strong>{_esc(n['region'])}:</strong> {_esc(n['text'])}</aside>"
        for n in notes
    ]


def render_version(rep: dict[str, Any], media_type: str) -> bytes:
    """The version representation in ``media_type`` (one of :data:`OFFERED`)."""
    if media_type == MARKDOWN:
        return version_markdown(rep)
    if media_type == HTML:
        return version_html(rep)
    return version_json(rep)


# --- single clauses ---------------------------------------------------------------------------


def render_clause(rep: dict[str, Any], media_type: str) -> bytes:
    """A clause view (``views.clause_view``) in ``media_type``."""
    if media_type == MARKDOWN:
        lines = [f"### {_md_inline(rep['key'])}", "", _md_kind(rep), ""]
        lines += [rep["text"].strip(), ""]
        lines += _md_change_note(rep)
        lines += _md_notes(rep["regional_notes"])
        return ("\n".join(lines).rstrip() + "\n").encode()
    if media_type == HTML:
        lang = rep["language"]
        inner = _clause_html(rep, rep["regional_notes"])
        fragment = (
            f'<article class="imi-standards" lang="{_esc(lang)}" dir="{text_direction(lang)}"'
            f' data-version="{_esc(rep["version"])}" data-status="{_esc(rep["status"])}">\n'
            f"{inner}\n</article>\n"
        )
        return fragment.encode()
    return dumps(rep)
