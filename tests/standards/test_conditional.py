"""ETags and conditional requests on version reads (DESIGN §4, RFC 9110 §13)."""

from __future__ import annotations

from tests.conftest import assert_problem
from tests.standards.conftest import DEMO_V2, Api, translation_of

V2 = "/v1/standards/demo/versions/2.0"


def test_if_none_match_forms(demo: Api) -> None:
    c = demo.client
    first = c.get(V2)
    etag = first.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    for header in (etag, f"W/{etag}", f'"nope", {etag}', f'W/"nope", W/{etag}', "*"):
        r = c.get(V2, headers={"If-None-Match": header})
        assert r.status_code == 304, header
        assert r.content == b""
        assert r.headers["etag"] == etag
        assert r.headers["cache-control"] == "public, max-age=3600"
    other = c.get(V2, headers={"If-None-Match": '"nope", W/"other"'})
    assert other.status_code == 200
    assert other.content == first.content


def test_if_none_match_wins_over_if_modified_since(demo: Api) -> None:
    c = demo.client
    first = c.get(V2)
    last_modified = first.headers["last-modified"]
    assert last_modified.endswith(" GMT")
    assert c.get(V2, headers={"If-Modified-Since": last_modified}).status_code == 304
    assert c.get(V2, headers={"If-Modified-Since": "Thu, 01 Jan 2015 00:00:00 GMT"}).status_code == 200
    both = c.get(V2, headers={"If-None-Match": '"stale"', "If-Modified-Since": last_modified})
    assert both.status_code == 200
    both = c.get(
        V2,
        headers={
            "If-None-Match": first.headers["etag"],
            "If-Modified-Since": "Thu, 01 Jan 2015 00:00:00 GMT",
        },
    )
    assert both.status_code == 304


def test_etag_differs_per_media_type_language_and_status(demo: Api) -> None:
    c = demo.client
    json_tag = c.get(V2).headers["etag"]
    md_tag = c.get(V2, headers={"Accept": "text/markdown"}).headers["etag"]
    html_tag = c.get(V2, headers={"Accept": "text/html"}).headers["etag"]
    assert len({json_tag, md_tag, html_tag}) == 3
    # a JSON ETag does not validate the HTML representation
    assert c.get(V2, headers={"Accept": "text/html", "If-None-Match": json_tag}).status_code == 200

    r = c.put(f"{V2}/translations/de", json=translation_of(DEMO_V2, "DE"), headers=demo.headers)
    assert r.status_code == 201
    de_tag = c.get(V2, params={"lang": "de"}).headers["etag"]
    en_after = c.get(V2).headers["etag"]
    assert de_tag != en_after
    assert en_after != json_tag  # the translations list is part of the representation

    before = c.get(V2)
    demo.draft("3.0", based_on="2.0")
    demo.publish("3.0")
    after = c.get(V2)
    assert after.json()["status"] == "superseded"
    assert after.headers["etag"] != before.headers["etag"]
    assert c.get(V2, headers={"If-None-Match": before.headers["etag"]}).status_code == 200


def test_draft_put_needs_if_match(demo: Api) -> None:
    c = demo.client
    demo.draft("2.1", based_on="2.0")
    url = "/v1/standards/demo/versions/2.1"
    got = c.get(url, headers=demo.headers)
    body = got.json()
    body["title"] = "Edited"
    assert_problem(c.put(url, json=body, headers=demo.headers), 428)
    stale = assert_problem(c.put(url, json=body, headers={**demo.headers, "If-Match": '"stale"'}), 412)
    assert stale["current_etag"] == got.headers["etag"]
    weak = c.put(url, json=body, headers={**demo.headers, "If-Match": f"W/{got.headers['etag']}"})
    assert_problem(weak, 412)  # If-Match uses strong comparison
    ok = c.put(url, json=body, headers={**demo.headers, "If-Match": got.headers["etag"]})
    assert ok.status_code == 200
    assert ok.json()["title"] == "Edited"
    assert ok.headers["etag"] != got.headers["etag"]
    assert ok.headers["etag"] == c.get(url, headers=demo.headers).headers["etag"]
    # the old tag is now stale
    assert_problem(c.put(url, json=body, headers={**demo.headers, "If-Match": got.headers["etag"]}), 412)


def test_publish_with_if_match(demo: Api) -> None:
    c = demo.client
    demo.draft("2.1", based_on="2.0")
    url = "/v1/standards/demo/versions/2.1"
    tag = c.get(url, headers=demo.headers).headers["etag"]
    assert_problem(c.post(f"{url}/publish", headers={**demo.headers, "If-Match": '"other"'}), 412)
    r = c.post(f"{url}/publish", headers={**demo.headers, "If-Match": tag})
    assert r.status_code == 200
