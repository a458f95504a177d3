"""ETags and conditional requests on version reads (DESIGN §4, RFC 9110 §13)."""

from __future__ import annotations

import time
from typing import Any

from tests.conftest import assert_problem
from tests.helpers import wait_for
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


def _validating_last_modified(c: Any) -> Any:
    """The read whose Last-Modified validates it: a change given a second of its own may lie
    a few seconds ahead of the clock (the fixture writes several times a second); until then
    the header says now, which does not validate, and If-Modified-Since answers 200."""

    def read() -> Any:
        r = c.get(V2)
        return (
            r
            if c.get(V2, headers={"If-Modified-Since": r.headers["last-modified"]}).status_code == 304
            else None
        )

    return wait_for(read, timeout=15.0, interval=0.2, what="a Last-Modified not ahead of the clock")


def test_if_none_match_wins_over_if_modified_since(demo: Api) -> None:
    c = demo.client
    first = _validating_last_modified(c)
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


def test_two_changes_in_one_second_never_share_a_last_modified(demo: Api) -> None:
    """HTTP dates have whole seconds: two changes of a document in one second gave both states
    one Last-Modified, and If-Modified-Since with the first answered 304 for the second (found
    by the fresh-eyes review: es and nl translations published in the same second). Each change
    now gets a second of its own, so the first state's date never validates the second."""
    c = demo.client
    r = c.put(f"{V2}/translations/de", json=translation_of(DEMO_V2, "DE"), headers=demo.headers)
    assert r.status_code == 201, r.text
    first = c.get(V2)
    r = c.put(f"{V2}/translations/fr", json=translation_of(DEMO_V2, "FR"), headers=demo.headers)
    assert r.status_code == 201, r.text
    second = c.get(V2)
    assert second.headers["etag"] != first.headers["etag"]
    for _ in range(3):  # also once the second change's own second has come
        assert c.get(V2, headers={"If-Modified-Since": first.headers["last-modified"]}).status_code == 200
        time.sleep(0.5)
    # /current is the same version: the same holds there
    current = "/v1/standards/demo/current"
    assert c.get(current, headers={"If-Modified-Since": first.headers["last-modified"]}).status_code == 200
