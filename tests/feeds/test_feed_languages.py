"""The feeds in the reader's language (issue 16 for issue 11's feeds): ``?lang=`` wins and stays
in the paging links, else ``Accept-Language`` among the catalogue's languages; ``xml:lang``,
``Content-Language``, ``Vary: Accept-Language`` when the header chose; one cache entry per
negotiated language; a German feed carries no English word of ours; every document stays
valid Atom (RFC 4287's schema, feedparser). Through HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.web.cache import PublicCache
from tests.conftest import assert_problem
from tests.feeds.conftest import ATOM, read_feed
from tests.helpers import HOSTILE_ACCEPT_LANGUAGE, SLUG, many_spellings, vary_of, visible_text, words_in

STANDARDS = "/v1/feeds/standards.atom"
SCHOOLS = "/v1/feeds/schools.atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
#: Proper names (IMI Training Standards, the IMI registry) and "Version", German too.
SHARED = {"imi", "training", "standards", "version"}


@pytest.fixture
def history(
    client: TestClient,
    publish: Callable[[str], dict[str, Any]],
    editor: dict[str, str],
    make_school: Callable[..., dict[str, Any]],
    state: Callable[..., Any],
    steward: dict[str, str],
) -> dict[str, Any]:
    """Every kind of entry: publishes (a major one), a translation, a withdrawal, a review opened
    and closed; schools listed, aligned, due to re-affirm, delisted, moved to another country."""
    publish("1.0")
    dutch = make_school(name="Stille Zee", country="NL", city="Den Haag")
    german = make_school(name="Isar Achtsamkeit", country="DE", city="München")
    assert state(german["id"], "1.0").status_code == 200
    publish("2.0")  # a major version: the school must re-affirm
    body = {"title": "Ausbildungsstandards 2.0", "sections": [{"key": "A", "title": "Praxis",
            "clauses": [{"key": "A1", "text": "Tägliche Praxis."}]}]}  # fmt: skip
    versions = f"/v1/standards/{SLUG}/versions"
    assert client.put(f"{versions}/2.0/translations/de", json=body, headers=editor).status_code == 201
    publish("2.1")
    assert client.post(f"{versions}/2.1/withdraw", headers=editor).status_code == 200
    assert (
        client.post(versions, json={"version": "2.2", "based_on": "2.0"}, headers=editor).status_code == 201
    )
    closes = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
    review = {"closes_at": closes, "summary": "Tell us what you think."}
    assert client.post(f"{versions}/2.2/review", json=review, headers=editor).status_code == 201
    assert client.post(f"{versions}/2.2/review/close", headers=editor).status_code == 200
    assert client.post(f"/v1/schools/{dutch['id']}/delist", headers=steward).status_code == 200
    swiss = make_school(name="Rhein Stille", country="CH", city="Basel")
    url = f"/v1/schools/{swiss['id']}"
    moved = client.patch(
        url, json={"country": "LI"}, headers={**steward, "If-Match": client.get(url).headers["ETag"]}
    )
    assert moved.status_code == 200, moved.text
    return {"schools": [dutch, german, swiss, moved.json()], "translation": body, "review": review}


def _content_words(client: TestClient, history: dict[str, Any]) -> set[str]:
    """Words that editors and schools wrote, and codes: not ours."""
    texts = [SLUG, "de", history["translation"]["title"], history["review"]["summary"], "A1 1.0 2.0 2.1 2.2"]
    for version in ("1.0", "2.0", "2.1", "2.2"):
        texts.append(f"Training Standards {version}")
    for school in history["schools"]:
        texts += [school["name"], school["city"], school["country"], school["id"]]
    return words_in(*texts)


def _reader_text(body: bytes) -> str:
    """Everything a feed reader shows of our words: titles, subtitles, entry titles, the HTML
    content as text, link titles."""
    parsed, document = read_feed(body)
    texts = [parsed.feed.title, parsed.feed.subtitle]
    for entry in parsed.entries:
        texts += [entry.title, visible_text(entry.content[0].value)]
        texts += [link.get("title", "") for link in entry.links]
    return "\n".join(texts)


def test_feeds_negotiate_accept_language_and_lang_wins(client: TestClient, history: dict[str, Any]) -> None:
    for feed in (STANDARDS, SCHOOLS):
        for header, served in (
            ("de", "de"),
            ("de-CH, en;q=0.5", "de"),
            ("ja, fr;q=0.8", "fr"),
            ("nl-BE", "nl"),
            ("es-419", "es"),
            ("pt-BR", "en"),  # no catalogue: English, 200
            ("de;q=0, en", "en"),
            ("", "en"),
        ):
            r = client.get(feed, headers={"Accept-Language": header})
            assert r.status_code == 200, (feed, header)
            assert r.headers["content-language"] == served, (feed, header)
            assert vary_of(r) == ["accept-encoding", "accept-language"]
            _, document = read_feed(r.content)  # valid Atom in every language
            assert document.get(XML_LANG) == served
            # paging links do not pin a language the header chose
            assert "lang=" not in document.find(f"{ATOM}link[@rel='first']").get("href")
        # ?lang= wins, the answer does not vary with the header, and the links keep it
        r = client.get(feed, params={"lang": "de-AT", "country": "de"}, headers={"Accept-Language": "fr"})
        assert r.headers["content-language"] == "de" and vary_of(r) == ["accept-encoding"]
        parsed, document = read_feed(r.content)
        assert document.get(XML_LANG) == "de"
        links = {link.get("rel"): link.get("href") for link in document.findall(f"{ATOM}link")}
        assert links["self"].endswith(f"{feed}?country=DE&lang=de")
        assert links["first"].endswith(f"{feed}?country=DE&lang=de")
        assert parsed.feed.id == f"http://testserver{feed}?country=DE"  # the same feed in any language
        english = read_feed(client.get(feed, params={"country": "DE"}).content)[0]
        assert [e.id for e in parsed.entries] == [e.id for e in english.entries]  # the same entries
        body = assert_problem(client.get(feed, params={"lang": "de_DE"}), 422)
        assert body["parameter"] == "lang" and body["hint"] == "de-DE"


def test_a_german_feed_carries_no_english_word_of_ours(client: TestClient, history: dict[str, Any]) -> None:
    content = _content_words(client, history)
    ours_in_english = set()
    for feed in (STANDARDS, SCHOOLS):
        ours_in_english |= words_in(_reader_text(client.get(feed).content)) - content
    # what we write around the events: titles, sentences, link titles, dates, names of states
    expected = {"published", "withdrawn", "translation", "review", "opened", "closed", "listed",
                "delisted", "reworded", "supersedes", "registry", "check", "german", "status", "aligned",
                "due", "moved"}  # fmt: skip
    assert expected <= ours_in_english
    for feed in (STANDARDS, SCHOOLS):
        german = _reader_text(client.get(feed, headers={"Accept-Language": "de"}).content)
        ours = words_in(german) - content
        assert not (ours & ours_in_english) - SHARED, (feed, sorted((ours & ours_in_english) - SHARED))
    standards = _reader_text(client.get(STANDARDS, params={"lang": "de"}).content)
    for said in (
        "Training Standards 2.0 2.0 veröffentlicht",
        "Übersetzung veröffentlicht – Deutsch (de)",
        "löst Version 1.0 ab",
        "Umformuliert: A1",
        "Hinzugefügt: keine",
        "Begutachtung eröffnet",
        "Begutachtung abgeschlossen",
        "Kommentare sind bis zum",
        "Aktuell ist Version 2.0.",
    ):
        assert said in standards, said
    schools = _reader_text(client.get(SCHOOLS, params={"lang": "de"}).content)
    for said in (
        "Stille Zee aus dem Verzeichnis genommen",
        "Isar Achtsamkeit ins Verzeichnis aufgenommen",
        "Erklärt Übereinstimmung mit den IMI Training Standards 1.0 (Stand: Übereinstimmung erklärt)",
        "Erneute Bestätigung fällig (Stand: erneute Bestätigung fällig)",
        "Jetzt prüfen",
        "Prüfseite",
    ):
        assert said in schools, said
    # dates as the locale writes them (the re-affirmation date of the alignment change)
    assert "Erneute Bestätigung fällig bis" in schools and any(
        month in schools for month in ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli",
                                       "August", "September", "Oktober", "November", "Dezember")
    )  # fmt: skip


def test_every_spelling_of_a_language_is_one_cache_entry(
    client: TestClient, app: Any, history: dict[str, Any]
) -> None:
    cache: PublicCache = app.state.public_cache
    first = client.get(SCHOOLS, headers={"Accept-Language": "de"})
    before = len(cache)
    for spelling in many_spellings("de"):
        r = client.get(SCHOOLS, headers={"Accept-Language": spelling})
        assert r.headers["etag"] == first.headers["etag"] and r.content == first.content
    assert len(cache) == before
    assert cache.stored(("feed", "schools", (), None, "de", False)) is not None
    explicit = client.get(SCHOOLS, params={"lang": "de"})  # stored apart: its Vary and links differ
    assert explicit.headers["etag"] != first.headers["etag"]
    assert len(cache) == before + 1
    r = client.get(SCHOOLS, headers={"Accept-Language": "de-AT", "If-None-Match": first.headers["etag"]})
    assert r.status_code == 304


@pytest.mark.parametrize("header", HOSTILE_ACCEPT_LANGUAGE)
def test_hostile_accept_language_is_harmless(
    client: TestClient, history: dict[str, Any], header: str
) -> None:
    raw: Any = header.encode("utf-8")
    for feed in (STANDARDS, SCHOOLS):
        r = client.get(feed, headers={"Accept-Language": raw})
        assert r.status_code == 200, header[:30]
        assert r.headers["content-language"] == "en"
        read_feed(r.content)
