"""The disposition report in the reader's language (issue 16 for issue 10's report): negotiated as a
version read among the version's translations (falling back to the source language), ``?lang=``
first; the title and section titles from the translation, the words of ours from the catalogue;
``Content-Language``, ``Vary: Accept-Language`` when the header chose; one cache entry per
negotiated language; a German report carries no English word of ours. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.web.cache import PublicCache
from service.web.http import HTML, JSON, MARKDOWN
from tests.conftest import assert_problem
from tests.helpers import HOSTILE_ACCEPT_LANGUAGE, many_spellings, vary_of, visible_text, words_in
from tests.standards.conftest import Api, translation_of
from tests.standards.test_review_report import V21, _arrange, _comment

REPORT = f"{V21}/review"
MEDIA = (JSON, MARKDOWN, HTML)


@pytest.fixture
def translated(reviewed: Api, commenter: Callable[..., dict[str, str]]) -> dict[str, str]:
    """Draft 2.1 under review with comments of every kind (one still pending) and its German and
    Japanese translations (Japanese has no catalogue: our words stay English there)."""
    ids = _arrange(reviewed, commenter)
    ids["pending"] = _comment(
        reviewed, commenter(organisation="Verband Wien", region="AT"), text="Noch offen."
    )
    draft = reviewed.client.get(V21, headers=reviewed.headers).json()
    for lang, prefix in (("de", "DE"), ("ja", "JA")):
        r = reviewed.client.put(
            f"{V21}/translations/{lang}", json=translation_of(draft, prefix), headers=reviewed.headers
        )
        assert r.status_code == 201, r.text
    return ids


def test_the_report_negotiates_like_a_version_read(reviewed: Api, translated: dict[str, str]) -> None:
    c = reviewed.client
    for header, served in (
        ("de", "de"),
        ("de-CH, en;q=0.5", "de"),
        ("fr, ja;q=0.5", "ja"),  # no French translation: the next range
        ("fr", "en"),  # nothing we have: the source language, 200
        ("de;q=0, en", "en"),
        ("", "en"),
    ):
        for media in MEDIA:
            r = c.get(REPORT, headers={"Accept-Language": header, "Accept": media})
            assert r.status_code == 200, (header, r.text)
            assert r.headers["content-language"] == served, (header, media)
            assert vary_of(r) == ["accept", "accept-encoding", "accept-language"]
            if media == JSON:
                report = r.json()
                assert report["language"] == served
                assert report["title"].startswith(f"{served.upper()} ") == (served != "en")
    # ?lang= wins, and the answer does not vary with the header
    r = c.get(REPORT, params={"lang": "en"}, headers={"Accept-Language": "de"})
    assert r.headers["content-language"] == "en" and vary_of(r) == ["accept", "accept-encoding"]
    r = c.get(REPORT, params={"lang": "de-AT"}, headers={"Accept-Language": "en", "Accept": HTML})
    assert r.headers["content-language"] == "de" and "accept-language" not in vary_of(r)
    assert r.text.startswith('<article class="imi-review" lang="de" dir="ltr"')
    body = assert_problem(c.get(REPORT, params={"lang": "de_DE"}), 422)
    assert body["parameter"] == "lang" and body["hint"] == "de-DE"
    # a translation without a catalogue: its titles, our words in English and marked so
    japanese = c.get(REPORT, params={"lang": "ja"}, headers={"Accept": HTML}).text
    assert japanese.startswith('<article class="imi-review" lang="ja"')
    assert '<p class="imi-meta" lang="en">Review open,' in japanese and "Review of JA Demo" in japanese


def _content(reports: list[dict[str, Any]]) -> set[str]:
    """Words that commenters and editors wrote, and codes: not ours."""
    texts: list[str] = []
    for report in reports:
        texts += [report["title"], report["review"]["summary"] or "", report["document"]]
        for group in report["groups"]:
            texts += [group["key"] or "", group["title"] or ""]
            for comment in group["comments"]:
                texts += [
                    comment["id"],
                    comment["text"],
                    comment["quote"] or "",
                    comment["proposed_text"] or "",
                ]
                texts += [comment["organisation"], comment["region"]]
                if comment["disposition"]:
                    texts.append(comment["disposition"]["response"])
    return words_in(*texts)


def test_a_german_report_carries_no_english_word_of_ours(reviewed: Api, translated: dict[str, str]) -> None:
    c = reviewed.client
    content = _content([c.get(REPORT).json(), c.get(REPORT, params={"lang": "de"}).json()])
    english = [c.get(REPORT, headers={"Accept": media}).text for media in (MARKDOWN, HTML)]
    ours_in_english = words_in(english[0], visible_text(english[1])) - content
    # what we write around the comments: group headings, outcomes, commenter types, labels, months
    # ("general" and "withdrawn" are words of the comments here, so they do not count as ours)
    assert {"comments", "section", "clause", "accepted", "changes", "declined", "noted", "pending",
            "author", "awaiting", "disposition", "outcomes", "review", "organisations", "association",
            "proposed", "longer"} <= ours_in_english  # fmt: skip
    for media in (MARKDOWN, HTML):
        german = c.get(REPORT, headers={"Accept-Language": "de", "Accept": media}).text
        shown = german if media == MARKDOWN else visible_text(german)
        ours = words_in(shown) - content
        # "Version" is German too; "markdown" is the info string of a proposed text's fence (a code)
        assert not (ours & ours_in_english) - {"version", "markdown"}, (media, sorted(ours & ours_in_english))
        for said in (
            "Begutachtung von DE Demo standards, Version 2.1",
            "Begutachtung offen,",
            "6 Kommentare von 3 Einrichtungen (AT, DE, NL)",
            "Allgemeine Kommentare",
            "Abschnitt S3 DE Organisation",
            "Klausel S1.2",
            "Klausel S2.3 (nicht mehr Teil dieser Version)",
            "mit Änderungen angenommen",
            "zur Kenntnis genommen",
            "Von der verfassenden Person zurückgezogen.",
            "Wartet auf eine Entscheidung.",
            "Vorgeschlagene Fassung:",
            "Verband",
        ):
            assert said in shown, (media, said)


def test_every_spelling_of_a_language_is_one_cache_entry(
    reviewed: Api, translated: dict[str, str], app: Any
) -> None:
    c = reviewed.client
    cache: PublicCache = app.state.public_cache
    first = c.get(REPORT, headers={"Accept-Language": "de"})
    before = len(cache)
    for spelling in many_spellings("de"):
        r = c.get(REPORT, headers={"Accept-Language": spelling})
        assert r.headers["etag"] == first.headers["etag"] and r.headers["content-language"] == "de"
    assert len(cache) == before
    assert cache.stored(("review", "demo", "2.1", JSON, "de", False)) is not None
    r = c.get(REPORT, headers={"Accept-Language": "de-LI", "If-None-Match": first.headers["etag"]})
    assert r.status_code == 304
    # ?lang= of languages without a translation: one entry, the source language's
    english = c.get(REPORT, params={"lang": "en"})
    stored = len(cache)
    for tag in ("fr", "pt-BR", "zh-Hant-TW", "fr-CA", "sw"):
        r = c.get(REPORT, params={"lang": tag})
        assert r.headers["content-language"] == "en" and r.headers["etag"] == english.headers["etag"]
    assert len(cache) == stored


@pytest.mark.parametrize("header", HOSTILE_ACCEPT_LANGUAGE)
def test_hostile_accept_language_is_harmless(reviewed: Api, header: str) -> None:
    raw: Any = header.encode("utf-8")
    for media in MEDIA:
        r = reviewed.client.get(REPORT, headers={"Accept-Language": raw, "Accept": media})
        assert r.status_code == 200 and r.headers["content-language"] == "en", header[:30]


def test_a_published_report_is_served_in_its_published_translation(
    reviewed: Api, translated: dict[str, str], client: TestClient
) -> None:
    h = reviewed.headers
    r = client.post(
        f"{V21}/comments/{translated['pending']}/disposition",
        json={"outcome": "noted", "response": "Ja."},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert client.post(f"{V21}/review/close", headers=h).status_code == 200
    assert client.post(f"{V21}/publish", headers=h).status_code == 200
    r = client.get(REPORT, headers={"Accept-Language": "de", "Accept": MARKDOWN})
    assert r.headers["content-language"] == "de" and r.headers["cache-control"] == "public, max-age=3600"
    assert "Begutachtung abgeschlossen," in r.text and "Wartet" not in r.text
