"""Language negotiation on every standards read (issue 16): ``Accept-Language`` by RFC 4647
lookup when ``?lang=`` is absent, ``Content-Language`` always, ``Vary: Accept-Language`` where
the header decided, one cache entry per negotiated language, and a German page carrying no
English word of ours (the message catalogue), in HTML and Markdown, on the sample data."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.core import messages
from service.sample.loader import load_sample
from service.standards.representations import representation_key
from service.web import languages
from service.web.cache import PublicCache
from service.web.http import HTML, JSON, MARKDOWN
from tests.conftest import assert_problem

DOC = "/v1/standards/training-standards"


@pytest.fixture
def sample(client: TestClient, engine: Any, settings: Any) -> TestClient:
    assert load_sample(engine=engine, settings=settings) is True
    return client


def _vary(r: Any) -> list[str]:
    return [v.strip().lower() for v in r.headers.get("vary", "").split(",") if v.strip()]


@pytest.mark.parametrize(
    "path", [f"{DOC}/current", f"{DOC}/versions/2.0", f"{DOC}/versions/2.0/clauses/B3.1"]
)
def test_accept_language_is_negotiated_and_lang_wins(sample: TestClient, path: str) -> None:
    for header, served in (
        ("de", "de"),
        ("de-CH, en;q=0.5", "de"),  # RFC 4647 lookup: de-CH -> de
        ("fr, de;q=0.8", "de"),  # no fr: the next range
        ("en, de;q=0.9", "en"),
        ("fr", "en"),  # nothing we have: the source language, 200
        ("de;q=0, en", "en"),  # q=0 is "not acceptable"
        ("*", "en"),
        ("", "en"),
    ):
        for accept in (JSON, MARKDOWN, HTML):
            r = sample.get(path, headers={"Accept-Language": header, "Accept": accept})
            assert r.status_code == 200, (header, r.text)
            assert r.headers["content-language"] == served, (header, accept)
            assert "accept-language" in _vary(r), (header, accept)
            if accept == JSON:
                assert r.json()["language"] == served
    # ?lang= wins over the header, and the answer does not vary with it
    r = sample.get(path, params={"lang": "en"}, headers={"Accept-Language": "de"})
    assert r.headers["content-language"] == "en" and "accept-language" not in _vary(r)
    r = sample.get(path, params={"lang": "de"}, headers={"Accept-Language": "en"})
    assert r.headers["content-language"] == "de" and "accept-language" not in _vary(r)
    # without either, the source language, and Vary says the header could change it
    r = sample.get(path)
    assert r.headers["content-language"] == "en" and "accept-language" in _vary(r)


def test_the_diff_negotiates_among_languages_both_versions_have(
    sample: TestClient, auth: Any, settings: Any
) -> None:
    r = sample.get(f"{DOC}/diff", params={"from": "1.0", "to": "2.0"}, headers={"Accept-Language": "de"})
    assert r.status_code == 200 and r.headers["content-language"] == "en"  # 1.0 has no German
    assert "accept-language" in _vary(r)
    explicit = sample.get(f"{DOC}/diff", params={"from": "1.0", "to": "2.0", "lang": "de"})
    assert explicit.headers["content-language"] == "en" and "accept-language" not in _vary(explicit)
    assert explicit.content == r.content
    assert_problem(sample.get(f"{DOC}/diff", params={"from": "1.0", "to": "2.0", "lang": "de_DE"}), 422)

    # A 2.1 translated into German: the 2.0 -> 2.1 diff is served in German.
    editor = auth("standards:write")
    v = f"{DOC}/versions"
    assert sample.post(v, json={"version": "2.1", "based_on": "2.0"}, headers=editor).status_code == 201
    draft = sample.get(f"{v}/2.1", headers=editor)
    body = draft.json()
    clause = body["sections"][0]["clauses"][0]
    clause["text"] = clause["text"] + " (revised)"
    put = sample.put(f"{v}/2.1", json=body, headers={**editor, "If-Match": draft.headers["etag"]})
    assert put.status_code == 200, put.text
    german = sample.get(f"{v}/2.0", params={"lang": "de"}).json()
    translation = {
        "title": german["title"],
        "summary": german["summary"],
        "sections": [
            {
                "key": s["key"],
                "title": s["title"],
                **({"intro": s["intro"]} if s.get("intro") else {}),
                "clauses": [
                    {"key": c["key"], "text": c["text"] + (" (überarbeitet)" * (c["key"] == clause["key"]))}
                    for c in s["clauses"]
                ],
            }
            for s in german["sections"]
        ],
    }
    assert sample.put(f"{v}/2.1/translations/de", json=translation, headers=editor).status_code == 201
    assert sample.post(f"{v}/2.1/publish", headers=editor).status_code == 200
    params = {"from": "2.0", "to": "2.1"}
    diff = sample.get(f"{DOC}/diff", params=params, headers={"Accept-Language": "de-AT"})
    assert diff.headers["content-language"] == "de"
    (modified,) = diff.json()["modified"]
    assert modified["key"] == clause["key"]
    assert modified["after"]["text"].endswith("(überarbeitet)")
    english = sample.get(f"{DOC}/diff", params={"from": "2.0", "to": "2.1"})
    assert english.headers["content-language"] == "en"
    assert english.json()["modified"][0]["after"]["text"].endswith("(revised)")


def test_a_thousand_header_spellings_make_one_entry(sample: TestClient, app: Any) -> None:
    cache: PublicCache = app.state.public_cache
    first = sample.get(f"{DOC}/current", headers={"Accept-Language": "de"})
    before = len(cache)
    spellings = set()
    for n in range(1000):
        region = ["CH", "AT", "DE", "LI", "ch", "at"][n % 6]
        q = f"{0.5 + (n % 499 + 1) / 1000:.3f}".rstrip("0").rstrip(".")
        spellings.add(f"de-{region};q={q}, fr;q=0.{n % 4}, en;q=0.01")
    assert len(spellings) == 1000
    for spelling in spellings:
        r = sample.get(f"{DOC}/current", headers={"Accept-Language": spelling})
        assert r.content == first.content and r.headers["etag"] == first.headers["etag"]
    assert len(cache) == before  # one entry for all of them
    assert cache.stored(representation_key("training-standards", "current", "de", JSON, negotiated=True))
    # English spellings share the entry of a request without the header
    for spelling in ("en", "en-GB, en;q=0.9", "fr, en;q=0.5", "*", "xx-YY"):
        sample.get(f"{DOC}/current", headers={"Accept-Language": spelling})
    sample.get(f"{DOC}/current")
    assert len(cache) == before + 1
    assert cache.stored(representation_key("training-standards", "current", "", JSON))


def test_hostile_accept_language_headers_answer_in_the_source_language(sample: TestClient) -> None:
    hostile = [
        "de-" + "x" * 10_000,
        ",".join(["zz"] * 5000),
        "de;q=" + "9" * 1000,
        "de;q=0." + "1" * 1000,
        "de;q=1.5, en;q=0.5",  # out of range: the element is ignored
        "de;q=-1",
        "de;q=abc",
        "ДЕ, 日本語, de\u0301",  # mixed scripts
        "de_CH",
        ";;;,,,===",
        "\x7f\x01",
    ]
    for header in hostile:
        raw = header.encode("utf-8")  # the bytes as they arrive on the wire
        r = sample.get(f"{DOC}/current", headers={"Accept-Language": raw})  # type: ignore[dict-item]
        assert r.status_code == 200, header[:30]
        assert r.headers["content-language"] == "en", header[:30]
    r = sample.get(f"{DOC}/current", headers={"Accept-Language": "de;q=1.5, de-AT;q=0.3"})
    assert r.headers["content-language"] == "de"  # the well-formed element still counts


def test_malformed_lang_is_a_422_with_a_hint(sample: TestClient) -> None:
    body = assert_problem(sample.get(f"{DOC}/current", params={"lang": "de_CH"}), 422)
    assert body["parameter"] == "lang" and body["hint"] == "de-CH"
    assert "did you mean de-CH?" in body["detail"]
    body = assert_problem(sample.get(f"{DOC}/current", params={"lang": "German"}), 422)
    assert body["hint"] == "de"
    body = assert_problem(sample.get(f"{DOC}/current", params={"lang": "x" * 10_000}), 422)
    assert len(body["detail"]) < 200


ENGLISH = re.compile(r"[A-Za-z]+")


def _content_words(rep: dict[str, Any]) -> set[str]:
    """Words that come from the document's content (translated or not), not from us."""
    texts = [rep["title"], rep.get("summary") or ""]
    for section in rep["sections"]:
        texts += [section["key"], section["title"], section.get("intro") or ""]
        for clause in section["clauses"]:
            texts += [clause["key"], clause["text"]]
    for note in rep["regional_notes"]:
        texts += [note["region"], note["text"]]
    for person in rep["contributors"]:
        texts += [person["name"], person["affiliation"], person["region"]]
    return {w.lower() for text in texts for w in ENGLISH.findall(text)}


def test_a_german_page_carries_no_english_word_of_ours(sample: TestClient) -> None:
    rep = sample.get(f"{DOC}/current", headers={"Accept-Language": "de"}).json()
    english_rep = sample.get(f"{DOC}/current").json()
    ours_in_english = set()
    for media in (MARKDOWN, HTML):
        en = sample.get(f"{DOC}/current", headers={"Accept": media}).text
        ours_in_english |= {w.lower() for w in ENGLISH.findall(en)} - _content_words(english_rep)
    # what we write around the English content: labels, status, kinds, audiences, month names
    assert {"effective", "applies", "regional", "notes", "contributors", "july", "requirement"} <= (
        ours_in_english
    )
    catalogue = messages.words("de")
    for media in (MARKDOWN, HTML):
        page = sample.get(f"{DOC}/current", headers={"Accept-Language": "de", "Accept": media}).text
        if media == HTML:
            page = re.sub(r"<[^>]*>", " ", page)  # markup: tag and attribute names are not words
        ours = {w.lower() for w in ENGLISH.findall(page)} - _content_words(rep)
        # German words of ours, and the words both languages share
        assert not (ours & (ours_in_english - {"version"})), (media, sorted(ours & ours_in_english))
        for word in ("Gültig ab", "Veröffentlicht am", "1. Juli 2021", "Gilt für", "Regionale Hinweise"):
            assert word in page, (media, word)
        assert catalogue.gettext("Requirement") in page and "Mitwirkende" in page
    html = sample.get(f"{DOC}/current", headers={"Accept-Language": "de", "Accept": HTML}).text
    assert html.startswith('<article class="imi-standards" lang="de" dir="ltr"')
    assert '<h2 lang="de">Mitwirkende</h2>' in html
    # a clause alone too
    headers = {"Accept-Language": "de", "Accept": MARKDOWN}
    clause = sample.get(f"{DOC}/versions/2.0/clauses/B3.1", headers=headers)
    assert "Gilt für:" in clause.text and "Applies to" not in clause.text


def test_the_sample_translation_languages_have_catalogues(sample: TestClient) -> None:
    for version in ("1.0", "2.0"):
        for language in sample.get(f"{DOC}/versions/{version}").json()["translations"]:
            assert messages.words(language).language == language


def test_ranges_and_lookup_follow_the_rfcs() -> None:
    assert languages.ranges("de-CH, de;q=0.9, en;q=0.8, *;q=0.1") == (
        ("de-ch", 1.0),
        ("de", 0.9),
        ("en", 0.8),
        ("*", 0.1),
    )
    assert languages.ranges("en;q=0.5, de") == (("de", 1.0), ("en", 0.5))  # by quality, stable
    assert languages.ranges("de;q=1.001, fr;q=0.0001, nl;q=1.000, es;Q=0.3") == (("nl", 1.0), ("es", 0.3))
    assert languages.lookup(["zh-hant-cn-x-private1"], ["zh-Hant", "en"], "en") == "zh-Hant"
    assert languages.lookup(["de-x-a"], ["de-x"], "en") == "en"  # never ends on a singleton
    assert languages.negotiate("pt-BR", ["pt-BR", "pt"], "en") == "pt-BR"
    assert languages.negotiate("PT-br", ["pt-BR"], "en") == "pt-BR"
    assert languages.negotiate("de;q=0", ["de"], "en") == "en"
    assert languages.negotiate(None, ["de"], "en") == "en"
    assert languages.vary(explicit=True) is None and languages.vary(explicit=False) == "Accept-Language"


def test_choose_is_the_one_call_for_other_reads() -> None:
    choice = languages.choose(None, "de-CH, en;q=0.5", ["de"], "en")
    assert (choice.language, choice.explicit, choice.vary) == ("de", False, "Accept-Language")
    choice = languages.choose("DE-at", "en", ["de"], "en")
    assert (choice.language, choice.explicit, choice.vary) == ("de", True, None)
    assert languages.choose("fr", None, ["de"], "en").language == "en"
    with pytest.raises(Exception) as caught:
        languages.choose("de_CH", None, ["de"], "en")
    assert getattr(caught.value, "status", None) == 422 and caught.value.extra["hint"] == "de-CH"  # type: ignore[attr-defined]


def test_untranslated_notes_in_a_translated_page_say_they_are_in_the_source_language(
    sample: TestClient,
) -> None:
    """Regional notes are not part of a translation: in a German page their English text is
    marked ``lang="en"`` (WCAG 3.1.2), in an English page nothing is added; a clause alone too."""
    rep = sample.get(f"{DOC}/versions/2.0").json()
    assert rep["source_language"] == "en"
    targets = {n["target"] for n in rep["regional_notes"]}
    clause_keys = {c["key"] for s in rep["sections"] for c in s["clauses"]}
    noted_clause = sorted(targets & clause_keys)[0]
    german = sample.get(f"{DOC}/versions/2.0", params={"lang": "de"}, headers={"Accept": HTML}).text
    asides = re.findall(r'<aside class="imi-regional-note"[^>]*>', german)
    assert len(asides) == len(rep["regional_notes"]) and all(a.endswith(' lang="en">') for a in asides)
    english = sample.get(f"{DOC}/versions/2.0", headers={"Accept": HTML}).text
    english_asides = re.findall(r'<aside class="imi-regional-note"[^>]*>', english)
    assert len(english_asides) == len(asides) and not any("lang=" in a for a in english_asides)
    clause = sample.get(
        f"{DOC}/versions/2.0/clauses/{noted_clause}", headers={"Accept-Language": "de", "Accept": HTML}
    )
    assert clause.headers["content-language"] == "de"
    assert re.search(r'<aside class="imi-regional-note" data-region="[^"]+" lang="en">', clause.text)
    english_clause = sample.get(f"{DOC}/versions/2.0/clauses/{noted_clause}", headers={"Accept": HTML}).text
    assert re.search(r'<aside class="imi-regional-note" data-region="[^"]+">', english_clause)
