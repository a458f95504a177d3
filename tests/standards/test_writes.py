"""Editor writes: drafts, replace, publish, withdraw, translations, and their problems."""

from __future__ import annotations

from tests.conftest import assert_problem
from tests.standards.conftest import DEMO_V1, DEMO_V2, Api, translation_of

DOC = "/v1/standards/demo"


def test_create_draft(api: Api) -> None:
    r = api.draft("1.0")
    assert r.headers["location"] == "http://testserver/v1/standards/demo/versions/1.0"
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert (body["version"], body["status"], body["title"], body["sections"]) == (
        "1.0",
        "draft",
        "Demo standards",
        [],
    )
    assert r.headers["etag"] == api.client.get(f"{DOC}/versions/1.0", headers=api.headers).headers["etag"]


def test_create_draft_problems(demo: Api) -> None:
    c, h = demo.client, demo.headers
    for version in ("2.0", "1.5", "0.9"):
        body = assert_problem(c.post(f"{DOC}/versions", json={"version": version}, headers=h), 409)
        assert body["highest_version"] == "2.0"
    assert_problem(c.post(f"{DOC}/versions", json={"version": "2.01"}, headers=h), 422)
    assert_problem(c.post(f"{DOC}/versions", json={"version": "3.0", "colour": "red"}, headers=h), 422)
    assert_problem(c.post(f"{DOC}/versions", json={"version": "3.0", "based_on": "1.7"}, headers=h), 422)
    assert_problem(c.post("/v1/standards/other/versions", json={"version": "1.0"}, headers=h), 404)
    assert_problem(c.post(f"{DOC}/versions", json={"version": "3.0"}), 401)
    big = {"version": "3.0", "document": {"title": "x" * (1024 * 1024 + 10)}}
    assert_problem(c.post(f"{DOC}/versions", json=big, headers=h), 413)


def test_based_on_copies_content_and_hash(demo: Api) -> None:
    r = demo.draft("2.1", based_on="2.0")
    draft = r.json()
    current = demo.client.get(f"{DOC}/current").json()
    assert draft["sections"] == current["sections"]
    assert draft["regional_notes"] == current["regional_notes"]
    assert draft["content_hash"] == current["content_hash"]
    assert draft["based_on"] == "2.0"
    assert draft["translations"] == []


def test_replace_validation(demo: Api) -> None:
    c, h = demo.client, demo.headers
    demo.draft("2.1", based_on="2.0")
    url = f"{DOC}/versions/2.1"
    got = c.get(url, headers=h)
    tag = {**h, "If-Match": got.headers["etag"]}
    body = got.json()
    unknown = {**body, "colour": "red"}
    problem = assert_problem(c.put(url, json=unknown, headers=tag), 422)
    assert problem["errors"][0]["loc"] == ["body", "colour"]
    dup = {**body, "sections": [body["sections"][0], body["sections"][0]]}
    assert "used twice" in assert_problem(c.put(url, json=dup, headers=tag), 422)["detail"]
    dangling = {**body, "regional_notes": [{"region": "DE", "target": "Z9", "text": "x"}]}
    assert_problem(c.put(url, json=dangling, headers=tag), 422)
    for region in ("XX", "999", "DEU"):
        bad = {**body, "regional_notes": [{"region": region, "target": "S1", "text": "x"}]}
        assert_problem(c.put(url, json=bad, headers=tag), 422)
    bad_kind = {
        **body,
        "sections": [
            {**body["sections"][0], "clauses": [{**body["sections"][0]["clauses"][0], "kind": "must"}]}
        ],
    }
    assert_problem(c.put(url, json=bad_kind, headers=tag), 422)
    naive = {**body, "effective_from": "2026-03-01T10:00:00"}
    assert_problem(c.put(url, json=naive, headers=tag), 422)
    # read-only members are ignored: a changed status or hash changes nothing
    ignored = {**body, "status": "published", "content_hash": "sha256:0", "links": {}, "translations": ["xx"]}
    ok = c.put(url, json=ignored, headers=tag)
    assert ok.status_code == 200
    assert ok.json()["status"] == "draft"
    assert ok.json()["content_hash"] == body["content_hash"]


def test_published_content_is_immutable(demo: Api) -> None:
    c, h = demo.client, demo.headers
    got = c.get(f"{DOC}/versions/2.0")
    body = {**got.json(), "title": "Changed"}
    assert_problem(
        c.put(f"{DOC}/versions/2.0", json=body, headers={**h, "If-Match": got.headers["etag"]}), 409
    )
    assert_problem(c.post(f"{DOC}/versions/2.0/publish", headers=h), 409)
    assert c.get(f"{DOC}/versions/2.0").json()["content_hash"] == got.json()["content_hash"]


def test_publish_rules(demo: Api) -> None:
    c, h = demo.client, demo.headers
    demo.draft("3.0")
    assert "no clauses" in assert_problem(c.post(f"{DOC}/versions/3.0/publish", headers=h), 409)["detail"]
    demo.replace("3.0", DEMO_V2)
    demo.draft("4.0", based_on="2.0")
    demo.publish("4.0")
    body = assert_problem(c.post(f"{DOC}/versions/3.0/publish", headers=h), 409)
    assert body["highest_version"] == "4.0"
    assert_problem(c.post(f"{DOC}/versions/3.0/publish", json={"colour": 1}, headers=h), 422)
    assert_problem(c.post(f"{DOC}/versions/9.0/publish", headers=h), 404)


def test_effective_from_offset_round_trip(demo: Api) -> None:
    demo.draft("2.1", based_on="2.0")
    r = demo.publish(
        "2.1", body={"effective_from": "2026-03-01T10:00:00-08:00", "summary": "Editorial fixes."}
    )
    assert r.json()["effective_from"] == "2026-03-01T18:00:00Z"
    assert r.json()["summary"] == "Editorial fixes."
    current = demo.client.get(f"{DOC}/current").json()
    assert current["effective_from"] == "2026-03-01T18:00:00Z"
    assert current["published_at"].endswith("Z")


def test_withdraw_restores_previous(demo: Api) -> None:
    c, h = demo.client, demo.headers
    r = c.post(f"{DOC}/versions/2.0/withdraw", headers=h)
    assert r.status_code == 200
    assert r.json()["status"] == "withdrawn"
    assert r.json()["withdrawn_at"].endswith("Z")
    assert c.get(f"{DOC}/current").json()["version"] == "1.0"
    assert c.get(f"{DOC}/versions/1.0").json()["status"] == "published"
    assert c.get(DOC).json()["versions"] == ["1.0"]
    assert_problem(c.post(f"{DOC}/versions/2.0/withdraw", headers=h), 409)
    # a withdrawn version's number is not reused, and a higher one can be published
    assert_problem(c.post(f"{DOC}/versions", json={"version": "2.0"}, headers=h), 409)
    demo.draft("2.1", based_on="2.0")
    assert_problem(c.post(f"{DOC}/versions/2.1/withdraw", headers=h), 409)  # drafts are not withdrawn
    demo.publish("2.1")
    assert [(v["version"], v["status"]) for v in c.get(f"{DOC}/versions").json()["data"]] == [
        ("1.0", "superseded"),
        ("2.0", "withdrawn"),
        ("2.1", "published"),
    ]
    c.post(f"{DOC}/versions/2.1/withdraw", headers=h)
    c.post(f"{DOC}/versions/1.0/withdraw", headers=h)
    assert_problem(c.get(f"{DOC}/current"), 404)


def test_translation_on_draft_then_publish(api: Api) -> None:
    c, h = api.client, api.headers
    api.draft("1.0")
    api.replace("1.0", DEMO_V1)
    url = f"{DOC}/versions/1.0/translations/nl"
    first = c.put(url, json=translation_of(DEMO_V1, "NL1"), headers=h)
    assert first.status_code == 201
    assert first.json()["status"] == "draft"
    second = c.put(url, json=translation_of(DEMO_V1, "NL2"), headers=h)
    assert second.status_code == 200
    nl = c.get(f"{DOC}/versions/1.0", params={"lang": "nl"}, headers=h).json()
    assert nl["title"] == "NL2 Demo standards"
    api.publish("1.0")
    public = c.get(f"{DOC}/current", params={"lang": "nl"}).json()
    assert public["translations"] == ["nl"]
    assert public["sections"][2]["clauses"][0]["text"] == "NL2 One."
    assert_problem(c.put(url, json=translation_of(DEMO_V1, "NL3"), headers=h), 409)
    events = [e["type"] for e in c.get("/v1/events").json()["data"]]
    assert events == ["standards.version.published", "standards.translation.published"]


def test_translation_problems(demo: Api) -> None:
    c, h = demo.client, demo.headers
    url = f"{DOC}/versions/2.0/translations"
    partial = translation_of(DEMO_V2, "DE")
    partial["sections"] = partial["sections"][:2]
    body = assert_problem(c.put(f"{url}/de", json=partial, headers=h), 422)
    assert "section S3 is not translated" in body["detail"]
    assert_problem(c.put(f"{url}/en", json=translation_of(DEMO_V2, "EN"), headers=h), 422)
    assert_problem(c.put(f"{url}/de_DE", json=translation_of(DEMO_V2, "DE"), headers=h), 422)
    assert_problem(c.put(f"{url}/de", json={**translation_of(DEMO_V2, "DE"), "x": 1}, headers=h), 422)
    ok = c.put(f"{url}/pt-br", json=translation_of(DEMO_V2, "PT"), headers=h)
    assert ok.status_code == 201
    assert ok.json()["language"] == "pt-BR"
    assert ok.json()["status"] == "published"
    assert ok.headers["location"] == "http://testserver/v1/standards/demo/versions/2.0?lang=pt-BR"
    assert_problem(c.put(f"{url}/pt-BR", json=translation_of(DEMO_V2, "PT"), headers=h), 409)
    c.post(f"{DOC}/versions/1.0/withdraw", headers=h)
    assert_problem(
        c.put(f"{DOC}/versions/1.0/translations/de", json=translation_of(DEMO_V1, "D"), headers=h), 409
    )


def test_writes_are_audited(demo: Api, session_factory: object) -> None:
    from service.core.audit import list_entries

    with session_factory() as session:  # type: ignore[operator]
        actions = [
            e.action for e in reversed(list_entries(session, limit=50)) if e.action.startswith("standards.")
        ]
    assert actions == [
        "standards.document.create",
        "standards.version.create",
        "standards.version.update",
        "standards.version.publish",
        "standards.version.create",
        "standards.version.update",
        "standards.version.publish",
    ]
