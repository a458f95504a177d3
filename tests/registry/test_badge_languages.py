"""The badge and the verification page negotiate their language (issue 16 for issue 11's reads):
``?lang=`` wins, else ``Accept-Language`` among the catalogue's languages (English when none
fits); ``Content-Language`` always, ``Vary: Accept-Language`` when the header chose; one cache
entry per negotiated language; and a German badge or page carries no English word of ours.
Through HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree

import pytest
from fastapi.testclient import TestClient

from service.core import messages
from service.web.cache import PublicCache
from tests.conftest import assert_problem
from tests.helpers import HOSTILE_ACCEPT_LANGUAGE, many_spellings, vary_of, visible_text, words_in

SVG = "{http://www.w3.org/2000/svg}"
HTML = "text/html"
#: Names and paths that are the same in every language: the network, the document and the
#: service are proper names (IMI Network, IMI Training Standards, IMI Standards API); the
#: credential's help names an HTTP method and paths; "Website" and "Version" are German too.
SHARED = {
    "imi", "network", "training", "standards", "api", "jws", "post", "v", "credentials", "verify",
    "well", "known", "jwks", "json", "utc", "website", "version",
}  # fmt: skip


@pytest.fixture
def due(
    make_school: Callable[..., dict[str, Any]],
    publish: Callable[[str], dict[str, Any]],
    state: Callable[..., Any],
) -> dict[str, Any]:
    """A school that stated alignment with 1.0 and must re-affirm since 2.0 (a date on its page)."""
    publish("1.0")
    school = make_school(
        name="Isar Achtsamkeit", country="DE", city="München", website="https://isar.example"
    )
    assert state(school["id"], "1.0").status_code == 200
    publish("2.0")
    return school


def _texts(body: bytes) -> list[str]:
    return [t.text or "" for t in ElementTree.fromstring(body).iter(f"{SVG}text")]


def test_badge_and_page_negotiate_accept_language_and_lang_wins(
    client: TestClient, due: dict[str, Any]
) -> None:
    badge = f"/v1/schools/{due['id']}/badge.svg"
    page = f"/v1/schools/{due['id']}/affiliation"
    for header, served in (
        ("de", "de"),
        ("de-CH, en;q=0.5", "de"),  # RFC 4647 lookup
        ("ja, nl;q=0.8", "nl"),  # nothing in Japanese: the next range
        ("fr-BE", "fr"),
        ("es-419", "es"),
        ("en, de;q=0.9", "en"),
        ("pt-BR", "en"),  # no catalogue: English, 200
        ("de;q=0, en", "en"),  # q=0 is "not acceptable"
        ("*", "en"),
        ("", "en"),
    ):
        r = client.get(badge, headers={"Accept-Language": header})
        assert r.status_code == 200, (header, r.text)
        assert r.headers["content-language"] == served, header
        assert vary_of(r) == ["accept-encoding", "accept-language"], header
        assert ElementTree.fromstring(r.content).get("{http://www.w3.org/XML/1998/namespace}lang") == served
        r = client.get(page, headers={"Accept-Language": header, "Accept": HTML})
        assert r.status_code == 200, (header, r.text)
        assert r.headers["content-language"] == served, header
        assert vary_of(r) == ["accept", "accept-encoding", "accept-language"], header
        assert f'<html lang="{served}">' in r.text
    # ?lang= wins over the header, and then the answer does not vary with it
    for url, accept in ((badge, "image/svg+xml"), (page, HTML)):
        r = client.get(url, params={"lang": "en"}, headers={"Accept-Language": "de", "Accept": accept})
        assert r.headers["content-language"] == "en" and "accept-language" not in vary_of(r)
        r = client.get(url, params={"lang": "de-AT"}, headers={"Accept-Language": "en", "Accept": accept})
        assert r.headers["content-language"] == "de" and "accept-language" not in vary_of(r)
        body = assert_problem(client.get(url, params={"lang": "de_CH"}, headers={"Accept": accept}), 422)
        assert body["parameter"] == "lang" and body["hint"] == "de-CH"
    assert _texts(client.get(badge, headers={"Accept-Language": "nl"}).content)[1] == "Herbevestiging nodig"
    # The JSON answer has no words of ours: it does not change with the header.
    plain = client.get(page).json()
    assert client.get(page, headers={"Accept-Language": "de"}).json() == plain


def test_a_german_badge_and_page_carry_no_english_word_of_ours(
    client: TestClient, due: dict[str, Any]
) -> None:
    badge = f"/v1/schools/{due['id']}/badge.svg"
    page = f"/v1/schools/{due['id']}/affiliation"
    answer = client.get(page).json()
    content = words_in(
        due["name"], due["city"], due["country"], due["website"], due["id"], answer["credential"], "2.0 1.0"
    )
    english_badge = visible_text(client.get(badge).text)
    english_page = visible_text(client.get(page, headers={"Accept": HTML}).text)
    ours_in_english = words_in(english_badge, english_page) - content
    # what we write around the record: the badge's phrase, labels, the note, month names
    assert {
        "re",
        "affirmation",
        "due",
        "checked",
        "signed",
        "credential",
        "stated",
        "record",
    } <= ours_in_english
    german_badge = client.get(badge, headers={"Accept-Language": "de"})
    german_page = client.get(page, headers={"Accept-Language": "de-DE", "Accept": HTML})
    for response in (german_badge, german_page):
        ours = words_in(visible_text(response.text)) - content
        assert not (ours & ours_in_english) - SHARED, sorted((ours & ours_in_english) - SHARED)
    assert _texts(german_badge.content) == ["IMI Network", "Erneute Bestätigung fällig"]
    shown = visible_text(german_page.text)
    for words in (
        "Übereinstimmungserklärung",
        "Stand",
        "Erneute Bestätigung fällig bis",
        "Abgefragt",
        "Website",
    ):
        assert words in shown, words
    # dates as the locale writes them: the re-affirmation date, and "Checked" with its time in UTC
    due_by = answer["reaffirmation_due_by"]
    assert f'<time datetime="{due_by}">' in german_page.text
    assert messages.words("de").date(_instant(due_by)) in shown
    assert " um " in shown and " UTC" in shown
    english_due = messages.words("en").date(_instant(due_by))
    assert english_due in english_page and english_due not in shown


def _instant(value: str) -> Any:
    import datetime as dt

    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_every_spelling_of_a_language_is_one_cache_entry(
    client: TestClient, app: Any, due: dict[str, Any]
) -> None:
    cache: PublicCache = app.state.public_cache
    badge = f"/v1/schools/{due['id']}/badge.svg"
    page = f"/v1/schools/{due['id']}/affiliation"
    first_badge = client.get(badge, headers={"Accept-Language": "de"})
    first_page = client.get(page, headers={"Accept-Language": "de", "Accept": HTML})
    before = len(cache)
    for spelling in many_spellings("de"):
        r = client.get(badge, headers={"Accept-Language": spelling})
        assert r.content == first_badge.content and r.headers["etag"] == first_badge.headers["etag"]
        r = client.get(page, headers={"Accept-Language": spelling, "Accept": HTML})
        assert r.headers["etag"] == first_page.headers["etag"]
        assert r.headers["content-language"] == "de"
    assert len(cache) == before
    assert cache.stored(("badge", due["id"], "de", False)) is not None
    assert cache.stored(("affiliation-page", due["id"], "de", False)) is not None
    # English spellings share the entry of a request without the header
    for spelling in ("en", "en-GB, en;q=0.9", "ja, en;q=0.5", "*", "xx-YY"):
        client.get(badge, headers={"Accept-Language": spelling})
    client.get(badge)
    assert len(cache) == before + 1
    # a conditional request with a spelling of German is answered from the same entry
    r = client.get(badge, headers={"Accept-Language": "de-LI", "If-None-Match": first_badge.headers["etag"]})
    assert r.status_code == 304


@pytest.mark.parametrize("header", HOSTILE_ACCEPT_LANGUAGE)
def test_hostile_accept_language_is_harmless(client: TestClient, due: dict[str, Any], header: str) -> None:
    raw: Any = header.encode("utf-8")  # the bytes as they arrive on the wire
    badge = client.get(f"/v1/schools/{due['id']}/badge.svg", headers={"Accept-Language": raw})
    page = client.get(
        f"/v1/schools/{due['id']}/affiliation", headers={"Accept-Language": raw, "Accept": HTML}
    )
    for r in (badge, page):
        assert r.status_code == 200, header[:30]
        assert r.headers["content-language"] == "en", header[:30]
    assert len(badge.content) <= 4096
    long_but_german = "de, " + "x" * 9_996  # 10,000 characters whose first range is German
    r = client.get(f"/v1/schools/{due['id']}/badge.svg", headers={"Accept-Language": long_but_german})
    assert r.status_code == 200 and r.headers["content-language"] == "de"
