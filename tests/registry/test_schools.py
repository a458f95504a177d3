"""Schools: create, read, merge-patch, delist, erase contact; validation and school-bound 403s."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import BASE_URL, assert_problem


def _events(client: TestClient, *types: str) -> list[dict[str, Any]]:
    r = client.get("/v1/events", params=[("type", t) for t in types] + [("limit", 200)])
    assert r.status_code == 200, r.text
    return list(r.json()["data"])


def test_create_answers_201_with_location_and_the_stewards_view(
    client: TestClient, steward: dict[str, str]
) -> None:
    body = {
        "name": "  Zürich Achtsamkeit  ",
        "country": "ch",
        "city": "Zürich",
        "website": "https://www.achtsam.example.ch/",
        "programmes": ["mbsr", "MBCT", "MBSR"],
        "languages": ["de-ch", "en"],
        "alternate_names": [{"value": "Zurich Mindfulness", "lang": "en"}],
        "contact": {"email": "office@achtsam.example.org", "phone": "+41 44 000 00 00"},
    }
    r = client.post("/v1/schools", json=body, headers=steward)
    assert r.status_code == 201, r.text
    school = r.json()
    assert r.headers["Location"] == f"{BASE_URL}/v1/schools/{school['id']}"
    assert r.headers["Cache-Control"] == "private, no-store"
    assert school["id"].startswith("sch_") and len(school["id"]) == 30
    assert {k: school[k] for k in body} == {
        "name": "Zürich Achtsamkeit",
        "country": "CH",
        "city": "Zürich",
        "website": "https://www.achtsam.example.ch/",
        "programmes": ["MBSR", "MBCT"],
        "languages": ["de-CH", "en"],
        "alternate_names": [{"value": "Zurich Mindfulness", "lang": "en"}],
        "contact": {"email": "office@achtsam.example.org", "phone": "+41 44 000 00 00"},
    }
    assert school["listing"] == "listed"
    assert school["alignment"] == {
        "status": "none",
        "version": None,
        "stated_at": None,
        "stated_by": None,
        "evidence_url": None,
        "reaffirmation_due_by": None,
    }
    assert school["links"] == {
        "self": f"{BASE_URL}/v1/schools/{school['id']}",
        "affiliation": f"{BASE_URL}/v1/schools/{school['id']}/affiliation",
        "history": f"{BASE_URL}/v1/schools/{school['id']}/alignment/history",
    }
    [event] = _events(client, "school.listed")
    assert event["data"]["id"] == school["id"]
    assert "contact" not in event["data"]
    assert event["data"]["name"] == "Zürich Achtsamkeit"


def test_create_validates_every_field(client: TestClient, steward: dict[str, str]) -> None:
    bad: list[dict[str, Any]] = [
        {"country": "CH"},
        {"name": "X", "country": "XX"},
        {"name": "X", "country": "CHE"},
        {"name": "X", "country": "CH", "programmes": ["Yoga Nidra"]},
        {"name": "X", "country": "CH", "languages": ["not a tag"]},
        {"name": "X", "country": "CH", "website": "ftp://example.org"},
        {"name": "X", "country": "CH", "website": "example.org"},
        {"name": "X", "country": "CH", "website": "http://user:pw@x.example/"},  # would be published
        {"name": "X", "country": "CH", "colour": "blue"},
        {"name": "X", "country": "CH", "contact": {"email": "nope", "fax": "1"}},
        {"name": "   ", "country": "CH"},
        {"name": "Bad\u0000name", "country": "CH"},
        {"name": "X", "country": "CH", "alternate_names": [{"value": "Y", "lang": "xx-!!"}]},
    ]
    for body in bad:
        r = client.post("/v1/schools", json=body, headers=steward)
        assert_problem(r, 422)
    assert client.get("/v1/schools").json()["data"] == []


def test_only_stewards_create(client: TestClient, auth: Callable[..., dict[str, str]]) -> None:
    assert_problem(client.post("/v1/schools", json={"name": "X", "country": "CH"}), 401)
    school_client = auth("school:self", school_id="sch_x")
    assert_problem(
        client.post("/v1/schools", json={"name": "X", "country": "CH"}, headers=school_client), 403
    )


def test_get_is_public_cacheable_and_conditional(
    client: TestClient, make_school: Callable[..., dict[str, Any]]
) -> None:
    school = make_school(name="Lisboa Mindful", country="PT", contact={"email": "lisboa@example.org"})
    r = client.get(f"/v1/schools/{school['id']}")
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "public, max-age=60"
    assert "contact" not in r.json()
    etag = r.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    r2 = client.get(f"/v1/schools/{school['id']}", headers={"If-None-Match": f'W/{etag}, "other"'})
    assert r2.status_code == 304
    assert r2.headers["ETag"] == etag
    assert client.head(f"/v1/schools/{school['id']}").status_code == 200
    assert_problem(client.get("/v1/schools/sch_doesnotexist"), 404)


def test_patch_is_a_merge_patch_with_if_match(
    client: TestClient, make_school: Callable[..., dict[str, Any]], steward: dict[str, str]
) -> None:
    school = make_school(
        name="Atelier Pleine Conscience",
        country="FR",
        city="Lyon",
        programmes=["MBSR"],
        contact={"email": "lyon@example.org", "phone": "+33 4 00 00 00 00"},
    )
    url = f"/v1/schools/{school['id']}"
    assert_problem(client.patch(url, json={"city": "Paris"}, headers=steward), 428)
    stale = {**steward, "If-Match": '"stale"'}
    assert_problem(client.patch(url, json={"city": "Paris"}, headers=stale), 412)

    etag = client.get(url).headers["ETag"]
    patch = {"city": None, "programmes": ["MBCT", "msc"], "contact": {"phone": None}}
    r = client.patch(
        url,
        content=__import__("json").dumps(patch),
        headers={**steward, "If-Match": etag, "Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["city"] is None
    assert body["programmes"] == ["MBCT", "MSC"]
    assert body["name"] == "Atelier Pleine Conscience"
    assert body["contact"] == {"email": "lyon@example.org"}
    assert r.headers["ETag"] != etag

    new_etag = client.get(url).headers["ETag"]
    for bad in ({"name": None}, {"country": None}, {"listing": "delisted"}, {"programmes": ["Zen"]}):
        assert_problem(client.patch(url, json=bad, headers={**steward, "If-Match": new_etag}), 422)
    # The old ETag no longer matches.
    assert_problem(client.patch(url, json={"city": "Nice"}, headers={**steward, "If-Match": etag}), 412)

    updates = _events(client, "school.updated")
    assert len(updates) == 1
    assert updates[0]["data"]["programmes"] == ["MBCT", "MSC"]
    assert "contact" not in updates[0]["data"]


def test_school_clients_act_only_for_their_own_school(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    auth: Callable[..., dict[str, str]],
) -> None:
    mine = make_school(name="Mine", country="NL", contact={"email": "mine@example.org"})
    other = make_school(name="Other", country="NL")
    me = auth("school:self", school_id=mine["id"])

    own = client.get(f"/v1/schools/{mine['id']}", headers=me)
    assert own.json()["contact"] == {"email": "mine@example.org"}
    assert own.headers["Cache-Control"] == "private, no-store"
    r = client.patch(
        f"/v1/schools/{mine['id']}", json={"city": "Utrecht"}, headers={**me, "If-Match": own.headers["ETag"]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["city"] == "Utrecht"

    theirs = client.get(f"/v1/schools/{other['id']}", headers=me)
    assert "contact" not in theirs.json()
    etag = theirs.headers["ETag"]
    assert_problem(
        client.patch(f"/v1/schools/{other['id']}", json={"city": "X"}, headers={**me, "If-Match": etag}), 403
    )
    statement = {"version": "1.0", "evidence_url": "https://x.example.org", "stated_by": "Me"}
    assert_problem(client.post(f"/v1/schools/{other['id']}/alignment", json=statement, headers=me), 403)
    assert_problem(client.post(f"/v1/schools/{other['id']}/alignment/withdraw", headers=me), 403)
    assert_problem(client.post(f"/v1/schools/{mine['id']}/alignment/suspend", headers=me), 403)
    assert_problem(client.post(f"/v1/schools/{mine['id']}/delist", headers=me), 403)
    assert_problem(client.delete(f"/v1/schools/{mine['id']}/contact", headers=me), 403)
    assert client.get(f"/v1/schools/{other['id']}").json()["city"] is None


def test_delist_hides_the_school_from_the_public(
    client: TestClient, make_school: Callable[..., dict[str, Any]], steward: dict[str, str]
) -> None:
    gone = make_school(name="Delisted Centre", country="DE")
    make_school(name="Listed Centre", country="DE")
    r = client.post(f"/v1/schools/{gone['id']}/delist", headers=steward)
    assert r.status_code == 200
    assert r.json()["listing"] == "delisted"
    assert_problem(client.post(f"/v1/schools/{gone['id']}/delist", headers=steward), 409)

    assert [s["name"] for s in client.get("/v1/schools").json()["data"]] == ["Listed Centre"]
    names = [s["name"] for s in client.get("/v1/schools", headers=steward).json()["data"]]
    assert names == ["Delisted Centre", "Listed Centre"]
    body = assert_problem(client.get(f"/v1/schools/{gone['id']}"), 410)
    assert body["affiliation"] == f"/v1/schools/{gone['id']}/affiliation"
    assert client.get(f"/v1/schools/{gone['id']}", headers=steward).json()["listing"] == "delisted"
    [event] = _events(client, "school.delisted")
    assert (event["data"]["id"], event["data"]["listing"]) == (gone["id"], "delisted")


def test_erase_contact(
    client: TestClient, make_school: Callable[..., dict[str, Any]], steward: dict[str, str]
) -> None:
    school = make_school(name="Private", country="IE", contact={"email": "p@example.org"})
    r = client.delete(f"/v1/schools/{school['id']}/contact", headers=steward)
    assert r.status_code == 204
    assert r.content == b""
    assert client.get(f"/v1/schools/{school['id']}", headers=steward).json()["contact"] is None
    assert_problem(client.delete("/v1/schools/sch_unknown/contact", headers=steward), 404)
