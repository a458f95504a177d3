"""The public disposition report of a version's review: every comment with its outcome and
response, grouped by what it is about, as JSON, Markdown and an embeddable HTML fragment.

Groups follow the version's document order: general comments first, then each
section's own comments followed by each of its clauses'. Comments on a key the
version no longer has (the draft changed after they were written) come last,
with ``in_version: false``. Within a group, oldest first.

Everything a commenter wrote is untrusted: in Markdown, texts are escaped and a
proposed wording is shown verbatim in a fenced block; in HTML every text is
escaped and the proposed wording (Markdown) is rendered with raw HTML disabled,
then sanitised, like clause text.

Languages, as for version reads: the report is served in the language negotiated among
the version's translations (``negotiation.py``; the source language when none fits). The
version's title and the section titles come from that translation; the words of ours —
"General comments", "Section", "Clause", outcome and commenter-type names, the review line,
labels, dates — from the message catalogue of that language (English words, marked
``lang="en"``, for a translation without a catalogue). What commenters and editors wrote
stays as written, and codes stay codes (``DE``, ``data-outcome``, the JSON's members).
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

from sqlmodel import Session

from service.core.jsonutil import dumps
from service.core.messages import N_, Words, words
from service.standards import comments, reviews, translations
from service.standards.content import load_content
from service.standards.links import comments_url, review_url, version_url
from service.standards.models import DRAFT, OUTCOMES, StandardsComment
from service.standards.render import markdown_to_html, text_direction
from service.web.http import HTML, MARKDOWN

#: Media types of the report, the default first.
OFFERED = ("application/json", MARKDOWN, HTML)

#: Outcomes (and the two states without one) and commenter types as a reader says them.
OUTCOME_NAMES = {
    "accepted": N_("accepted"),
    "accepted_with_changes": N_("accepted with changes"),
    "declined": N_("declined"),
    "noted": N_("noted"),
    "pending": N_("pending"),
    "withdrawn": N_("withdrawn"),
}
COMMENTER_TYPES = {
    "association": N_("association"),
    "training_school": N_("training school"),
    "individual": N_("individual"),
    "other": N_("other"),
}
REVIEW_LINES = {
    "open": N_("Review open, %(start)s to %(end)s"),
    "closed": N_("Review closed, %(start)s to %(end)s"),
}


def build(
    *, session: Session, slug: str, version: str, base_url: str | None, lang: str | None = None
) -> tuple[dict[str, Any], dt.datetime | None]:
    """The report of ``version``'s review (``ReviewReport``) and when it changes by the clock alone
    (``closes_at`` of an open review, else ``None``). :class:`NotFound` without a public review.

    ``lang``: the language to serve (a normalised tag; RFC 4647 lookup among the version's
    translations — with its draft ones, as a version read shows a draft under review —, else
    the source language); ``language`` in the report says which was served."""
    doc, ver, review = comments.reviewed_version(session, slug, version)
    summary = reviews.summary(session, slug=slug, ver=ver, review=review, base_url=base_url)
    rows = comments.all_of(session, ver)
    content = load_content(session, ver)
    texts = {t.language: t.texts for t in translations.for_version(session, ver, editor=ver.status == DRAFT)}
    served = translations.choose_language(lang, doc.language, list(texts))
    if served != doc.language:
        content = translations.apply(content, texts[served])
    outcomes = {name: 0 for name in (*OUTCOMES, "pending", "withdrawn")}
    for c in rows:
        state = comments.state_of(c)
        outcomes[c.outcome if state == "disposed" and c.outcome else state] += 1
    rep = {
        "document": slug,
        "version": ver.version,
        "version_status": ver.status,
        "title": content["title"],
        "language": served,
        "review": summary,
        "outcomes": outcomes,
        "groups": _groups(rows, content, slug=slug, version=ver.version, base_url=base_url),
        "links": {
            "self": review_url(base_url, slug, ver.version),
            "version": version_url(base_url, slug, ver.version),
            "comments": comments_url(base_url, slug, ver.version),
        },
    }
    changes_at = review.closes_at if summary["state"] == "open" else None
    return rep, changes_at


def _groups(
    rows: list[StandardsComment], content: dict[str, Any], *, slug: str, version: str, base_url: str | None
) -> list[dict[str, Any]]:
    by_anchor: dict[tuple[str | None, str | None], list[StandardsComment]] = {}
    for c in rows:
        anchor = (c.clause_key, None) if c.clause_key else (None, c.section_key)
        by_anchor.setdefault(anchor, []).append(c)

    def group(
        scope: str, key: str | None, section: str | None, title: str | None, found: bool
    ) -> dict[str, Any]:
        anchor = (key, None) if scope == "clause" else (None, key)
        return {
            "scope": scope,
            "key": key,
            "section": section,
            "title": title,
            "in_version": found,
            "comments": [
                comments.representation(c, slug=slug, version=version, base_url=base_url)
                for c in by_anchor.pop(anchor, [])
            ],
        }

    out = [group("general", None, None, None, True)]
    for s in content["sections"]:
        out.append(group("section", s["key"], None, s["title"], True))
        out += [group("clause", c["key"], s["key"], None, True) for c in s["clauses"]]
    for clause_key, section_key in sorted(by_anchor, key=lambda a: by_anchor[a][0].id):
        if clause_key is not None:
            out.append(group("clause", clause_key, by_anchor[(clause_key, None)][0].section_key, None, False))
        else:
            out.append(group("section", section_key, None, None, False))
    return [g for g in out if g["comments"]]


# --- serialising -------------------------------------------------------------------------------


def render(rep: dict[str, Any], media_type: str) -> bytes:
    """The report in ``media_type`` (one of :data:`OFFERED`), our words in ``rep["language"]``."""
    if media_type == MARKDOWN:
        return _markdown(rep, words(rep["language"]))
    if media_type == HTML:
        return _html(rep, words(rep["language"]))
    return dumps(rep)


def _day(value: Any, w: Words) -> str:
    return w.date(value) if isinstance(value, dt.datetime) else str(value)


def _name(names: dict[str, str], code: str, w: Words) -> str:
    """A code as a reader says it (``accepted_with_changes`` → ``accepted with changes``)."""
    return w.gettext(names[code]) if code in names else code.replace("_", " ")


def _line(rep: dict[str, Any], w: Words) -> str:
    """``Review closed, May 1, 2026 to June 1, 2026 · 14 comments from 9 organisations (DE, NL)``."""
    r = rep["review"]
    regions = ", ".join(r["regions"])
    period = w.gettext(REVIEW_LINES.get(r["state"], REVIEW_LINES["closed"])) % {
        "start": _day(r["opens_at"], w),
        "end": _day(r["closed_at"] or r["closes_at"], w),
    }
    counted = w.ngettext("%(count)s comment", "%(count)s comments", r["comments"]) % {"count": r["comments"]}
    behind = w.ngettext("from %(count)s organisation", "from %(count)s organisations", r["organisations"]) % {
        "count": r["organisations"]
    }
    return f"{period} · {counted} {behind}" + (f" ({regions})" if regions else "")


def _outcomes(rep: dict[str, Any], w: Words) -> str:
    listed = " · ".join(f"{_name(OUTCOME_NAMES, name, w)} {n}" for name, n in rep["outcomes"].items())
    return w.gettext("Outcomes: %(outcomes)s") % {"outcomes": listed}


def _heading(group: dict[str, Any], w: Words) -> str:
    if group["scope"] == "general":
        heading = w.gettext("General comments")
    elif group["scope"] == "section":
        title = f" {group['title']}" if group["title"] else ""
        heading = w.gettext("Section %(key)s") % {"key": group["key"]} + title
    else:
        heading = w.gettext("Clause %(key)s") % {"key": group["key"]}
    if not group["in_version"]:
        heading = w.gettext("%(heading)s (no longer in this version)") % {"heading": heading}
    return heading


def _who(c: dict[str, Any], w: Words) -> str:
    kind = _name(COMMENTER_TYPES, c["commenter_type"], w)
    return f"{c['organisation']} ({c['region']}, {kind}) · {_day(c['created_at'], w)}"


#: Characters that start Markdown markup anywhere in a line.
_MARKUP = frozenset("\\`*_[]<>#|!~&")


def _md_line(line: str) -> str:
    """One line of plain text that no Markdown markup takes effect in: markup characters get a
    backslash, and so does what would open a block at the start (``-``, ``+``, ``=``, ``1.``)."""
    body = line.lstrip(" \t")
    out = "".join("\\" + ch if ch in _MARKUP else ch for ch in body)
    digits = len(out) - len(out.lstrip("0123456789"))
    if out[:1] in ("-", "+", "="):
        out = "\\" + out
    elif digits and out[digits : digits + 1] in (".", ")"):
        out = out[:digits] + "\\" + out[digits:]
    return out


def _md_text(text: str) -> str:
    """Plain text as Markdown paragraphs that show it as written (no markup takes effect)."""
    return "\n".join(_md_line(line) for line in text.split("\n"))


def _fence(text: str) -> str:
    """``text`` verbatim in a fenced block longer than any run of backticks inside it."""
    ticks = "`" * max(3, _longest_run(text, "`") + 1)
    return f"{ticks}markdown\n{text}\n{ticks}"


def _longest_run(text: str, char: str) -> int:
    best = run = 0
    for ch in text:
        run = run + 1 if ch == char else 0
        best = max(best, run)
    return best


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _html_text(text: str) -> str:
    return "<br>".join(_esc(line) for line in text.split("\n"))


def _markdown(rep: dict[str, Any], w: Words) -> bytes:
    title = w.gettext("Review of %(title)s, version %(version)s") % {
        "title": rep["title"],
        "version": rep["version"],
    }
    out = [f"# {_md_line(title)}", ""]
    out += [f"_{_md_line(_line(rep, w))}_", ""]
    if rep["review"]["summary"]:
        out += [_md_text(rep["review"]["summary"]), ""]
    out += [_md_line(_outcomes(rep, w)), ""]
    for group in rep["groups"]:
        out += [f"## {_md_line(_heading(group, w))}", ""]
        for c in group["comments"]:
            out += [f"### {_md_line(c['id'])} · {_md_line(_who(c, w))}", ""]
            if c["state"] == "withdrawn":
                out += [f"_{_md_line(w.gettext('Withdrawn by its author.'))}_", ""]
            if c["quote"]:
                out += ["> " + _md_text(c["quote"]).replace("\n", "\n> "), ""]
            out += [_md_text(c["text"]), ""]
            if c["proposed_text"]:
                out += [_md_line(w.gettext("Proposed text:")), "", _fence(c["proposed_text"]), ""]
            d = c["disposition"]
            if d is not None:
                said = w.gettext("Disposition: %(outcome)s.") % {
                    "outcome": _name(OUTCOME_NAMES, d["outcome"], w)
                }
                out += [f"**{_md_line(said)}** {_md_text(d['response'])}", ""]
            elif c["state"] == "pending":
                out += [f"_{_md_line(w.gettext('Awaiting a disposition.'))}_", ""]
    return ("\n".join(out).rstrip() + "\n").encode()


def _html(rep: dict[str, Any], w: Words) -> bytes:
    lang = rep["language"]
    # Our words are in the catalogue's language, which may not be the page's: say so.
    ours = "" if w.language.lower() == lang.lower() else f' lang="{w.language}"'
    title = w.gettext("Review of %(title)s, version %(version)s") % {
        "title": rep["title"],
        "version": rep["version"],
    }
    parts = [
        f'<article class="imi-review" lang="{_esc(lang)}" dir="{text_direction(lang)}"'
        f' data-document="{_esc(rep["document"])}" data-version="{_esc(rep["version"])}"'
        f' data-state="{_esc(rep["review"]["state"])}">',
        f"<header><h1>{_esc(title)}</h1>",
        f'<p class="imi-meta"{ours}>{_esc(_line(rep, w))}</p>',
    ]
    if rep["review"]["summary"]:
        parts.append(f'<p class="imi-summary">{_html_text(rep["review"]["summary"])}</p>')
    parts.append(f'<p class="imi-outcomes"{ours}>{_esc(_outcomes(rep, w))}</p></header>')
    for group in rep["groups"]:
        anchor = f"review-{group['scope']}" + (f"-{group['key']}" if group["key"] else "")
        in_version = "true" if group["in_version"] else "false"
        parts.append(f'<section class="imi-review-group" id="{_esc(anchor)}" data-in-version="{in_version}">')
        parts.append(f"<h2>{_esc(_heading(group, w))}</h2>")
        for c in group["comments"]:
            d = c["disposition"]
            outcome = d["outcome"] if d else c["state"]
            parts.append(
                f'<article class="imi-comment" id="comment-{_esc(c["id"])}" data-state="{_esc(c["state"])}"'
                f' data-outcome="{_esc(outcome)}" data-region="{_esc(c["region"])}">'
            )
            parts.append(f'<p class="imi-commenter">{_esc(_who(c, w))}</p>')
            if c["state"] == "withdrawn":
                parts.append(
                    f'<p class="imi-withdrawn"{ours}>{_esc(w.gettext("Withdrawn by its author."))}</p>'
                )
            if c["quote"]:
                parts.append(f'<blockquote class="imi-quote">{_html_text(c["quote"])}</blockquote>')
            parts.append(f'<p class="imi-comment-text">{_html_text(c["text"])}</p>')
            if c["proposed_text"]:
                parts.append(f'<p class="imi-proposed-label"{ours}>{_esc(w.gettext("Proposed text:"))}</p>')
                parts.append(f'<div class="imi-proposed">{markdown_to_html(c["proposed_text"])}</div>')
            if d is not None:
                said, response = _esc(_name(OUTCOME_NAMES, d["outcome"], w)), _html_text(d["response"])
                parts.append(f'<p class="imi-disposition"><strong{ours}>{said}</strong> {response}</p>')
            elif c["state"] == "pending":
                parts.append(f'<p class="imi-pending"{ours}>{_esc(w.gettext("Awaiting a disposition."))}</p>')
            parts.append("</article>")
        parts.append("</section>")
    parts.append("</article>")
    return ("\n".join(parts) + "\n").encode()
