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

The words of ours around the content — the status line (``Version 2.0 · Published
July 1, 2021 · Effective from …``), a clause's kind and audience (``Requirement ·
Applies to: teachers``), the "Regional notes" and "Contributors" headings, the dates —
come from the message catalogue (``service.core.messages``) of the served language, so
a page in German says ``Anforderung · Gilt für: Lehrende``. Codes stay codes (``DE:``
before a regional note, ``data-*`` attributes, the JSON's ``status``).

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
from service.core.messages import N_, Words, words
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


def _when(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and value:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


#: Status names and clause words: msgids, marked with ``N_`` for extraction.
_STATUS = {
    "draft": N_("Draft"),
    "published": N_("Published"),
    "superseded": N_("Superseded"),
    "withdrawn": N_("Withdrawn"),
}
_KINDS = {
    "requirement": N_("Requirement"),
    "recommendation": N_("Recommendation"),
    "guidance": N_("Guidance"),
}
_AUDIENCES = {
    "teacher": N_("teachers"),
    "trainer": N_("trainers"),
    "training_organisation": N_("training organisations"),
}


def _notes_by_target(rep: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    notes: dict[str, list[dict[str, Any]]] = {}
    for note in rep.get("regional_notes", []):
        notes.setdefault(note["target"], []).append(note)
    return notes


def _credit(person: dict[str, Any]) -> str:
    """``Ada Example (Example Institute, Germany)``: the name, then what is known of the rest."""
    details = ", ".join(part for part in (person.get("affiliation"), person.get("region")) if part)
    return f"{person['name']} ({details})" if details else person["name"]


def _status_line(rep: dict[str, Any], w: Words) -> str:
    """``Version 2.0 · Published July 1, 2021 · Effective from July 1, 2021`` in ``w``'s words
    (the status name itself when it is not ``published``: ``Draft``, ``Superseded``, …)."""
    parts = [w.gettext("Version %(version)s") % {"version": rep["version"]}]
    if rep["status"] != "published":
        parts.append(w.gettext(_STATUS.get(rep["status"], rep["status"])))
    published, effective, withdrawn = (
        _when(rep.get(name)) for name in ("published_at", "effective_from", "withdrawn_at")
    )
    if published is not None:
        parts.append(w.gettext("Published %(date)s") % {"date": w.date(published)})
    if effective is not None:
        parts.append(w.gettext("Effective from %(date)s") % {"date": w.date(effective)})
    if withdrawn is not None:
        parts.append(w.gettext("Withdrawn %(date)s") % {"date": w.date(withdrawn)})
    return " · ".join(parts)


def _kind_line(clause: dict[str, Any], w: Words) -> str:
    """``Requirement · Applies to: teachers`` in ``w``'s words."""
    kind = w.gettext(_KINDS.get(clause["kind"], clause["kind"]))
    audience = w.gettext(_AUDIENCES.get(clause["applies_to"], clause["applies_to"]))
    return f"{kind} · " + w.gettext("Applies to: %(audience)s") % {"audience": audience}


# --- versions ---------------------------------------------------------------------------------


def version_json(rep: dict[str, Any]) -> bytes:
    """The JSON representation."""
    return dumps(rep)


def version_markdown(rep: dict[str, Any]) -> bytes:
    """The Markdown representation: headings + clause text, regional notes as quotes."""
    notes = _notes_by_target(rep)
    w = words(rep["language"])
    lines = [f"# {_md_inline(rep['title'])}", "", f"_{_md_inline(_status_line(rep, w))}_", ""]
    if rep.get("summary"):
        lines += [_md_inline(rep["summary"]), ""]
    for section in rep["sections"]:
        lines += [f"## {_md_inline(section['key'])} {_md_inline(section['title'])}", ""]
        if section.get("intro"):
            lines += [_md_inline(section["intro"]), ""]
        lines += _md_notes(notes.get(section["key"], []), w)
        for clause in section["clauses"]:
            lines += [
                f"### {_md_inline(clause['key'])}",
                "",
                _md_kind(clause, w),
                "",
            ]
            lines += [clause["text"].strip(), ""]
            lines += _md_change_note(clause, w)
            lines += _md_notes(notes.get(clause["key"], []), w)
    if rep.get("contributors"):
        heading = w.gettext("Contributors")
        lines += [f"## {_md_inline(heading)}", ""]
        lines += [f"- {_md_inline(_credit(p))}" for p in rep["contributors"]]
    return ("\n".join(lines).rstrip() + "\n").encode()


def _md_kind(clause: dict[str, Any], w: Words) -> str:
    return f"*{_md_inline(_kind_line(clause, w))}*"


def _md_change_note(clause: dict[str, Any], w: Words) -> list[str]:
    """Why the clause changed in this version (Markdown, quoted), when it says."""
    note = clause.get("change_note")
    if not note:
        return []
    quoted = "\n".join(f"> {line}" if line else ">" for line in note.strip().split("\n"))
    return [f"> *{_md_inline(w.gettext('Change note'))}:*", ">", quoted, ""]


def _md_notes(notes: list[dict[str, Any]], w: Words) -> list[str]:
    label = w.gettext("Regional notes")
    out: list[str] = [f"**{_md_inline(label)}**", ""] if notes else []
    for note in notes:
        out += [f"> **{_md_inline(note['region'])}:** {_md_inline(note['text'])}", ""]
    return out


def version_html(rep: dict[str, Any]) -> bytes:
    """The embeddable HTML fragment of a version."""
    notes = _notes_by_target(rep)
    lang = rep["language"]
    w = words(lang)
    parts = [
        f'<article class="imi-standards" lang="{_esc(lang)}" dir="{text_direction(lang)}"'
        f' id="imi-{_esc(rep["document"])}-{_esc(rep["version"])}" data-version="{_esc(rep["version"])}"'
        f' data-status="{_esc(rep["status"])}">',
        f"<header><h1>{_esc(rep['title'])}</h1>",
        f'<p class="imi-meta"{_lang_attr(w, lang)}>{_esc(_status_line(rep, w))}</p>',
    ]
    if rep.get("summary"):
        parts.append(f'<p class="imi-summary">{_esc(rep["summary"])}</p>')
    parts.append("</header>")
    for section in rep["sections"]:
        parts.append(f'<section class="imi-section" id="section-{_esc(section["key"])}">')
        parts.append(f"<h2>{_esc(section['key'])} {_esc(section['title'])}</h2>")
        if section.get("intro"):
            parts.append(f'<p class="imi-intro">{_esc(section["intro"])}</p>')
        source = rep.get("source_language", "")
        parts += _html_notes(notes.get(section["key"], []), w, lang, source)
        for clause in section["clauses"]:
            parts.append(_clause_html(clause, notes.get(clause["key"], []), w, lang, source))
        parts.append("</section>")
    if rep.get("contributors"):
        # The heading is in the catalogue's language, which may not be the page's: say so.
        heading = w.gettext("Contributors")
        parts.append(f'<footer class="imi-contributors"><h2 lang="{w.language}">{_esc(heading)}</h2>')
        parts.append("<ul>")
        parts += [f"<li>{_esc(_credit(p))}</li>" for p in rep["contributors"]]
        parts.append("</ul></footer>")
    parts.append("</article>")
    return ("\n".join(parts) + "\n").encode()


def _lang_attr(w: Words, page_language: str) -> str:
    """`` lang="en"`` when our words are not in the page's language (no catalogue for it)."""
    return "" if w.language.lower() == page_language.lower() else f' lang="{w.language}"'


def _source_attr(source_language: str, page_language: str) -> str:
    """`` lang="en"`` on content a translation does not cover (regional notes, change notes),
    which stays in the source language inside a page in another one (WCAG 3.1.2: a screen
    reader would read English text with German rules)."""
    if not source_language or source_language.lower() == page_language.lower():
        return ""
    return f' lang="{_esc(source_language)}"'


def _clause_html(
    clause: dict[str, Any], notes: list[dict[str, Any]], w: Words, lang: str, source: str = ""
) -> str:
    return "\n".join(
        [
            f'<div class="imi-clause imi-{_esc(clause["kind"])}" id="clause-{_esc(clause["key"])}"'
            f' data-kind="{_esc(clause["kind"])}" data-applies-to="{_esc(clause["applies_to"])}">',
            f"<h3>{_esc(clause['key'])}</h3>",
            f'<p class="imi-kind"{_lang_attr(w, lang)}>{_esc(_kind_line(clause, w))}</p>',
            f'<div class="imi-text">{markdown_to_html(clause["text"])}</div>',
            *(
                [
                    f'<aside class="imi-change-note"{_source_attr(source, lang)}>'
                    f"{markdown_to_html(clause['change_note'])}</aside>"
                ]
                if clause.get("change_note")
                else []
            ),
            *_html_notes(notes, w, lang, source),
            "</div>",
        ]
    )


def _html_notes(notes: list[dict[str, Any]], w: Words, lang: str, source: str = "") -> list[str]:
    if not notes:
        return []
    label = w.gettext("Regional notes")
    return [f'<h4 class="imi-regional-notes"{_lang_attr(w, lang)}>{_esc(label)}</h4>'] + [
        f'<aside class="imi-regional-note" data-region="{_esc(n["region"])}"{_source_attr(source, lang)}>'
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


def render_clause(rep: dict[str, Any], media_type: str, *, source_language: str = "") -> bytes:
    """A clause view (``views.clause_view``) in ``media_type``; ``source_language`` (the
    version's) marks its untranslated notes in HTML."""
    w = words(rep["language"])
    if media_type == MARKDOWN:
        lines = [f"### {_md_inline(rep['key'])}", "", _md_kind(rep, w), ""]
        lines += [rep["text"].strip(), ""]
        lines += _md_change_note(rep, w)
        lines += _md_notes(rep["regional_notes"], w)
        return ("\n".join(lines).rstrip() + "\n").encode()
    if media_type == HTML:
        lang = rep["language"]
        inner = _clause_html(rep, rep["regional_notes"], w, lang, source_language)
        fragment = (
            f'<article class="imi-standards" lang="{_esc(lang)}" dir="{text_direction(lang)}"'
            f' data-version="{_esc(rep["version"])}" data-status="{_esc(rep["status"])}">\n'
            f"{inner}\n</article>\n"
        )
        return fragment.encode()
    return dumps(rep)
