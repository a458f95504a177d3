"""The badge and the verification page (issue 11, point 2) through HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any
from xml.etree import ElementTree

import pytest
from fastapi.testclient import TestClient

from service.core import messages
from service.registry import wording
from tests.conftest import assert_problem

SVG = "{http://www.w3.org/2000/svg}"
FORBIDDEN = re.compile(r"certif|accredit|zertifi|akkredit|gecertific|geaccredit|acredit|certifi", re.I)
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def _badge(client: TestClient, school_id: str, **params: str) -> tuple[Any, ElementTree.Element]:
    r = client.get(f"/v1/schools/{school_id}/badge.svg", params=params)
    assert r.status_code == 200, r.text
    return r, ElementTree.fromstring(r.content)


def _texts(svg: ElementTree.Element) -> list[str]:
    return [t.text or "" for t in svg.iter(f"{SVG}text")]


def test_badge_says_what_the_registry_records(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    publish: Callable[[str], dict[str, Any]],
    state: Callable[..., Any],
    steward: dict[str, str],
) -> None:
    publish("1.0")
    school = make_school(name="Stille Zee Mindfulness", country="NL")
    url = f"/v1/schools/{school['id']}/badge.svg"
    r, svg = _badge(client, school["id"])
    assert _texts(svg) == ["IMI Network", "No current alignment statement"]
    none_etag = r.headers["etag"]
    assert r.headers["content-type"] == "image/svg+xml"
    assert r.headers["cache-control"] == "public, max-age=300"
    assert r.headers["content-language"] == "en"
    # Accessible: role img, named by its title, which carries the school's name.
    assert svg.get("role") == "img" and svg.get("aria-labelledby") == "imi-badge-title"
    assert svg.find(f"{SVG}title").text == "Stille Zee Mindfulness: No current alignment statement"
    assert client.get(url, headers={"If-None-Match": none_etag}).status_code == 304

    assert state(school["id"], "1.0").status_code == 200
    r, svg = _badge(client, school["id"])
    assert _texts(svg)[1] == "States alignment with IMI Training Standards 1.0"
    aligned_fill = svg.findall(f"{SVG}rect")[1].get("fill")
    assert r.headers["etag"] != none_etag  # the ETag changes with the status
    assert client.get(url, headers={"If-None-Match": none_etag}).status_code == 200

    publish("2.0")  # a major version: the school must re-affirm
    r, svg = _badge(client, school["id"])
    assert _texts(svg)[1] == "Re-affirmation due"
    assert svg.findall(f"{SVG}rect")[1].get("fill") not in (aligned_fill, None)

    # In the requested language, with RFC 4647 fallback and English for the rest.
    r, svg = _badge(client, school["id"], lang="de-CH")
    assert (_texts(svg)[1], r.headers["content-language"]) == ("Erneute Bestätigung fällig", "de")
    r, svg = _badge(client, school["id"], lang="ja")
    assert (_texts(svg)[1], r.headers["content-language"]) == ("Re-affirmation due", "en")
    assert_problem(client.get(url, params={"lang": "en_US"}), 422)

    r = client.post(f"/v1/schools/{school['id']}/delist", headers=steward)
    assert r.status_code == 200
    assert _texts(_badge(client, school["id"])[1])[1] == "No current alignment statement"
    assert_problem(client.get("/v1/schools/sch_nope/badge.svg"), 404)


def test_badge_forbids_scripts_and_loads_nothing(client: TestClient, make_school: Callable[..., Any]) -> None:
    school = make_school(name="Policy School", country="AT")
    r, svg = _badge(client, school["id"])
    # The badge's own policy is the one a client sees (the edge adds no second one).
    [csp] = [v for k, v in r.headers.multi_items() if k == "content-security-policy"]
    assert "script-src 'none'" in csp and "default-src 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    for element in svg.iter():
        assert element.tag.split("}")[-1] in {"svg", "title", "rect", "g", "text"}
        for name, value in element.attrib.items():
            assert not name.startswith("on") and "href" not in name
            assert "url(" not in value and "javascript:" not in value
    # Other responses keep the API's policy.
    api = client.get(f"/v1/schools/{school['id']}")
    assert [v for k, v in api.headers.multi_items() if k == "content-security-policy"] == [
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ]


def test_hostile_and_very_long_names_stay_small_valid_svg(
    client: TestClient, make_school: Callable[..., dict[str, Any]]
) -> None:
    hostile = make_school(name='<script>alert("x")</script> ]]> & Zen', country="CH")
    r, svg = _badge(client, hostile["id"])
    assert b"<script" not in r.content and b"]]>" not in r.content
    assert svg.find(f"{SVG}title").text.startswith('<script>alert("x")</script> ]]> & Zen: ')
    long_name = ("Ünïcödé Mindfulness Training Institute & Retreat Centre <" * 6)[:300]
    school = make_school(name=long_name, country="JP")
    r, svg = _badge(client, school["id"])
    assert len(r.content) <= 4096
    assert svg.find(f"{SVG}title").text.startswith(long_name[:100])
    for lang in messages.languages():
        body = client.get(f"/v1/schools/{school['id']}/badge.svg", params={"lang": lang}).content
        assert len(body) <= 4096
        ElementTree.fromstring(body)


class _Page(HTMLParser):
    """Collects what a page would load: tags with src/href to other documents, scripts, styles."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.loads: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        if tag in ("img", "script", "iframe", "object", "embed", "link", "source", "video", "audio"):
            self.loads.append(tag)
        if "src" in values or (tag != "a" and "href" in values) or "style" in values:
            self.loads.append(f"{tag}[{values}]")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_verification_page_shows_the_live_answer_self_contained(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    publish: Callable[[str], dict[str, Any]],
    state: Callable[..., Any],
) -> None:
    publish("1.0")
    school = make_school(name='Zen <script>x()</script> & "Söhne"', country="DE", city="Köln")
    assert state(school["id"], "1.0").status_code == 200
    url = f"/v1/schools/{school['id']}/affiliation"
    answer = client.get(url).json()
    r = client.get(url, headers={"Accept": BROWSER})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["vary"] == "Accept, Accept-Encoding, Accept-Language"  # no ?lang=: the header chose
    [csp] = [v for k, v in r.headers.multi_items() if k == "content-security-policy"]
    assert re.search(r"style-src 'sha256-[A-Za-z0-9+/=]+'", csp) and "script-src 'none'" in csp
    page = _Page()
    page.feed(r.text)
    assert page.loads == []
    assert "script" not in page.tags and b"<script>" not in r.content
    text = " ".join(page.text)
    assert 'Zen <script>x()</script> & "Söhne"' in text  # escaped, shown as text
    assert "Köln, DE" in text
    assert "States alignment with IMI Training Standards 1.0" in text
    assert answer["credential"] in text  # the same signed credential as the JSON answer
    assert "Checked" in text and "Version stated" in text
    assert not FORBIDDEN.search(r.text)
    # 304 and the JSON form are unchanged by the page.
    assert client.get(url, headers={"Accept": BROWSER, "If-None-Match": r.headers["etag"]}).status_code == 304
    assert client.get(url, headers={"Accept": "application/json"}).json() == answer
    assert client.get(url, headers={"Accept": "image/png"}).headers["content-type"] == "application/json"
    german = client.get(url, params={"lang": "de"}, headers={"Accept": "text/html"})
    assert german.headers["content-language"] == "de" and "Erklärt Übereinstimmung" in german.text
    assert_problem(client.get(url, params={"lang": "de_DE"}, headers={"Accept": "text/html"}), 422)


@pytest.mark.parametrize("lang", messages.catalogues())
def test_no_wording_says_certified_or_accredited(lang: str) -> None:
    """Every message of every catalogue (badge, page, feeds, reports, standards pages) and every
    English msgid of ours: the network records what schools state, in every language."""
    catalogue = messages.compiled(lang)
    phrases = [*wording.PHRASES.values(), *wording.STATUS_NAMES.values()]
    for message in sorted(messages.extract()):
        assert not FORBIDDEN.search(message), message
        assert not FORBIDDEN.search(catalogue.gettext(message)), (lang, message)
    for singular, plural in sorted(messages.extract_plurals()):
        for n in (0, 1, 2, 5):
            assert not FORBIDDEN.search(catalogue.ngettext(singular, plural, n)), (lang, singular)
    assert set(phrases) <= messages.extract()  # the badge's words are in the catalogue
