"""Atom feeds (issue 11, point 1) through HTTP on SQLite and PostgreSQL: every document read by
feedparser and validated against RFC 4287's RELAX NG schema."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import assert_problem
from tests.feeds.conftest import ATOM, read_feed
from tests.helpers import SLUG

STANDARDS = "/v1/feeds/standards.atom"
SCHOOLS = "/v1/feeds/schools.atom"
FORBIDDEN = re.compile(r"certif|accredit|zertifi|akkredit|gecertific|geaccredit|acredit", re.I)


def _translation(version: str, prefix: str) -> dict[str, Any]:
    return {
        "title": f"{prefix} Training Standards {version}",
        "sections": [
            {"key": "A", "title": f"{prefix} Practice", "clauses": [{"key": "A1", "text": f"{prefix}."}]}
        ],
    }


def _next(document: Any) -> str | None:
    link = document.find(f"{ATOM}link[@rel='next']")
    return None if link is None else str(link.get("href")).removeprefix("http://testserver")


def test_standards_feed_has_an_entry_per_publish_withdrawal_and_translation(
    client: TestClient, publish: Callable[[str], dict[str, Any]], editor: dict[str, str]
) -> None:
    empty, _ = read_feed(client.get(STANDARDS).content)
    assert empty.entries == [] and empty.feed.id == "http://testserver/v1/feeds/standards.atom"
    publish("1.0")
    publish("2.0")
    r = client.put(
        f"/v1/standards/{SLUG}/versions/2.0/translations/de", json=_translation("2.0", "DE"), headers=editor
    )
    assert r.status_code == 201, r.text
    publish("2.1")
    r = client.post(f"/v1/standards/{SLUG}/versions/2.1/withdraw", headers=editor)
    assert r.status_code == 200, r.text

    r = client.get(STANDARDS)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/atom+xml; charset=utf-8"
    assert r.headers["cache-control"] == "public, max-age=60"
    assert re.fullmatch(r'"[0-9a-f]{32}"', r.headers["etag"])
    feed, document = read_feed(r.content)
    assert [e.title for e in feed.entries] == [
        "Training Standards 2.1 2.1 withdrawn",
        "Training Standards 2.1 2.1 published",
        "Training Standards 2.0 2.0: German (de) translation published",
        "Training Standards 2.0 2.0 published",
        "Training Standards 1.0 1.0 published",
    ]
    events = client.get("/v1/events", params={"type": "standards.version.published"}).json()["data"]
    first = feed.entries[-1]
    assert first.id == f"tag:testserver,2026:events/{events[0]['id']}"
    assert first.updated == events[0]["timestamp"].replace("+00:00", "Z")
    major = feed.entries[-2]
    links = {link.rel: link for link in major.links}
    assert links["alternate"].href == f"http://testserver/v1/standards/{SLUG}/versions/2.0"
    assert links["alternate"].type == "text/html"
    assert links["related"].href == f"http://testserver/v1/standards/{SLUG}/diff?from=1.0&to=2.0"
    html = major.content[0].value
    assert "supersedes version 1.0" in html and "asked to re-affirm" in html
    assert "Reworded: A1" in html and "Added: none" in html  # the clause-level change summary
    assert major.tags[0].term == "standards.version.published"
    withdrawn = feed.entries[0].content[0].value
    assert "The current version is 2.0." in withdrawn
    # The version link serves HTML to a browser that follows it.
    page = client.get(links["alternate"].href, headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    # Entries keep their ids when newer ones arrive.
    publish("3.0")
    again, _ = read_feed(client.get(STANDARDS).content)
    assert [e.id for e in again.entries[1:]] == [e.id for e in feed.entries]
    assert not FORBIDDEN.search(client.get(STANDARDS).text)
    # Filters: by document (unknown: 422), by language (translations only).
    assert len(read_feed(client.get(STANDARDS, params={"document": SLUG}).content)[0].entries) == 6
    only_fr, _ = read_feed(client.get(STANDARDS, params={"language": "fr"}).content)
    assert [e.title for e in only_fr.entries if "translation" in e.title] == []
    only_de, _ = read_feed(client.get(STANDARDS, params={"language": "DE"}).content)
    assert [e.title for e in only_de.entries if "translation" in e.title] == [feed.entries[2].title]
    assert only_de.feed.id == "http://testserver/v1/feeds/standards.atom?language=de"
    assert_problem(client.get(STANDARDS, params={"document": "no-such-document"}), 422)
    assert_problem(client.get(STANDARDS, params={"language": "xx-!!"}), 422)


def test_schools_feed_lists_listings_delistings_alignment_and_filters(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    publish: Callable[[str], dict[str, Any]],
    state: Callable[..., Any],
    steward: dict[str, str],
) -> None:
    publish("1.0")
    dutch = make_school(name="Stille Zee", country="NL", city="Den Haag")
    german = make_school(name="Isar Achtsamkeit", country="DE", city="München")
    assert state(german["id"], "1.0").status_code == 200
    r = client.post(f"/v1/schools/{dutch['id']}/delist", headers=steward)
    assert r.status_code == 200, r.text

    feed, _ = read_feed(client.get(SCHOOLS).content)
    assert [e.title for e in feed.entries] == [
        "Stille Zee delisted",
        "Isar Achtsamkeit: States alignment with IMI Training Standards 1.0 (status aligned)",
        "Isar Achtsamkeit listed",
        "Stille Zee listed",
    ]
    aligned = feed.entries[1]
    assert {link.rel: link.href for link in aligned.links} == {
        "alternate": f"http://testserver/v1/schools/{german['id']}/affiliation",
        "related": f"http://testserver/v1/schools/{german['id']}",
    }
    assert "Isar Achtsamkeit (DE): States alignment" in aligned.content[0].value

    germany, _ = read_feed(client.get(SCHOOLS, params={"country": "de"}).content)
    assert [e.title for e in germany.entries] == [e.title for e in feed.entries[1:3]]
    assert germany.feed.links[0].href == "http://testserver/v1/feeds/schools.atom?country=DE"
    statuses, _ = read_feed(client.get(SCHOOLS, params=[("status", "aligned"), ("country", "DE")]).content)
    assert [e.title for e in statuses.entries] == [feed.entries[1].title]
    both, _ = read_feed(client.get(SCHOOLS, params=[("country", "NL"), ("country", "DE")]).content)
    assert len(both.entries) == 4
    # A filter that matches nothing is a valid, empty feed.
    nothing = client.get(SCHOOLS, params={"country": "AQ"})
    parsed, document = read_feed(nothing.content)
    assert parsed.entries == [] and document.find(f"{ATOM}updated") is not None
    for params in ({"country": "XX"}, {"country": "Germany"}, {"status": "certified"}, {"before": "0"}):
        body = assert_problem(client.get(SCHOOLS, params=params), 422)
        assert "Traceback" not in body["detail"]
    assert not FORBIDDEN.search(client.get(SCHOOLS).text)


def test_country_and_status_feeds_see_a_school_leave(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    publish: Callable[[str], dict[str, Any]],
    state: Callable[..., Any],
    steward: dict[str, str],
) -> None:
    """A school that moves from DE to AT is an entry of both countries' feeds (the DE reader
    learns it left); an edit that keeps the country is not in the feed. A school suspended
    after stating alignment is an entry of ``?status=aligned`` (its reader learns it is no
    longer aligned) as well as of ``?status=suspended``."""
    publish("1.0")
    school = make_school(name="Isar Achtsamkeit", country="DE", city="München")
    assert state(school["id"], "1.0").status_code == 200
    url = f"/v1/schools/{school['id']}"
    r = client.patch(
        url, json={"country": "AT"}, headers={**steward, "If-Match": client.get(url).headers["ETag"]}
    )
    assert r.status_code == 200, r.text
    r = client.patch(url, json={"city": "Wien"}, headers={**steward, "If-Match": r.headers["ETag"]})
    assert r.status_code == 200, r.text
    move = "Isar Achtsamkeit moved from DE to AT"
    germany, _ = read_feed(client.get(SCHOOLS, params={"country": "DE"}).content)
    austria, _ = read_feed(client.get(SCHOOLS, params={"country": "AT"}).content)
    assert [e.title for e in germany.entries] == [
        move,
        "Isar Achtsamkeit: States alignment with IMI Training Standards 1.0 (status aligned)",
        "Isar Achtsamkeit listed",
    ]
    assert [e.title for e in austria.entries] == [move]
    assert "Isar Achtsamkeit (München, AT) moved from DE." in austria.entries[0].content[0].value
    assert austria.entries[0].tags[0].term == "school.updated"
    german, _ = read_feed(client.get(SCHOOLS, params={"country": "AT", "lang": "de"}).content)
    assert german.entries[0].title == "Isar Achtsamkeit von DE nach AT umgezogen"

    r = client.post(f"{url}/alignment/suspend", json={"reason": "evidence under review"}, headers=steward)
    assert r.status_code == 200, r.text
    suspended = "Isar Achtsamkeit: No current alignment statement (status suspended)"
    aligned, _ = read_feed(client.get(SCHOOLS, params={"status": "aligned"}).content)
    assert [e.title for e in aligned.entries][:2] == [suspended, move]
    only, _ = read_feed(client.get(SCHOOLS, params={"status": "suspended"}).content)
    assert [e.title for e in only.entries] == [suspended]
    assert not FORBIDDEN.search(client.get(SCHOOLS, params={"lang": "de"}).text)


def test_feeds_page_by_fifty_with_rfc5005_links(
    client: TestClient, make_school: Callable[..., dict[str, Any]]
) -> None:
    made = [make_school(name=f"Paged School {n:02d}", country="NZ")["id"] for n in range(57)]
    first = client.get(SCHOOLS)
    feed, document = read_feed(first.content)
    assert len(feed.entries) == 50
    assert feed.entries[0].title == "Paged School 56 listed"
    assert document.find(f"{ATOM}link[@rel='first']").get("href") == "http://testserver/v1/feeds/schools.atom"
    following = _next(document)
    assert following is not None and "before=" in following
    second_feed, second = read_feed(client.get(following).content)
    assert [e.title for e in second_feed.entries] == [
        f"Paged School {n:02d} listed" for n in range(6, -1, -1)
    ]
    assert _next(second) is None
    # One logical feed: the pages share the feed id and hold every entry once.
    assert second_feed.feed.id == feed.feed.id
    ids = [e.id for e in feed.entries + second_feed.entries]
    assert len(set(ids)) == len(made) == 57


def test_feeds_are_cached_public_reads(
    client: TestClient, make_school: Callable[..., dict[str, Any]]
) -> None:
    make_school(name="Cached Feed School", country="JP")
    r = client.get(SCHOOLS)
    etag = r.headers["etag"]
    assert client.get(SCHOOLS).headers["etag"] == etag
    not_modified = client.get(SCHOOLS, headers={"If-None-Match": f'W/{etag}, "other"'})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified.headers["cache-control"] == "public, max-age=60"
    since = client.get(SCHOOLS, headers={"If-Modified-Since": r.headers["last-modified"]})
    assert since.status_code == 304
    head = client.head(SCHOOLS)
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == etag
    # A new listing changes the feed at once (the school domain moved).
    make_school(name="Second Feed School", country="JP")
    changed = client.get(SCHOOLS, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert read_feed(changed.content)[0].entries[0].title == "Second Feed School listed"
    # The standards feed does not depend on schools.
    assert client.get(STANDARDS).status_code == 200


def test_hostile_school_names_stay_text(
    client: TestClient, make_school: Callable[..., dict[str, Any]]
) -> None:
    name = 'Zen <script>alert("x")</script> ]]> & <![CDATA[ Schule'
    school = make_school(name=name, country="CH", city="<b>Bern</b>")
    r = client.get(SCHOOLS)
    feed, document = read_feed(r.content)
    assert feed.entries[0].title == f"{name} listed"
    assert document.find(f"{ATOM}entry/{ATOM}title").text == f"{name} listed"
    assert b"<script" not in r.content and b"]]>" not in r.content and b"<b>" not in r.content
    # The HTML content is the name escaped: a feed reader shows it as text.
    content = document.find(f"{ATOM}entry/{ATOM}content").text
    assert "&lt;script&gt;" in content and "<script" not in content and "&lt;b&gt;Bern&lt;/b&gt;" in content
    assert school["id"] in content


def test_the_atom_schema_check_catches_broken_feeds() -> None:
    """The validator the feed tests rely on refuses what RFC 4287 refuses."""
    from lxml import etree

    from tests.feeds.conftest import atom_schema

    good = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><id>tag:x,2026:f</id><title>t</title>'
        b"<updated>2026-12-06T10:00:00Z</updated><author><name>a</name></author></feed>"
    )
    assert atom_schema().validate(etree.fromstring(good))
    for broken in (
        good.replace(b"<id>tag:x,2026:f</id>", b""),  # no atom:id
        good.replace(b"2026-12-06T10:00:00Z", b"yesterday"),  # not a date-time
        good.replace(b"</feed>", b"<entry><title>e</title></entry></feed>"),  # entry without id/updated
    ):
        assert not atom_schema().validate(etree.fromstring(broken))


def test_a_feed_whose_two_newest_entries_share_a_second_sends_no_last_modified(
    client: TestClient, make_school: Callable[..., dict[str, Any]]
) -> None:
    """HTTP dates have whole seconds: a reader holding the page with only the older of two
    entries of one second would get 304 for the page with both. Such a page is validated by
    its ETag alone; otherwise Last-Modified is the newest entry's second."""
    import time
    from email.utils import parsedate_to_datetime

    def newest_seconds() -> list[str]:
        data = client.get("/v1/events", params={"country": "DE"}).json()["data"]
        return [e["timestamp"][:19] for e in data][-2:]

    # Two entries in one second (retried in the rare case a second boundary fell between them).
    for _ in range(5):
        time.sleep(1 - time.time() % 1)  # at the start of a second
        make_school(name="Erste Schule", country="DE")
        make_school(name="Zweite Schule", country="DE")
        first, second = newest_seconds()
        if first == second:
            break
    assert first == second
    shared = client.get("/v1/feeds/schools.atom", params={"country": "DE"})
    assert shared.status_code == 200 and "last-modified" not in shared.headers, shared.headers
    # A newer entry in a second of its own: the page gets that second as its Last-Modified.
    time.sleep(1 - time.time() % 1)
    make_school(name="Dritte Schule", country="DE")
    older, newest = newest_seconds()
    assert older != newest
    alone = client.get("/v1/feeds/schools.atom", params={"country": "DE"})
    modified = parsedate_to_datetime(alone.headers["last-modified"])
    assert modified.strftime("%Y-%m-%dT%H:%M:%S") == newest
    assert alone.headers["etag"] != shared.headers["etag"]
