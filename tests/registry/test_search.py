"""Registry search: folding (case, accents, width, compatibility forms, Turkish i),
word prefixes in any order, alternate names and city, filters, keyset pagination."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.registry import search_plan
from tests.conftest import assert_problem


@pytest.fixture
def schools(make_school: Callable[..., dict[str, Any]]) -> dict[str, str]:
    """A handful of schools in several scripts; name -> id."""
    specs: list[dict[str, Any]] = [
        {
            "name": "Achtsamkeit Institut",
            "country": "CH",
            "city": "Zürich",
            "programmes": ["MBSR"],
            "languages": ["de-CH"],
        },
        {
            "name": "Centro São Paulo de Atenção Plena",
            "country": "BR",
            "city": "São Paulo",
            "languages": ["pt"],
        },
        {"name": "İstanbul Farkındalık Merkezi", "country": "TR", "city": "İstanbul", "programmes": ["MBCT"]},
        {"name": "Achtsamkeit an der Straße", "country": "DE", "city": "Köln", "languages": ["de"]},
        {
            "name": "Московский центр осознанности",
            "country": "RU",
            "city": "Москва",
            "alternate_names": [{"value": "Moskovskiy tsentr osoznannosti", "lang": "ru-Latn"}],
        },
        {
            "name": "東京マインドフルネス研究所",
            "country": "JP",
            "city": "東京",
            "alternate_names": [{"value": "Tokyo Mindfulness Kenkyujo", "lang": "ja-Latn"}],
            "programmes": ["MSC"],
        },
        {
            "name": "Κέντρο Ενσυνειδητότητας Αθηνών",
            "country": "GR",
            "city": "Αθήνα",
            "alternate_names": [{"value": "Kentro Ensyneiditotitas Athinon", "lang": "el-Latn"}],
        },
        {
            "name": "מרכז תל אביב לקשיבות",
            "country": "IL",
            "city": "תל אביב",
            "alternate_names": [{"value": "Tel Aviv Mindfulness Centre", "lang": "en"}],
        },
    ]
    return {spec["name"]: make_school(**spec)["id"] for spec in specs}


def _names(client: TestClient, headers: dict[str, str] | None = None, **params: Any) -> list[str]:
    r = client.get("/v1/schools", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return [s["name"] for s in r.json()["data"]]


ZURICH = ["Achtsamkeit Institut"]


#: (query, expected names in listing order)
CASES: list[tuple[str, list[str]]] = [
    ("zurich", ZURICH),
    ("ZÜRICH", ZURICH),
    ("Zu\u0308rich", ZURICH),  # decomposed ü
    ("ｚｕｒｉｃｈ", ZURICH),  # full-width
    ("zür achtsam", ZURICH),
    ("institut ZUR", ZURICH),
    ("sao paulo", ["Centro São Paulo de Atenção Plena"]),
    ("PAULO são", ["Centro São Paulo de Atenção Plena"]),
    ("atencao", ["Centro São Paulo de Atenção Plena"]),
    ("istanbul", ["İstanbul Farkındalık Merkezi"]),
    ("ISTANBUL farkindalik", ["İstanbul Farkındalık Merkezi"]),
    ("ıstanbul", ["İstanbul Farkındalık Merkezi"]),
    ("strasse", ["Achtsamkeit an der Straße"]),
    ("STRAẞE", ["Achtsamkeit an der Straße"]),
    ("achtsamkeit", ["Achtsamkeit an der Straße", "Achtsamkeit Institut"]),
    ("koln", ["Achtsamkeit an der Straße"]),
    ("москов", ["Московский центр осознанности"]),
    ("МОСКВА", ["Московский центр осознанности"]),
    ("moskovskiy", ["Московский центр осознанности"]),
    ("tokyo", ["東京マインドフルネス研究所"]),
    ("東京", ["東京マインドフルネス研究所"]),
    ("マインドフルネス", ["東京マインドフルネス研究所"]),
    ("ＴＯＫＹＯ", ["東京マインドフルネス研究所"]),
    ("αθηνων", ["Κέντρο Ενσυνειδητότητας Αθηνών"]),
    ("ΑΘΉΝΑ", ["Κέντρο Ενσυνειδητότητας Αθηνών"]),
    ("athinon", ["Κέντρο Ενσυνειδητότητας Αθηνών"]),
    ("תל אביב", ["מרכז תל אביב לקשיבות"]),
    ("tel aviv", ["מרכז תל אביב לקשיבות"]),
    ("mindfulness", ["מרכז תל אביב לקשיבות", "東京マインドフルネス研究所"]),
    ("zurichx", ZURICH),  # issue 16: one typo (here a letter too many) is forgiven
    ("zurichxyz", []),  # three are not
    ("zurich paulo", []),
    ("!!! ???", []),
    ("😀", []),
    ("100%", []),
    ("a_b", []),
]


#: How a query is planned (``registry/search_plan.py``): the cost model's choice, or forced.
PLANS: dict[str, dict[str, float]] = {
    "planned": {},
    # no word is selective enough: walk the name order (large registries)
    "walk": {"SELECTIVE": 0, "SELECTIVE_SHARE": 10**9},
    "drive": {"SELECTIVE": 10**9, "DRIVE_FACTOR": float("inf")},  # every word drives
    "drive-check": {"SELECTIVE": 10**9, "DRIVE_FACTOR": float("inf"), "INTERSECT_FACTOR": 0},
}


def _force(monkeypatch: pytest.MonkeyPatch, plan: str) -> None:
    for name, value in PLANS[plan].items():
        monkeypatch.setattr(search_plan, name, value)


def test_q_folds_and_matches_word_prefixes(
    client: TestClient,
    schools: dict[str, str],
    auth: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One database for all the cases and plans (building it per case would cost a minute).
    # A token bypasses the search cache, so every plan really runs.
    reader = auth("webhooks:manage")
    for plan in PLANS:
        _force(monkeypatch, plan)
        got = {query: _names(client, headers=reader, q=query) for query, _expected in CASES}
        assert got == dict(CASES), plan


def test_blank_q_and_filters(client: TestClient, schools: dict[str, str]) -> None:
    assert len(_names(client, q="  ")) == 8
    assert _names(client, country="ch") == ["Achtsamkeit Institut"]
    assert _names(client, programme="mbct") == ["İstanbul Farkındalık Merkezi"]
    assert _names(client, language="de") == ["Achtsamkeit an der Straße", "Achtsamkeit Institut"]
    assert _names(client, language="de-CH") == ["Achtsamkeit Institut"]
    assert _names(client, language="pt", q="paulo") == ["Centro São Paulo de Atenção Plena"]
    assert _names(client, status="aligned") == []
    assert len(_names(client, status="none")) == 8
    # Blank filters do not filter, status included (found in review: `status=` alone was a 422).
    assert len(_names(client, status="", country="", programme="", language="")) == 8
    for bad in (
        {"country": "ZZ"},
        {"programme": "Hatha"},
        {"language": "!!"},
        {"status": "certified"},
        {"q": "x" * 201},
        {"cursor": "not-a-cursor"},
        {"cursor": "eyJhIjoxfQ"},  # base64 of {"a":1}: well-formed, but not ours
    ):
        assert_problem(client.get("/v1/schools", params=bad), 422)


def test_q_with_filters_and_pages_under_every_plan(
    client: TestClient,
    schools: dict[str, str],
    auth: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reader = auth("webhooks:manage")
    both = ["Achtsamkeit an der Straße", "Achtsamkeit Institut"]
    cases: list[tuple[dict[str, str], list[str]]] = [
        ({"q": "achtsamkeit", "language": "de"}, both),
        ({"q": "achtsamkeit", "country": "ch"}, ["Achtsamkeit Institut"]),
        ({"q": "achtsamkeit", "programme": "mbsr", "language": "de-CH"}, ["Achtsamkeit Institut"]),
        ({"q": "achtsamkeit", "status": "none"}, both),
        ({"q": "achtsamkeit", "status": "aligned"}, []),
        ({"q": "tokyo mindfulness", "programme": "MSC"}, ["東京マインドフルネス研究所"]),
        ({"q": "mindfulness", "country": "IL"}, ["מרכז תל אביב לקשיבות"]),
        ({"q": "a", "country": "DE"}, ["Achtsamkeit an der Straße"]),
    ]
    for plan in PLANS:
        _force(monkeypatch, plan)
        for params, expected in cases:
            assert _names(client, headers=reader, **params) == expected, (plan, params)
            # One school a page: the cursor and the filters together.
            paged: list[str] = []
            cursor = None
            while True:
                query = {**params, "limit": "1", **({"cursor": cursor} if cursor else {})}
                page = client.get("/v1/schools", params=query, headers=reader).json()
                paged += [s["name"] for s in page["data"]]
                cursor = page["next_cursor"]
                if not cursor:
                    break
            assert paged == expected, (plan, params)


@pytest.mark.parametrize("plan", ["planned", "walk", "drive"])
def test_pagination_neither_skips_nor_repeats_under_concurrent_changes(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    steward: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    plan: str,
) -> None:
    _force(monkeypatch, plan)
    ids = {f"Pag {n:02d}": make_school(name=f"Pag {n:02d}")["id"] for n in range(1, 13)}
    first = client.get("/v1/schools", params={"limit": 5, "q": "pag"})
    page1 = first.json()
    assert [s["name"] for s in page1["data"]] == [f"Pag {n:02d}" for n in range(1, 6)]
    link = first.headers["Link"]
    assert link.startswith("<http://testserver/v1/schools?") and link.endswith('>; rel="next"')
    assert f"cursor={page1['next_cursor']}" in link and "limit=5" in link and "q=pag" in link

    # Between pages: one school added before the cursor, two after; one delisted on each side.
    make_school(name="Pag 00")
    make_school(name="Pag 065")
    make_school(name="Pag 99")
    for name in ("Pag 02", "Pag 08"):
        assert client.post(f"/v1/schools/{ids[name]}/delist", headers=steward).status_code == 200

    seen = [s["name"] for s in page1["data"]]
    cursor = page1["next_cursor"]
    while cursor:
        page = client.get("/v1/schools", params={"limit": 5, "q": "pag", "cursor": cursor}).json()
        seen += [s["name"] for s in page["data"]]
        cursor = page["next_cursor"]
    assert seen == [
        "Pag 01",
        "Pag 02",
        "Pag 03",
        "Pag 04",
        "Pag 05",
        "Pag 06",
        "Pag 065",
        "Pag 07",
        "Pag 09",
        "Pag 10",
        "Pag 11",
        "Pag 12",
        "Pag 99",
    ]


@pytest.mark.parametrize("plan", ["walk", "drive"])
@pytest.mark.parametrize("q", [None, "same"])
def test_ties_in_name_are_broken_by_id(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    plan: str,
    q: str | None,
) -> None:
    _force(monkeypatch, plan)
    made = sorted(make_school(name="Same Name", country=c)["id"] for c in ("NL", "BE", "LU", "DE"))
    got: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1, "q": q}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/schools", params=params).json()
        got += [s["id"] for s in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert got == made


def test_word_counts_steer_plans_but_never_answers(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    auth: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Words' entry counts are reused for a minute: a word counted with no entries must still
    # find the school listed right after, and a reused count must not cost a statement.
    reader = auth("webhooks:manage")
    probes: list[int] = []
    real = search_plan._probe_sql
    monkeypatch.setattr(search_plan, "_probe_sql", lambda n: probes.append(n) or real(n))
    assert _names(client, reader, q="quokka") == []
    assert probes == [1]
    make_school(name="Quokka Calm")
    assert _names(client, reader, q="quokka") == ["Quokka Calm"]
    assert _names(client, reader, q="calm quokka") == ["Quokka Calm"]
    assert probes == [1, 1]  # only `calm` was counted again
    monkeypatch.setattr(search_plan, "STATS_TTL_S", 0.0)
    assert _names(client, reader, q="quokka calm") == ["Quokka Calm"]
    assert probes == [1, 1, 2]


def test_words_are_maximal_runs_of_letters_digits_and_marks_for_every_code_point() -> None:
    """The fast paths of ``folding.words`` (ASCII by regex, the rest by translate tables) agree
    with the definition, character by character, for every code point of the BMP."""
    import unicodedata

    from service.registry import folding

    def by_definition(text: str) -> list[str]:
        out, current = [], ""
        for ch in folding.fold(text):
            if unicodedata.category(ch)[0] in "LNM":
                current += ch
            elif current:
                out.append(current)
                current = ""
        return [*out, current] if current else out

    for cp in range(0x10000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        text = f"Ab{chr(cp)}c {chr(cp)}"
        assert folding.words(text) == by_definition(text), hex(cp)
    assert folding.words("Zürcher Institut für Achtsamkeit!") == ["zurcher", "institut", "fur", "achtsamkeit"]
    assert folding.words("ＳＴＩＬＬＥ-zee_2") == ["stille", "zee", "2"]
