"""Public reads: documents, versions, clauses, languages, media types and their problems."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from service.core.jsonutil import dumps
from tests.conftest import assert_problem
from tests.standards.conftest import DEMO_V1, DEMO_V2, Api, translation_of

DOC = "/v1/standards/demo"


def test_documents_list_and_metadata(demo: Api) -> None:
    c = demo.client
    r = c.get("/v1/standards")
    assert r.status_code == 200
    assert r.json() == {
        "data": [
            {
                "id": "demo",
                "slug": "demo",
                "title": "Demo standards",
                "language": "en",
                "current_version": "2.0",
                "versions": ["1.0", "2.0"],
                "links": {
                    "self": "http://testserver/v1/standards/demo",
                    "current": "http://testserver/v1/standards/demo/current",
                    "versions": "http://testserver/v1/standards/demo/versions",
                },
            }
        ],
        "next_cursor": None,
    }
    assert r.headers["cache-control"] == "public, max-age=60"
    doc = c.get(DOC)
    assert doc.json() == r.json()["data"][0]
    assert doc.headers["etag"].startswith('"')


def test_current_and_version_reads(demo: Api) -> None:
    c = demo.client
    cur = c.get(f"{DOC}/current")
    assert cur.status_code == 200
    assert cur.headers["cache-control"] == "public, max-age=60"
    assert cur.headers["content-location"] == "/v1/standards/demo/versions/2.0"
    assert cur.headers["content-language"] == "en"
    body = cur.json()
    assert (body["version"], body["status"], body["language"]) == ("2.0", "published", "en")
    assert [s["key"] for s in body["sections"]] == ["S1", "S2", "S3"]
    assert [(c["key"], c["order"]) for c in body["sections"][0]["clauses"]] == [
        ("S1.1", 1),
        ("S1.4", 2),
        ("S1.2", 3),
    ]
    assert body["regional_notes"] == DEMO_V2["regional_notes"]
    assert body["contributors"] == DEMO_V2["contributors"]
    v2 = c.get(f"{DOC}/versions/2.0")
    assert v2.headers["cache-control"] == "public, max-age=3600"
    assert v2.json() == body
    v1 = c.get(f"{DOC}/versions/1.0").json()
    assert v1["status"] == "superseded"
    assert v1["sections"][1]["clauses"][1]["text"] == DEMO_V1["sections"][1]["clauses"][1]["text"]


def test_versions_list_hides_drafts_from_the_public(demo: Api) -> None:
    demo.draft("2.1", based_on="2.0")
    public = demo.client.get(f"{DOC}/versions")
    assert [(v["version"], v["status"]) for v in public.json()["data"]] == [
        ("1.0", "superseded"),
        ("2.0", "published"),
    ]
    assert public.json()["next_cursor"] is None
    editor = demo.client.get(f"{DOC}/versions", headers=demo.headers)
    assert [v["version"] for v in editor.json()["data"]] == ["1.0", "2.0", "2.1"]
    assert editor.headers["cache-control"] == "private, no-cache"
    page = demo.client.get(f"{DOC}/versions", params={"limit": 1}, headers=demo.headers)
    assert [v["version"] for v in page.json()["data"]] == ["1.0"]
    assert page.headers["link"].endswith('>; rel="next"')
    nxt = demo.client.get(f"{DOC}/versions", params={"limit": 1, "cursor": page.json()["next_cursor"]})
    assert [v["version"] for v in nxt.json()["data"]] == ["2.0"]
    # the draft itself: 404 for the public, private for the editor
    assert_problem(demo.client.get(f"{DOC}/versions/2.1"), 404)
    draft = demo.client.get(f"{DOC}/versions/2.1", headers=demo.headers)
    assert draft.status_code == 200
    assert draft.json()["status"] == "draft"
    assert draft.headers["cache-control"] == "private, no-cache"


def test_clause_read(demo: Api) -> None:
    r = demo.client.get(f"{DOC}/versions/1.0/clauses/S1.2")
    assert r.status_code == 200
    assert r.json() == {
        "document": "demo",
        "version": "1.0",
        "status": "superseded",
        "language": "en",
        "key": "S1.2",
        "order": 2,
        "section": {"key": "S1", "title": "Practice"},
        "kind": "requirement",
        "applies_to": "teacher",
        "text": "Attend a retreat yearly.",
        "regional_notes": DEMO_V1["regional_notes"],
        "links": {
            "self": "http://testserver/v1/standards/demo/versions/1.0/clauses/S1.2",
            "version": "http://testserver/v1/standards/demo/versions/1.0",
        },
    }
    md = demo.client.get(f"{DOC}/versions/1.0/clauses/S1.2", headers={"Accept": "text/markdown"})
    assert md.text.startswith("### S1.2\n")
    assert_problem(demo.client.get(f"{DOC}/versions/1.0/clauses/S9.9"), 404)


def test_not_found_and_method_problems(demo: Api) -> None:
    c = demo.client
    for path in (
        "/v1/standards/nope",
        "/v1/standards/nope/current",
        f"{DOC}/versions/9.0",
        f"{DOC}/versions/latest",
        "/v1/standards/",
        f"{DOC}/current/",
    ):
        assert_problem(c.get(path), 404)
    assert_problem(c.delete(f"{DOC}/versions/2.0", headers=demo.headers), 405)
    assert_problem(c.post(f"{DOC}/current", headers=demo.headers), 405)


def test_no_current_version_is_404(api: Api) -> None:
    api.draft("1.0")
    assert_problem(api.client.get(f"{DOC}/current"), 404)
    assert api.client.get(DOC).json()["current_version"] is None


def test_media_types(demo: Api) -> None:
    c = demo.client
    md = c.get(f"{DOC}/versions/2.0", headers={"Accept": "text/markdown"})
    assert md.headers["content-type"] == "text/markdown; charset=utf-8"
    lines = md.text.splitlines()
    assert lines[0] == "# Demo standards"
    assert "## S1 Practice" in lines and "### S1.4" in lines
    assert lines[lines.index("### S1.4") + 4] == "Take supervision."
    html = c.get(f"{DOC}/versions/2.0", headers={"Accept": "text/html"})
    assert html.headers["content-type"] == "text/html; charset=utf-8"
    assert html.text.startswith('<article class="imi-standards" lang="en" dir="ltr"')
    assert "<html" not in html.text and "<body" not in html.text
    assert 'id="section-S2"' in html.text and 'id="clause-S1.4"' in html.text
    q = c.get(f"{DOC}/versions/2.0", headers={"Accept": "text/html;q=0.5, text/markdown;q=0.9"})
    assert q.headers["content-type"].startswith("text/markdown")
    assert (
        c.get(f"{DOC}/versions/2.0", headers={"Accept": "*/*"}).headers["content-type"] == "application/json"
    )
    body = assert_problem(c.get(f"{DOC}/versions/2.0", headers={"Accept": "application/xml"}), 406)
    assert body["available"] == ["application/json", "text/markdown", "text/html"]
    assert_problem(c.get(f"{DOC}/diff?from=1.0&to=2.0", headers={"Accept": "text/html"}), 406)


def test_language_fallback_and_malformed_tags(demo: Api) -> None:
    c = demo.client
    r = c.put(
        f"{DOC}/versions/2.0/translations/de", json=translation_of(DEMO_V2, "DE:"), headers=demo.headers
    )
    assert r.status_code == 201, r.text
    de = c.get(f"{DOC}/current", params={"lang": "de"})
    assert de.headers["content-language"] == "de"
    assert de.json()["language"] == "de"
    assert de.json()["sections"][0]["clauses"][0]["text"] == "DE: Keep a daily practice."
    assert de.json()["translations"] == ["de"]
    # de-AT is served by de (RFC 4647 lookup); fr falls back to the source language
    assert c.get(f"{DOC}/current", params={"lang": "de-AT"}).headers["content-language"] == "de"
    fr = c.get(f"{DOC}/versions/2.0", params={"lang": "fr"})
    assert fr.status_code == 200
    assert fr.headers["content-language"] == "en"
    assert fr.json()["sections"][0]["clauses"][0]["text"] == "Keep a daily practice."
    # 1.0 has no translation
    assert c.get(f"{DOC}/versions/1.0", params={"lang": "de"}).headers["content-language"] == "en"
    for bad in ("en_US", "x", "123456789", "", "de--AT"):
        body = assert_problem(c.get(f"{DOC}/current", params={"lang": bad}), 422)
        assert "BCP 47" in body["detail"]


def test_rtl_direction_for_hebrew(demo: Api) -> None:
    r = demo.client.put(
        f"{DOC}/versions/2.0/translations/he", json=translation_of(DEMO_V2, "עברית"), headers=demo.headers
    )
    assert r.status_code == 201, r.text
    html = demo.client.get(f"{DOC}/versions/2.0", params={"lang": "he"}, headers={"Accept": "text/html"})
    assert html.headers["content-language"] == "he"
    assert html.text.startswith('<article class="imi-standards" lang="he" dir="rtl"')
    en = demo.client.get(f"{DOC}/versions/2.0", headers={"Accept": "text/html"})
    assert 'dir="ltr"' in en.text.split(">", 1)[0]


def test_html_escapes_and_sanitises(api: Api) -> None:
    evil = {
        "title": "Tom & Jerry <b>",
        "summary": "",
        "sections": [
            {
                "key": "X1",
                "title": "<img src=x onerror=alert(1)>",
                "clauses": [
                    {
                        "key": "X1.1",
                        "kind": "guidance",
                        "applies_to": "teacher",
                        "text": "Hello <script>alert('x')</script> **bold** [link](javascript:alert(1))",
                    }
                ],
            }
        ],
        "regional_notes": [{"region": "nl", "target": "X1.1", "text": "<i>note</i>"}],
    }
    api.release("1.0", evil)
    html = api.client.get(f"{DOC}/current", headers={"Accept": "text/html"}).text
    assert "<script" not in html and "<img" not in html and "href=" not in html and "<i>" not in html
    assert "Hello &lt;script&gt;alert('x')&lt;/script&gt; <strong>bold</strong>" in html
    assert "[link](javascript:alert(1))" in html  # an unsafe link stays inert text
    assert "<strong>bold</strong>" in html
    assert "<h1>Tom &amp; Jerry &lt;b&gt;</h1>" in html
    note = '<aside class="imi-regional-note" data-region="NL"><strong>NL:</strong> &lt;i&gt;note&lt;/i&gt;'
    assert note + "</aside>" in html
    md = api.client.get(f"{DOC}/current", headers={"Accept": "text/markdown"}).text
    assert md.startswith("# Tom \\& Jerry \\<b\\>\n")


def test_head_works_like_get(demo: Api) -> None:
    get = demo.client.get(f"{DOC}/current")
    head = demo.client.head(f"{DOC}/current")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["etag"] == get.headers["etag"]
    assert head.headers["content-length"] == str(len(get.content))


def test_snapshot_interface(demo: Api, session_factory: object) -> None:
    from service.standards import service

    with session_factory() as session:  # type: ignore[operator]
        assert service.published_versions(session=session, slug="demo") == ["1.0", "2.0"]
        assert service.current_version_number(session=session, slug="demo") == "2.0"
        assert service.current_version_number(session=session, slug="nope") is None
        snap = service.current_versions_for_snapshot(session=session, base_url="http://testserver")
    assert [s["version"] for s in snap] == ["2.0"]
    assert json.loads(dumps(snap[0])) == demo.client.get(f"{DOC}/current").json()


def test_documents_pagination(api: Api, client: TestClient) -> None:
    for slug in ("a-doc", "b-doc", "c-doc"):
        api.draft("1.0", slug=slug)
    first = client.get("/v1/standards", params={"limit": 2}).json()
    assert [d["slug"] for d in first["data"]] == ["a-doc", "b-doc"]
    second = client.get("/v1/standards", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [d["slug"] for d in second["data"]] == ["c-doc"]
    assert second["next_cursor"] is None
    assert_problem(client.get("/v1/standards", params={"cursor": "%%%"}), 422)
