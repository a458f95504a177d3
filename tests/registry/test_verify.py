"""``GET /v1/verify``: fuzzy names (alternate names count), registrable domains by the
Public Suffix List, the "chosen" rule, and odd input that must never be a 500."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.registry.verify import registrable_domain
from tests.conftest import assert_problem


@pytest.fixture
def schools(
    make_school: Callable[..., dict[str, Any]], steward: dict[str, str], client: TestClient
) -> dict[str, str]:
    specs: list[dict[str, Any]] = [
        {
            "name": "Zürich Achtsamkeit Institut",
            "country": "CH",
            "website": "https://www.achtsam.example.ch/kurse",
            "alternate_names": [{"value": "Zurich Mindfulness Institute", "lang": "en"}],
        },
        {
            "name": "Basel Achtsamkeit Zentrum",
            "country": "CH",
            "website": "https://basel-achtsam.example.net",
        },
        {"name": "Mindful Leeds", "country": "GB", "website": "http://leeds.example.co.uk"},
        {
            "name": "Leeds Mindfulness Collective",
            "country": "GB",
            "website": "https://www.example.co.uk/leeds",
        },
        {"name": "Centro de Atenção Plena", "country": "BR", "website": "https://plena.example.zzzz"},
        {"name": "Centro de Atencao Plena Sul", "country": "BR"},
        {"name": "Hidden School", "country": "NL", "website": "https://hidden.example.nl"},
    ]
    made = {spec["name"]: make_school(**spec)["id"] for spec in specs}
    r = client.post(f"/v1/schools/{made['Hidden School']}/delist", headers=steward)
    assert r.status_code == 200
    return made


def _verify(client: TestClient, **params: Any) -> list[tuple[str, float, bool]]:
    r = client.get("/v1/verify", params=params)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    for item in data:
        assert "contact" not in item["school"]
        assert isinstance(item["reason"], str) and item["reason"]
    return [(d["school"]["name"], d["score"], d["chosen"]) for d in data]


@pytest.mark.parametrize(
    ("url", "domain"),
    [
        ("https://www.achtsam.example.ch/kurse?x=1", "example.ch"),
        ("HTTP://WWW.EXAMPLE.CO.UK", "example.co.uk"),
        ("leeds.example.co.uk/path", "example.co.uk"),
        ("example.co.uk", "example.co.uk"),
        ("co.uk", None),
        ("https://school.example.zzzz/", "example.zzzz"),
        ("https://xn--mnchen-3ya.example.de", "example.de"),
        ("https://münchen.de", "münchen.de"),
        ("https://xn--mnchen-3ya.de", "münchen.de"),
        ("https://127.0.0.1/", None),
        ("http://[::1]/", None),
        ("http://[::1", None),
        ("", None),
        ("\x00\x07", None),
        ("😀", None),
    ],
)
def test_registrable_domain(url: str, domain: str | None) -> None:
    assert registrable_domain(url) == domain


def test_name_matching(client: TestClient, schools: dict[str, str]) -> None:
    assert _verify(client, name="Zürich Achtsamkeit Institut") == [
        ("Zürich Achtsamkeit Institut", 1.0, True),
        ("Basel Achtsamkeit Zentrum", 0.615, False),
    ]
    # Case, accents and word order do not matter; a typo costs a little.
    assert _verify(client, name="institut ZURICH achtsamkeit")[0] == (
        "Zürich Achtsamkeit Institut",
        1.0,
        True,
    )
    assert _verify(client, name="Zurich Achtsamkeit Institt")[0] == (
        "Zürich Achtsamkeit Institut",
        0.981,
        True,
    )
    # The alternate (English) name counts.
    assert _verify(client, name="Zurich Mindfulness Institute")[0] == (
        "Zürich Achtsamkeit Institut",
        1.0,
        True,
    )
    # Two near-identical names: both strong, so neither is chosen.
    ambiguous = _verify(client, name="Centro de Atencao Plena")
    assert [(n, c) for n, _s, c in ambiguous[:2]] == [
        ("Centro de Atenção Plena", False),
        ("Centro de Atencao Plena Sul", False),
    ]
    assert ambiguous[0][1] == 1.0 and ambiguous[1][1] >= 0.9
    # A different country lowers the score below the bar.
    assert _verify(client, name="Zürich Achtsamkeit Institut", country="DE") == [
        ("Zürich Achtsamkeit Institut", 0.7, False)
    ]
    assert _verify(client, name="Zürich Achtsamkeit Institut", country="ch")[0][2] is True
    # Delisted schools are never candidates; nonsense finds nothing.
    assert _verify(client, name="Hidden School") == []
    assert _verify(client, name="qqqq xxxx") == []


def test_website_matching(client: TestClient, schools: dict[str, str]) -> None:
    assert _verify(client, website="achtsam.example.ch") == [
        ("Zürich Achtsamkeit Institut", 1.0, True),
    ]
    assert _verify(client, website="HTTPS://kurse.ACHTSAM.example.ch/anmeldung") == [
        ("Zürich Achtsamkeit Institut", 1.0, True),
    ]
    # Two schools under one registrable domain: both found, neither chosen.
    assert sorted(_verify(client, website="https://www.example.co.uk")) == [
        ("Leeds Mindfulness Collective", 1.0, False),
        ("Mindful Leeds", 1.0, False),
    ]
    # ... a name settles it.
    both = _verify(client, website="example.co.uk", name="Mindful Leeds")
    assert both[0] == ("Mindful Leeds", 1.0, True)
    assert both[1][0] == "Leeds Mindfulness Collective" and both[1][2] is False and both[1][1] < 0.9
    # Unknown TLDs use the default rule.
    assert _verify(client, website="www.plena.example.zzzz") == [("Centro de Atenção Plena", 1.0, True)]
    assert _verify(client, website="other.zzzz") == []
    # The right name with a wrong website is not chosen.
    wrong_site = _verify(client, name="Mindful Leeds", website="https://elsewhere.example.org")
    assert wrong_site[0] == ("Mindful Leeds", 0.85, False)


ODD = [
    "",
    " ",
    "x" * 10_000,
    "\x00\x01\x02",
    "Zu\x00rich",
    "😀🧘‍♀️🙏",
    "מרכז תל אביב לקשיבות",
    "مركز اليقظة الذهنية",
    "\u202eevil\u202c",
    "%00%ff",
    "' OR 1=1 --",
    "Z" + "\u0301" * 500,
]


def test_odd_input_is_never_a_server_error(client: TestClient, schools: dict[str, str]) -> None:
    for value in ODD:
        for params in (
            {"name": value},
            {"website": value},
            {"name": value, "website": value, "country": value},
        ):
            r = client.get("/v1/verify", params=params)
            assert r.status_code in (200, 422), (params, r.status_code, r.text)
            if r.status_code == 200:
                assert isinstance(r.json()["data"], list)
            else:
                assert_problem(r, 422)
    # Invalid UTF-8 and NUL sent raw in the query string.
    for raw in ("name=%ff%fe", "name=%ED%A0%80", "website=%00", "name=a&name=b", "website=http://%5B::1"):
        r = client.get(f"/v1/verify?{raw}")
        assert r.status_code in (200, 422), (raw, r.status_code, r.text)
    assert_problem(client.get("/v1/verify"), 422)
    assert_problem(client.get("/v1/verify", params={"name": "x" * 10_000}), 422)
    assert_problem(client.get("/v1/verify", params={"name": "Zürich", "country": "ZZ"}), 422)
    assert client.get("/v1/verify", params={"name": "😀"}).json() == {"data": []}


def test_reasons_name_what_matched(client: TestClient, schools: dict[str, str]) -> None:
    r = client.get(
        "/v1/verify",
        params={"name": "Zurich Mindfulness Institute", "website": "achtsam.example.ch", "country": "CH"},
    )
    best = r.json()["data"][0]
    assert best["reason"] == (
        "name 1.00 (Zurich Mindfulness Institute); website domain matches; country matches"
    )
    assert (best["score"], best["chosen"]) == (1.0, True)


@pytest.mark.parametrize("path", ["in place", "rebuilt: too many changes", "rebuilt: events pruned"])
def test_the_index_follows_listing_renaming_and_delisting(
    client: TestClient,
    schools: dict[str, str],
    make_school: Callable[..., dict[str, Any]],
    steward: dict[str, str],
    session_factory: Any,
    monkeypatch: Any,
    path: str,
) -> None:
    """The name index is brought up to date from the school events since it was made (or
    rebuilt whole when there are too many, or retention pruned them): a school listed, renamed
    or delisted after a first verification is found, found by its new name, or gone."""
    import datetime as dt

    from service.core.db import utcnow
    from service.ops import retention
    from service.registry import verify

    assert _verify(client, name="Mindful Leeds")[0][0] == "Mindful Leeds"  # the index is made
    if path == "rebuilt: too many changes":
        monkeypatch.setattr(verify, "MAX_INCREMENTAL", 1)
    make_school(name="Stille Zee Mindfulness", country="NL")
    leeds = client.get(f"/v1/schools/{schools['Mindful Leeds']}")
    r = client.patch(
        f"/v1/schools/{schools['Mindful Leeds']}",
        json={"name": "Aire Valley Mindfulness"},
        headers={
            **steward,
            "If-Match": leeds.headers["etag"],
            "Content-Type": "application/merge-patch+json",
        },
    )
    assert r.status_code == 200, r.text
    assert (
        client.post(f"/v1/schools/{schools['Basel Achtsamkeit Zentrum']}/delist", headers=steward).status_code
        == 200
    )
    if path == "rebuilt: events pruned":
        with session_factory() as s:
            assert retention.prune_events(s, now=utcnow() + dt.timedelta(days=4000), retention_days=1) > 0
    assert _verify(client, name="Stille Zee Mindfulness")[0] == ("Stille Zee Mindfulness", 1.0, True)
    assert _verify(client, name="Aire Valley Mindfulness")[0] == ("Aire Valley Mindfulness", 1.0, True)
    assert "Mindful Leeds" not in [n for n, _s, _c in _verify(client, name="Mindful Leeds")]
    found = [n for n, _s, _c in _verify(client, name="Basel Achtsamkeit Zentrum", country="CH")]
    assert "Basel Achtsamkeit Zentrum" not in found and found
    assert _verify(client, name="Zürich Achtsamkeit Institut")[0] == (
        "Zürich Achtsamkeit Institut",
        1.0,
        True,
    )
