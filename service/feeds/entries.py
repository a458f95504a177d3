"""What each event looks like as an Atom entry: a title, an HTML summary, links.

- standards feed: a published version (its summary, whether schools must re-affirm,
  the clause-level change summary, links to the version — HTML for a browser — and
  the diff), a withdrawal, a published translation, a review opened or closed;
- schools feed: a listing, a delisting, an alignment change (in the badge's words:
  the registry records what schools *state*).

Everything a user wrote (titles, summaries, school names) is escaped here; the
Atom writer escapes the whole fragment once more for ``type="html"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pycountry

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

HTML = "text/html"
JSON = "application/json"
CHANGE_KINDS = (("added", "Added"), ("removed", "Removed"), ("modified", "Reworded"), ("moved", "Moved"))

#: (document slug, version) -> (version title, version summary), read for the entries of a page.
Versions = Mapping[tuple[str, str], tuple[str, str]]


def _t(value: Any) -> str:
    return markup.text("" if value is None else value)


def _date(value: Any) -> str:
    return str(value)[:10] if value else ""


def _language_name(tag: str) -> str:
    primary = tag.split("-", 1)[0]
    found = pycountry.languages.get(alpha_2=primary) if len(primary) == 2 else None
    return f"{found.name} ({tag})" if found is not None else tag


def _keys(items: Any) -> list[str]:
    out: list[str] = []
    for item in items or []:
        key = item if isinstance(item, str) else (item or {}).get("key")
        if key:
            out.append(str(key))
    return out


def _changes_html(changes: Mapping[str, Any]) -> str:
    rows = []
    for member, label in CHANGE_KINDS:
        keys = _keys(changes.get(member))
        rows.append(f"<li>{label}: {_t(', '.join(keys)) if keys else 'none'}</li>")
    return "<h3>Clause-level changes</h3><ul>" + "".join(rows) + "</ul>"


def _anchor(href: str | None, text: str) -> str:
    return f'<a href="{markup.attr(href)}">{_t(text)}</a>' if href else ""


def _category(event: Event, base_url: str) -> tuple[str, str]:
    return (event.type, f"{base_url}/v1/webhooks/event-types")


def standards_entry(event: Event, *, base_url: str, versions: Versions) -> atom.Entry:
    """The entry of a ``standards.*`` event."""
    data: dict[str, Any] = dict(event.data or {})
    doc, version = str(data.get("document") or ""), str(data.get("version") or "")
    links = data.get("links") or {}
    title_of, summary = versions.get((doc, version), (str(data.get("title") or doc), ""))
    name = str(data.get("title") or title_of or doc)
    related: list[atom.Link] = []
    if event.type == "standards.version.published":
        title = f"{name} {version} published"
        parts = [f"<p>{_t(summary)}</p>" if summary else ""]
        previous = data.get("previous_version")
        parts.append(
            f"<p>Version {_t(version)} of {_t(doc)}"
            + (f" supersedes version {_t(previous)}." if previous else " is its first published version.")
            + (
                f" In effect from {_t(_date(data.get('effective_from')))}."
                if data.get("effective_from")
                else ""
            )
            + "</p>"
        )
        if data.get("reaffirmation_required"):
            parts.append(
                "<p>A new major version: schools that state alignment with an earlier major version "
                "are asked to re-affirm their statement.</p>"
            )
        parts.append(_changes_html(data.get("changes") or {}))
        version_link, diff_link = (
            _anchor(links.get("version"), "The version"),
            _anchor(links.get("diff"), "The diff"),
        )
        parts.append(f"<p>{version_link} · {diff_link}</p>" if diff_link else f"<p>{version_link}</p>")
        if links.get("diff"):
            related.append(atom.Link("related", links["diff"], JSON, "Clause-level diff"))
    elif event.type == "standards.version.withdrawn":
        current = data.get("current_version")
        title = f"{name} {version} withdrawn"
        parts = [
            f"<p>Version {_t(version)} of {_t(doc)} was withdrawn."
            + (f" The current version is {_t(current)}." if current else " No version is current now.")
            + "</p>"
        ]
        if links.get("current"):
            related.append(atom.Link("related", links["current"], HTML, "The current version"))
    elif event.type == "standards.translation.published":
        language = str(data.get("language") or "")
        title = f"{name} {version}: {_language_name(language)} translation published"
        parts = [
            f"<p>The {_t(_language_name(language))} translation of version {_t(version)} was published.</p>"
        ]
    else:  # standards.review.opened / closed
        opened = event.type.endswith(".opened")
        title = f"{name} {version}: review {'opened' if opened else 'closed'}"
        parts = [f"<p>{_t(data.get('summary'))}</p>" if data.get("summary") else ""]
        if opened and data.get("closes_at"):
            parts.append(f"<p>Comments are open until {_t(_date(data.get('closes_at')))}.</p>")
        if links.get("review"):
            related.append(atom.Link("related", links["review"], JSON, "The review"))
    entry_links = [atom.Link("alternate", links["version"], HTML)] if links.get("version") else []
    return atom.Entry(
        id=atom.tag_uri(base_url, f"events/{event.id}"),
        title=title,
        updated=event.timestamp,
        content_html="".join(parts),
        links=[*entry_links, *related],
        categories=[_category(event, base_url)],
    )


def _status_line(status: str | None, version: str | None) -> str:
    state = wording.state_of(status or "none", listed=True)
    phrase = wording.status_phrase(state, version=version, lang=wording.DEFAULT).strip()
    return f"{phrase} (status {status or 'none'})"


def school_entry(event: Event, *, base_url: str) -> atom.Entry:
    """The entry of a listing, a delisting or an alignment change."""
    data: dict[str, Any] = dict(event.data or {})
    school_id = str(data.get("school_id") or data.get("id") or "")
    name = str(data.get("name") or school_id)
    place = ", ".join(str(p) for p in (data.get("city"), data.get("country")) if p)
    alignment = data.get("alignment") or {}
    if event.type == "school.listed":
        title = f"{name} listed"
        line = _status_line(alignment.get("status"), alignment.get("version"))
        parts = [f"<p>{_t(name)} ({_t(place)}) was added to the public registry.</p><p>{_t(line)}</p>"]
    elif event.type == "school.delisted":
        title = f"{name} delisted"
        parts = [f"<p>{_t(name)} ({_t(place)}) left the public registry.</p>"]
    else:  # school.alignment.changed
        line = _status_line(data.get("status"), data.get("aligned_version"))
        title = f"{name}: {line}"
        parts = [
            f"<p>{_t(name)} ({_t(place)}): {_t(line)}, was {_t(data.get('previous_status') or 'none')}.</p>"
        ]
        if data.get("reaffirmation_due_by"):
            parts.append(f"<p>Re-affirmation due by {_t(_date(data['reaffirmation_due_by']))}.</p>")
    url = school_url(base_url, school_id)
    parts.append(f"<p>{_anchor(url + '/affiliation', 'Check it now')}</p>")
    return atom.Entry(
        id=atom.tag_uri(base_url, f"events/{event.id}"),
        title=title,
        updated=event.timestamp,
        content_html="".join(parts),
        links=[
            atom.Link("alternate", url + "/affiliation", HTML, "Verification page"),
            atom.Link("related", url, JSON, "The school"),
        ],
        categories=[_category(event, base_url)],
    )
