"""The sample schools load through the service functions, in every status, searchable."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from service.sample.loader import load_sample

CONTINENT_OF = {
    **dict.fromkeys(
        [
            "CH",
            "DE",
            "NL",
            "FR",
            "ES",
            "IT",
            "PT",
            "PL",
            "CZ",
            "RU",
            "UA",
            "GR",
            "TR",
            "GB",
            "IE",
            "SE",
            "FI",
            "DK",
        ],
        "Europe",
    ),
    **dict.fromkeys(["JP", "KR", "TW", "IN", "SG", "TH", "IL", "JO"], "Asia"),
    **dict.fromkeys(["ZA", "KE", "EG", "SN"], "Africa"),
    **dict.fromkeys(["CA", "US", "MX"], "North America"),
    **dict.fromkeys(["BR", "AR", "CL"], "South America"),
    **dict.fromkeys(["AU", "NZ"], "Oceania"),
}


def _all(client: TestClient, headers: dict[str, str] | None = None, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 200, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/schools", params=query, headers=headers or {}).json()
        out += page["data"]
        cursor = page["next_cursor"]
        if not cursor:
            return out


def test_sample_schools(app: Any, client: TestClient, steward: dict[str, str]) -> None:
    assert load_sample(engine=app.state.engine, settings=app.state.settings) is True
    public = _all(client)
    everyone = _all(client, steward)
    assert (len(public), len(everyone)) == (46, 47)
    statuses: dict[str, int] = {}
    for school in everyone:
        statuses[school["alignment"]["status"]] = statuses.get(school["alignment"]["status"], 0) + 1
    assert statuses == {
        "aligned": 23,
        "reaffirmation_due": 9,
        "lapsed": 3,
        "withdrawn": 3,
        "suspended": 3,
        "none": 6,
    }
    assert {CONTINENT_OF[s["country"]] for s in public} == {
        "Europe",
        "Asia",
        "Africa",
        "North America",
        "South America",
        "Oceania",
    }
    assert all("contact" not in s for s in public)
    due = [s for s in public if s["alignment"]["status"] == "reaffirmation_due"]
    assert {s["alignment"]["version"] for s in due} == {"1.0"}
    assert {s["alignment"]["version"] for s in public if s["alignment"]["status"] == "aligned"} == {"2.0"}

    def names(q: str) -> list[str]:
        return [s["name"] for s in client.get("/v1/schools", params={"q": q}).json()["data"]]

    assert names("zurich") == ["Zürcher Institut für Achtsamkeit"]
    assert names("ｓａｏ ｐａｕｌｏ") == ["Centro Paulista de Atenção Plena"]
    assert names("tokyo") == ["東京マインドフルネス研究所"]
    assert names("МОСКВА") == ["Московский центр осознанности"]
    assert names("istanbul") == ["İstanbul Farkındalık Merkezi"]
    assert names("lodz") == ["Ośrodek Uważności w Łodzi"]
    assert names("amman") == ["مركز اليقظة الذهنية في عمّان"]
    assert names("tel aviv") == ["מרכז תל אביב לקשיבות"]

    tokyo = client.get("/v1/verify", params={"name": "Tokyo Mindfulness Institute", "country": "JP"}).json()
    assert (tokyo["data"][0]["school"]["name"], tokyo["data"][0]["chosen"]) == (
        "東京マインドフルネス研究所",
        True,
    )
    isar = next(s for s in public if s["name"] == "Achtsamkeitszentrum an der Isar")
    affiliation = client.get(f"/v1/schools/{isar['id']}/affiliation").json()
    assert (affiliation["affiliated"], affiliation["status"], affiliation["current_version"]) == (
        True,
        "reaffirmation_due",
        "2.0",
    )
    history = client.get(f"/v1/schools/{isar['id']}/alignment/history").json()["data"]
    assert [(h["action"], h["actor"]) for h in history] == [
        ("stated", "steward"),
        ("reaffirmation_required", "system"),
    ]
    # Loading twice changes nothing.
    assert load_sample(engine=app.state.engine, settings=app.state.settings) is False
