"""What each event looks like as an Atom entry: a title, an HTML summary, links.

- standards feed: a published version (its summary, whether schools must re-affirm,
  the clause-level change summary, links to the version — HTML for a browser — and
  the diff), a withdrawal, a published translation, a review opened or closed;
- schools feed: a listing, a delisting, a move to another country, an alignment change
  (in the badge's words: the registry records what schools *state*).

The words of ours — titles such as "Version 2.0 published", "Clause-level changes",
"Added", link titles, dates, language and status names — come from the message
catalogue (``service/core/messages.py``) of the feed's language: a caller passes the
:class:`~service.core.messages.Words`. What editors and schools wrote (version titles
and summaries, school names) stays as the event carries it, and codes stay codes
(``DE``, ``B3.1``, the event type in ``<category>``).

Everything a user wrote is escaped here; the Atom writer escapes the whole fragment
once more for ``type="html"``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from service.core.messages import N_, Words
from service.events.models import Event
from service.feeds import atom
from service.registry import wording
from service.registry.service import school_url
from service.web import markup

#: The events of each feed, in the catalogue's names (review events appear once they exist).
STANDARDS_TYPES = (
    "standards.version.published",
    "standards.version.withdrawn",
    "standards.translation.published",
    "standards.review.opened",
    "standards.review.closed",
)
SCHOOL_TYPES = ("school.listed", "school.delisted", "school.alignment.changed")
#: Types in the schools feed only when they moved the school to another country: a reader of
#: ``?country=DE`` sees a school leave Germany, one of ``?country=AT`` sees it arrive.
SCHOOL_MOVES = ("school.updated",)

HTML = "text/html"
JSON = "application/json"
#: The change summary's lists, each with its line (``%(keys)s``: clause keys, or "none").
CHANGE_KINDS = (
    ("added", N_("Added: %(keys)s")),
    ("removed", N_("Removed: %(keys)s")),
    ("modified", N_("Reworded: %(keys)s")),
    ("moved", N_("Moved: %(keys)s")),
)
#: The titles of review entries.
REVIEW_OPENED = N_("%(title)s %(version)s: review opened")
REVIEW_CLOSED = N_("%(title)s %(version)s: review closed")

#: (document slug, version) -> (version title, version summary), read for the entries of a page.
Versions = Mapping[tuple[str, str], tuple[str, str]]


def _t(value: Any) -> str:
    return markup.text("" if value is None else value)


def _date(value: Any, w: Words) -> str:
    """An event's RFC 3339 timestamp as the locale's date (``1. Juli 2021``); as given when unreadable."""
    if not value:
        return ""
    try:
        return w.date(dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError:
        return str(value)[:10]


def _keys(items: Any) -> list[str]:
    out: list[str] = []
    for item in items or []:
        key = item if isinstance(item, str) else (item or {}).get("key")
        if key:
            out.append(str(key))
    return out


def _changes_html(changes: Mapping[str, Any], w: Words) -> str:
    rows = []
    for member, line in CHANGE_KINDS:
        keys = _keys(changes.get(member))
        listed = ", ".join(keys) if keys else w.gettext("none")
        rows.append(f"<li>{_t(w.gettext(line) % {'keys': listed})}</li>")
    return f"<h3>{_t(w.gettext('Clause-level changes'))}</h3><ul>" + "".join(rows) + "</ul>"


def _anchor(href: str | None, text: str) -> str:
    return f'<a href="{markup.attr(href)}">{_t(text)}</a>' if href else ""


def _category(event: Event, base_url: str) -> tuple[str, str]:
    return (event.type, f"{base_url}/v1/webhooks/event-types")


def standards_entry(event: Event, *, base_url: str, versions: Versions, words: Words) -> atom.Entry:
    """The entry of a ``standards.*`` event, our words in ``words``' language."""
    w = words
    data: dict[str, Any] = dict(event.data or {})
    doc, version = str(data.get("document") or ""), str(data.get("version") or "")
    links = data.get("links") or {}
    title_of, summary = versions.get((doc, version), (str(data.get("title") or doc), ""))
    names = {"title": str(data.get("title") or title_of or doc), "version": version, "document": doc}
    related: list[atom.Link] = []
    if event.type == "standards.version.published":
        title = w.gettext("%(title)s %(version)s published") % names
        parts = [f"<p>{_t(summary)}</p>" if summary else ""]
        previous = data.get("previous_version")
        said = [
            w.gettext("Version %(version)s of %(document)s supersedes version %(previous)s.")
            % {**names, "previous": previous}
            if previous
            else w.gettext("Version %(version)s of %(document)s is its first published version.") % names
        ]
        if data.get("effective_from"):
            said.append(w.gettext("In effect from %(date)s.") % {"date": _date(data["effective_from"], w)})
        parts.append(f"<p>{_t(' '.join(said))}</p>")
        if data.get("reaffirmation_required"):
            reaffirm = w.gettext(
                "A new major version: schools that state alignment with an earlier major version "
                "are asked to re-affirm their statement."
            )
            parts.append(f"<p>{_t(reaffirm)}</p>")
        parts.append(_changes_html(data.get("changes") or {}, w))
        version_link = _anchor(links.get("version"), w.gettext("The version"))
        diff_link = _anchor(links.get("diff"), w.gettext("The diff"))
        parts.append(f"<p>{version_link} · {diff_link}</p>" if diff_link else f"<p>{version_link}</p>")
        if links.get("diff"):
            related.append(atom.Link("related", links["diff"], JSON, w.gettext("Clause-level diff")))
    elif event.type == "standards.version.withdrawn":
        current = data.get("current_version")
        title = w.gettext("%(title)s %(version)s withdrawn") % names
        said = [w.gettext("Version %(version)s of %(document)s was withdrawn.") % names]
        said.append(
            w.gettext("The current version is %(current)s.") % {"current": current}
            if current
            else w.gettext("No version is current now.")
        )
        parts = [f"<p>{_t(' '.join(said))}</p>"]
        if links.get("current"):
            related.append(atom.Link("related", links["current"], HTML, w.gettext("The current version")))
    elif event.type == "standards.translation.published":
        language = w.language_name(str(data.get("language") or ""))
        title = w.gettext("%(title)s %(version)s: %(language)s translation published") % {
            **names,
            "language": language,
        }
        line = w.gettext("The %(language)s translation of version %(version)s was published.")
        parts = [f"<p>{_t(line % {'language': language, 'version': version})}</p>"]
    else:  # standards.review.opened / closed
        opened = event.type.endswith(".opened")
        title = w.gettext(REVIEW_OPENED if opened else REVIEW_CLOSED) % names
        parts = [f"<p>{_t(data.get('summary'))}</p>" if data.get("summary") else ""]
        if opened and data.get("closes_at"):
            until = w.gettext("Comments are open until %(date)s.") % {"date": _date(data["closes_at"], w)}
            parts.append(f"<p>{_t(until)}</p>")
        if links.get("review"):
            related.append(atom.Link("related", links["review"], JSON, w.gettext("The review")))
    entry_links = [atom.Link("alternate", links["version"], HTML)] if links.get("version") else []
    return atom.Entry(
        id=atom.tag_uri(base_url, f"events/{event.id}"),
        title=title,
        updated=event.timestamp,
        content_html="".join(parts),
        links=[*entry_links, *related],
        categories=[_category(event, base_url)],
    )


def _status_line(status: str | None, version: str | None, w: Words) -> str:
    """``States alignment with IMI Training Standards 2.0 (status aligned)`` in ``w``'s words."""
    phrase = wording.status_phrase(wording.state_of(status or "none", listed=True), version=version, words=w)
    return w.gettext("%(phrase)s (status %(status)s)") % {
        "phrase": phrase,
        "status": wording.status_name(status, w),
    }


def school_entry(event: Event, *, base_url: str, words: Words) -> atom.Entry:
    """The entry of a listing, a delisting, a move to another country or an alignment change,
    our words in ``words``' language."""
    w = words
    data: dict[str, Any] = dict(event.data or {})
    school_id = str(data.get("school_id") or data.get("id") or "")
    name = str(data.get("name") or school_id)
    place = ", ".join(str(p) for p in (data.get("city"), data.get("country")) if p)
    alignment = data.get("alignment") or {}
    said = {"name": name, "place": place}
    if event.type == "school.listed":
        title = w.gettext("%(name)s listed") % said
        line = _status_line(alignment.get("status"), alignment.get("version"), w)
        added = w.gettext("%(name)s (%(place)s) was added to the public registry.") % said
        parts = [f"<p>{_t(added)}</p><p>{_t(line)}</p>"]
    elif event.type == "school.updated":  # only moves are in the feed (SCHOOL_MOVES)
        moved = {**said, "previous": event.previous_country or "", "country": data.get("country") or ""}
        title = w.gettext("%(name)s moved from %(previous)s to %(country)s") % moved
        line = _status_line(alignment.get("status"), alignment.get("version"), w)
        parts = [f"<p>{_t(w.gettext('%(name)s (%(place)s) moved from %(previous)s.') % moved)}</p>"]
        parts.append(f"<p>{_t(line)}</p>")
    elif event.type == "school.delisted":
        title = w.gettext("%(name)s delisted") % said
        parts = [f"<p>{_t(w.gettext('%(name)s (%(place)s) left the public registry.') % said)}</p>"]
    else:  # school.alignment.changed
        line = _status_line(data.get("status"), data.get("aligned_version"), w)
        title = f"{name}: {line}"
        previous = wording.status_name(data.get("previous_status"), w)
        changed = w.gettext("%(name)s (%(place)s): %(line)s, was %(previous)s.")
        parts = [f"<p>{_t(changed % {**said, 'line': line, 'previous': previous})}</p>"]
        if data.get("reaffirmation_due_by"):
            due = w.gettext("Re-affirmation due by %(date)s.") % {
                "date": _date(data["reaffirmation_due_by"], w)
            }
            parts.append(f"<p>{_t(due)}</p>")
    url = school_url(base_url, school_id)
    parts.append(f"<p>{_anchor(url + '/affiliation', w.gettext('Check it now'))}</p>")
    return atom.Entry(
        id=atom.tag_uri(base_url, f"events/{event.id}"),
        title=title,
        updated=event.timestamp,
        content_html="".join(parts),
        links=[
            atom.Link("alternate", url + "/affiliation", HTML, w.gettext("Verification page")),
            atom.Link("related", url, JSON, w.gettext("The school")),
        ],
        categories=[_category(event, base_url)],
    )
