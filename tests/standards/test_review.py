"""The open review of drafts through HTTP: review periods, comments, withdrawals, dispositions,
the publish gate, and what stays private."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

from service.core import jobs
from tests.conftest import assert_problem
from tests.standards.conftest import DEMO_V2, Api, in_days

DOC = "/v1/standards/demo"
V21 = f"{DOC}/versions/2.1"


def _comment(api: Api, headers: dict[str, str], version: str = "2.1", **body: Any) -> dict[str, Any]:
    r = api.client.post(
        f"{DOC}/versions/{version}/comments", json={"text": "A comment.", **body}, headers=headers
    )
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"http://testserver{DOC}/versions/{version}/comments/{r.json()['id']}"
    return dict(r.json())


def _cursor(after: str) -> str:
    """A comment-list cursor as the API spells it (base64url JSON), made by hand."""
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


def _dispose(api: Api, comment_id: str, outcome: str = "accepted", response: str = "Thank you.") -> Any:
    return api.client.post(
        f"{V21}/comments/{comment_id}/disposition",
        json={"outcome": outcome, "response": response},
        headers=api.headers,
    )


def test_a_draft_is_private_until_its_review_opens_and_public_after_it(demo: Api) -> None:
    c, h = demo.client, demo.headers
    demo.draft("2.1", based_on="2.0")
    for path in (V21, f"{V21}/comments", f"{V21}/review", f"{DOC}/diff?from=2.0&to=2.1"):
        assert_problem(c.get(path), 404)
    assert [v["version"] for v in c.get(f"{DOC}/versions").json()["data"]] == ["1.0", "2.0"]

    closes = in_days(30)
    opened = c.post(f"{V21}/review", json={"closes_at": closes, "summary": "Tell us."}, headers=h)
    assert opened.status_code == 201, opened.text
    assert opened.headers["location"] == f"http://testserver{V21}/review"
    review = opened.json()["review"]
    assert (review["state"], review["comments"], review["summary"]) == ("open", 0, "Tell us.")
    assert review["closed_at"] is None and review["link"] == f"http://testserver{V21}/review"

    public = c.get(V21)
    assert public.status_code == 200
    assert public.headers["cache-control"] == "public, max-age=60"
    body = public.json()
    assert body["status"] == "draft"
    assert {k: body["review"][k] for k in ("state", "comments", "organisations", "regions")} == {
        "state": "open",
        "comments": 0,
        "organisations": 0,
        "regions": [],
    }
    assert body["review"]["opens_at"] and body["review"]["closes_at"]
    # the same representation for an editor: one ETag, which a PUT can use
    assert c.get(V21, headers=h).headers["etag"] == public.headers["etag"]
    assert [v["version"] for v in c.get(f"{DOC}/versions").json()["data"]] == ["1.0", "2.0", "2.1"]
    diff = c.get(f"{DOC}/diff", params={"from": "2.0", "to": "2.1"})
    assert (diff.status_code, diff.headers["cache-control"]) == (200, "public, max-age=60")
    assert c.get(f"{V21}/comments").json() == {"data": [], "next_cursor": None}

    # one review period per draft; only drafts; closes_at within (now, now + 365 days]
    assert_problem(c.post(f"{V21}/review", json={"closes_at": in_days(10)}, headers=h), 409)
    assert_problem(c.post(f"{DOC}/versions/2.0/review", json={"closes_at": in_days(10)}, headers=h), 409)
    demo.draft("2.2", based_on="2.0")
    for closes_at in (in_days(-1), in_days(366), "2027-01-01", "tomorrow", 1893456000):
        assert_problem(c.post(f"{DOC}/versions/2.2/review", json={"closes_at": closes_at}, headers=h), 422)
    assert_problem(c.post(f"{V21}/review", json={"closes_at": closes}), 401)

    closed = c.post(f"{V21}/review/close", headers=h)
    assert closed.status_code == 200 and closed.json()["review"]["state"] == "closed"
    assert_problem(c.post(f"{V21}/review/close", headers=h), 409)
    assert_problem(c.post(f"{DOC}/versions/2.2/review/close", headers=h), 404)
    after = c.get(V21).json()["review"]
    assert after["state"] == "closed" and after["closed_at"] is not None
    # 2.2 never went under review: still private
    assert_problem(c.get(f"{DOC}/versions/2.2"), 404)
    assert c.get(f"{DOC}/versions/2.2", headers=h).headers["cache-control"] == "private, no-cache"


def test_comments_anchor_to_keys_and_list_by_clause_region_and_state(
    reviewed: Api, commenter: Callable[..., dict[str, str]]
) -> None:
    c = reviewed.client
    de = commenter(
        organisation="Deutscher Fachverband Achtsamkeit", region="de", commenter_type="association"
    )
    nl = commenter(organisation="Mindful Utrecht", region="NL", commenter_type="training_school")
    eu = commenter(organisation="European associations", region="150", commenter_type="other")
    draft_hash = c.get(V21).json()["content_hash"]

    first = _comment(reviewed, de, clause_key="S1.2", quote="a retreat", text="Say how long.")
    assert first == {
        "id": first["id"],
        "document": "demo",
        "version": "2.1",
        "clause_key": "S1.2",
        "section_key": "S1",
        "quote": "a retreat",
        "text": "Say how long.",
        "proposed_text": None,
        "organisation": "Deutscher Fachverband Achtsamkeit",
        "region": "DE",
        "commenter_type": "association",
        "created_at": first["created_at"],
        "updated_at": first["created_at"],
        "content_hash": draft_hash,
        "state": "pending",
        "withdrawn_at": None,
        "disposition": None,
        "links": {
            "self": f"http://testserver{V21}/comments/{first['id']}",
            "version": f"http://testserver{V21}",
            "clause": f"http://testserver{V21}/clauses/S1.2",
        },
    }
    assert first["id"].startswith("cmt_")
    section = _comment(reviewed, nl, section_key="S2", text="The ethics section reads well.")
    general = _comment(reviewed, eu, text="Thank you for the open process.", proposed_text="*More* examples.")
    both = _comment(reviewed, nl, clause_key="S2.1", section_key="S2", text="Why a recommendation?")
    assert (section["clause_key"], section["section_key"]) == (None, "S2")
    assert (general["clause_key"], general["section_key"]) == (None, None)
    assert both["section_key"] == "S2"

    for bad in ({"clause_key": "S9.9"}, {"section_key": "S9"}, {"clause_key": "S1.2", "section_key": "S2"}):
        assert_problem(c.post(f"{V21}/comments", json={"text": "x", **bad}, headers=de), 422)

    def ids(**params: Any) -> list[str]:
        r = c.get(f"{V21}/comments", params=params)
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "public, max-age=60"
        return [x["id"] for x in r.json()["data"]]

    everyone = [first["id"], section["id"], general["id"], both["id"]]
    assert ids() == everyone
    assert ids(clause="S1.2") == [first["id"]]
    assert ids(region="nl") == [section["id"], both["id"]]
    assert ids(region="150") == [general["id"]]
    assert ids(region="NL", clause="S2.1") == [both["id"]]
    assert ids(state="pending") == everyone
    assert ids(state="disposed") == ids(state="withdrawn") == []
    assert ids(clause="Z1") == []
    for bad in ({"clause": "no key!"}, {"region": "XX"}, {"state": "open"}, {"limit": 0}, {"cursor": "%%"}):
        assert_problem(c.get(f"{V21}/comments", params=bad), 422)
    # a decodable cursor whose position is not a comment id was tampered with: 422, not a page
    for position in ("zzz", "cmt_", "cmt_" + "0" * 25, "cmt_" + "Z" * 26, first["id"] + "x"):
        tampered = _cursor(position)
        assert_problem(c.get(f"{V21}/comments", params={"cursor": tampered}), 422)
    issued = _cursor(first["id"])
    assert ids(cursor=issued) == everyone[1:]

    page = c.get(f"{V21}/comments", params={"limit": 3, "region": "NL"})
    assert page.json()["next_cursor"] is None and "link" not in page.headers
    page = c.get(f"{V21}/comments", params={"limit": 3})
    assert [x["id"] for x in page.json()["data"]] == everyone[:3]
    link = page.headers["link"]
    assert link.startswith(f"<http://testserver{V21}/comments?limit=3&cursor=") and link.endswith(
        '>; rel="next"'
    )
    rest = c.get(link[1:].split(">", 1)[0].replace("http://testserver", ""))
    assert [x["id"] for x in rest.json()["data"]] == everyone[3:] and rest.json()["next_cursor"] is None

    one = c.get(f"{V21}/comments/{general['id']}")
    assert one.status_code == 200 and one.json() == general
    assert_problem(c.get(f"{V21}/comments/cmt_nope"), 404)
    assert_problem(c.get(f"{V21}/comments/{'x' * 500}"), 404)
    assert_problem(c.get(f"{DOC}/versions/2.0/comments/{general['id']}"), 404)

    # never a client id, client name or anything but the organisation
    listed = c.get(f"{V21}/comments").text
    assert "cli_" not in listed and "commenting client" not in listed
    assert c.get(V21).json()["review"] | {} == c.get(V21).json()["review"]
    assert {k: c.get(V21).json()["review"][k] for k in ("comments", "organisations", "regions")} == {
        "comments": 4,
        "organisations": 3,
        "regions": ["150", "DE", "NL"],
    }


def test_who_may_comment(
    reviewed: Api, auth: Callable[..., dict[str, str]], commenter: Callable[..., Any]
) -> None:
    c = reviewed.client
    assert_problem(c.post(f"{V21}/comments", json={"text": "x"}), 401)
    assert_problem(c.post(f"{V21}/comments", json={"text": "x"}, headers=reviewed.headers), 403)
    assert_problem(c.post(f"{V21}/comments", json={"text": "x"}, headers=auth("webhooks:manage")), 403)
    de = commenter()
    # a version not under review: published (409), private draft (404), unknown (404)
    assert_problem(c.post(f"{DOC}/versions/2.0/comments", json={"text": "x"}, headers=de), 409)
    reviewed.draft("2.2", based_on="2.0")
    assert_problem(c.post(f"{DOC}/versions/2.2/comments", json={"text": "x"}, headers=de), 404)
    assert_problem(c.post(f"{DOC}/versions/9.9/comments", json={"text": "x"}, headers=de), 404)


def test_commenters_edit_and_withdraw_their_own_comments_only(
    reviewed: Api, commenter: Callable[..., dict[str, str]]
) -> None:
    c = reviewed.client
    de, nl = commenter(), commenter(organisation="Mindful Utrecht", region="NL")
    mine = _comment(
        reviewed, de, clause_key="S1.1", quote="daily", text="Too strict.", proposed_text="Most days."
    )
    assert c.get(f"{V21}/comments").json()["data"][0]["text"] == "Too strict."  # now cached

    # the draft changes; an edit records the content it was written against now
    reviewed.replace("2.1", {**DEMO_V2, "summary": "The third edition."})
    new_hash = c.get(V21).json()["content_hash"]
    assert new_hash != mine["content_hash"]
    assert_problem(c.patch(f"{V21}/comments/{mine['id']}", json={"text": "Not mine"}, headers=nl), 403)
    assert_problem(c.post(f"{V21}/comments/{mine['id']}/withdraw", headers=nl), 403)
    assert_problem(c.patch(f"{V21}/comments/{mine['id']}", json={"text": None}, headers=de), 422)
    assert_problem(c.patch(f"{V21}/comments/{mine['id']}", json={"colour": "red"}, headers=de), 422)
    edited = c.patch(f"{V21}/comments/{mine['id']}", json={"text": "Strict.", "quote": None}, headers=de)
    assert edited.status_code == 200, edited.text
    assert (edited.json()["text"], edited.json()["quote"], edited.json()["proposed_text"]) == (
        "Strict.",
        None,
        "Most days.",
    )
    assert edited.json()["content_hash"] == new_hash
    # the cached list follows the edit at once (no event, but the domain was touched)
    assert c.get(f"{V21}/comments").json()["data"][0]["text"] == "Strict."

    withdrawn = c.post(f"{V21}/comments/{mine['id']}/withdraw", headers=de)
    assert withdrawn.status_code == 200
    assert (withdrawn.json()["state"], withdrawn.json()["withdrawn_at"] is not None) == ("withdrawn", True)
    assert [x["state"] for x in c.get(f"{V21}/comments").json()["data"]] == ["withdrawn"]
    assert c.get(V21).json()["review"]["comments"] == 0
    assert_problem(c.post(f"{V21}/comments/{mine['id']}/withdraw", headers=de), 409)
    assert_problem(c.patch(f"{V21}/comments/{mine['id']}", json={"text": "Again"}, headers=de), 409)
    assert_problem(_dispose(reviewed, mine["id"]), 409)

    # a disposed comment is no longer edited; after the review nothing is withdrawn or added
    other = _comment(reviewed, nl, text="Fine.")
    assert _dispose(reviewed, other["id"], "noted").status_code == 200
    assert_problem(c.patch(f"{V21}/comments/{other['id']}", json={"text": "Changed"}, headers=nl), 409)
    late = _comment(reviewed, nl, text="One more.")
    assert c.post(f"{V21}/review/close", headers=reviewed.headers).status_code == 200
    assert_problem(c.post(f"{V21}/comments/{late['id']}/withdraw", headers=nl), 409)
    assert_problem(c.patch(f"{V21}/comments/{late['id']}", json={"text": "Too late"}, headers=nl), 409)
    assert_problem(c.post(f"{V21}/comments", json={"text": "Too late."}, headers=nl), 409)


def test_publish_gate_then_the_published_review(
    reviewed: Api, commenter: Callable[..., dict[str, str]]
) -> None:
    c, h = reviewed.client, reviewed.headers
    de, nl = commenter(), commenter(organisation="Mindful Utrecht", region="NL")
    a = _comment(reviewed, de, clause_key="S1.2", text="Shorter retreats, please.")
    b = _comment(reviewed, nl, clause_key="S1.2", text="Keep it.")
    d = _comment(reviewed, nl, text="General remark.")
    w = _comment(reviewed, de, text="Withdrawn later.")
    assert c.post(f"{V21}/comments/{w['id']}/withdraw", headers=de).status_code == 200

    gate = assert_problem(c.post(f"{V21}/publish", headers=h), 409)
    # an open review is refused with the comments still waiting too (the contract's list)
    assert (gate["review_state"], gate["undisposed_comments"]) == ("open", [a["id"], b["id"], d["id"]])
    assert c.post(f"{V21}/review/close", headers=h).status_code == 200
    gate = assert_problem(c.post(f"{V21}/publish", headers=h), 409)
    assert (gate["review_state"], gate["undisposed_comments"]) == ("closed", [a["id"], b["id"], d["id"]])

    assert _dispose(reviewed, a["id"], "declined", "We keep five days.").status_code == 200
    changed = _dispose(reviewed, a["id"], "accepted_with_changes", "Four days in the first year.")
    assert changed.json()["disposition"]["outcome"] == "accepted_with_changes"
    assert _dispose(reviewed, b["id"], "noted").status_code == 200
    assert_problem(c.post(f"{V21}/publish", headers=h), 409)
    for bad in (
        {"outcome": "maybe", "response": "x"},
        {"outcome": "noted", "response": ""},
        {"outcome": "noted"},
    ):
        assert_problem(c.post(f"{V21}/comments/{d['id']}/disposition", json=bad, headers=h), 422)
    assert_problem(_dispose(reviewed, "cmt_unknown"), 404)
    assert _dispose(reviewed, d["id"], "accepted").status_code == 200
    # the clause's reason travels with the content
    content = {**DEMO_V2}
    content["sections"] = [dict(s) for s in DEMO_V2["sections"]]
    content["sections"][0]["clauses"] = [
        {
            **cl,
            "text": "Attend a silent retreat every year: four days in the first, five after.",
            "change_note": "Shorter in the first year, after the regions' comments.",
        }
        if cl["key"] == "S1.2"
        else cl
        for cl in DEMO_V2["sections"][0]["clauses"]
    ]
    reviewed.replace("2.1", content)

    published = c.post(f"{V21}/publish", headers=h)
    assert published.status_code == 200, published.text
    review = published.json()["review"]
    assert {k: review[k] for k in ("comments", "organisations", "regions", "link")} == {
        "comments": 3,
        "organisations": 2,
        "regions": ["DE", "NL"],
        "link": f"http://testserver{V21}/review",
    }
    assert c.get(V21).json()["review"] == review
    assert_problem(_dispose(reviewed, d["id"], "declined"), 409)

    event = c.get("/v1/events", params={"type": "standards.version.published"}).json()["data"][-1]["data"]
    assert event["review"] == {k: review[k] for k in ("comments", "organisations", "regions", "link")}
    assert event["changes"]["change_notes"] == {
        "S1.2": {
            "change_note": "Shorter in the first year, after the regions' comments.",
            "accepted_comments": [a["id"]],
        }
    }
    diff = c.get(f"{DOC}/diff", params={"from": "2.0", "to": "2.1"}).json()
    assert [(m["key"], m["change_note"], m["accepted_comments"]) for m in diff["modified"]] == [
        ("S1.2", "Shorter in the first year, after the regions' comments.", [a["id"]])
    ]
    # the accepted general comment names no clause: nothing else carries reasons
    assert [kind for kind in ("added", "removed", "moved") if diff[kind]] == []


def test_change_notes_are_content_and_are_not_copied(demo: Api) -> None:
    c, h = demo.client, demo.headers
    demo.draft("2.1", based_on="2.0")
    plain_hash = c.get(V21, headers=h).json()["content_hash"]
    noted = {**DEMO_V2, "sections": [dict(s) for s in DEMO_V2["sections"]]}
    noted["sections"][1]["clauses"] = [
        {
            **DEMO_V2["sections"][1]["clauses"][0],
            "text": "Act with integrity, always.",
            "change_note": "**Why**",
        },
        *DEMO_V2["sections"][1]["clauses"][1:],
    ]
    body = demo.replace("2.1", noted).json()
    clause = body["sections"][1]["clauses"][0]
    assert (clause["key"], clause["change_note"]) == ("S2.1", "**Why**")
    assert body["sections"][0]["clauses"][0]["change_note"] is None
    assert body["content_hash"] != plain_hash
    too_long = {**noted, "sections": [dict(s) for s in noted["sections"]]}
    too_long["sections"][1]["clauses"] = [{**clause_in(noted), "change_note": "x" * 2001}]
    current = c.get(V21, headers=h)
    r = c.put(V21, json=too_long, headers={**h, "If-Match": current.headers["etag"]})
    assert_problem(r, 422)
    demo.publish("2.1")
    diff = c.get(f"{DOC}/diff", params={"from": "2.0", "to": "2.1"}).json()
    assert diff["modified"] == [
        {
            "key": "S2.1",
            "section": "S2",
            "before": {"kind": "recommendation", "applies_to": "trainer", "text": "Act with integrity."},
            "after": {
                "kind": "recommendation",
                "applies_to": "trainer",
                "text": "Act with integrity, always.",
            },
            "change_note": "**Why**",
        }
    ]
    html = c.get(f"{DOC}/versions/2.1", headers={"Accept": "text/html"}).text
    assert "<strong>Why</strong>" in html
    # a new draft copies the content, not the reasons 2.1 gave for its own changes
    demo.draft("2.2", based_on="2.1")
    copied = c.get(f"{DOC}/versions/2.2", headers=h).json()
    assert {cl["change_note"] for s in copied["sections"] for cl in s["clauses"]} == {None}
    assert copied["sections"][1]["clauses"][0]["text"] == "Act with integrity, always."


def clause_in(content: dict[str, Any]) -> dict[str, Any]:
    return dict(content["sections"][1]["clauses"][0])


def test_a_review_runs_out_on_the_clock(demo: Api, engine: Any, commenter: Callable[..., Any]) -> None:
    c, h = demo.client, demo.headers
    demo.draft("2.1", based_on="2.0")
    closes = in_days(1.5 / 86400)
    assert c.post(f"{V21}/review", json={"closes_at": closes}, headers=h).status_code == 201
    first = c.get(V21)
    assert first.json()["review"]["state"] == "open"
    assert int(first.headers["cache-control"].rsplit("=", 1)[1]) <= 2
    de = commenter()
    _comment(demo, de, text="Just in time.")
    time.sleep(1.8)
    later = c.get(V21).json()["review"]
    assert (later["state"], later["closed_at"], later["comments"]) == ("closed", None, 1)
    assert_problem(c.post(f"{V21}/comments", json={"text": "Too late."}, headers=de), 409)
    assert jobs.run_job(engine, "standards.review.close") == 1
    assert jobs.run_job(engine, "standards.review.close") == 0
    closed = c.get("/v1/events", params={"type": "standards.review.closed"}).json()["data"]
    assert len(closed) == 1
    assert closed[0]["data"]["closed_early"] is False
    assert closed[0]["data"]["closed_at"] == closed[0]["data"]["closes_at"]
    assert c.get(V21).json()["review"]["closed_at"] == closed[0]["data"]["closes_at"]


def test_hostile_comments_are_refused_or_escaped(
    reviewed: Api, commenter: Callable[..., dict[str, str]]
) -> None:
    c = reviewed.client
    de = commenter()
    for body in (
        {"text": ""},
        {"text": "   "},
        {"text": "x" * 10_001},
        {"text": "x", "quote": "q" * 501},
        {"text": "x", "proposed_text": "p" * 10_001},
        {"text": "bell\x07"},
        {"text": "x", "colour": "red"},
        {"text": "x", "clause_key": "../../etc"},
        {"text": 5},
    ):
        assert_problem(c.post(f"{V21}/comments", json=body, headers=de), 422)
    assert_problem(c.post(f"{V21}/comments", json={"text": "nul\u0000"}, headers=de), 422)
    ok = _comment(reviewed, de, text="x" * 10_000, quote="q" * 500, proposed_text="line one\r\nline two")
    assert ok["proposed_text"] == "line one\nline two"
    assert_problem(
        c.post(f"{V21}/comments", content=b"{not json", headers={**de, "Content-Type": "application/json"}),
        400,
    )


def test_long_values_in_the_url_are_not_echoed_in_full(
    reviewed: Api, commenter: Callable[..., dict[str, str]]
) -> None:
    """A problem names what it could not find, cut to 40 characters: a 5,000-character id, key or
    version came back in full in every 404 and 422."""
    c = reviewed.client
    long = "A" * 5_000
    for r, status in (
        (c.get(f"{V21}/comments/cmt_{long}"), 404),
        (c.post(f"{V21}/comments/cmt_{long}/withdraw", headers=commenter()), 404),
        (c.get(f"{V21}/comments", params={"clause": long + "!"}), 422),
        (c.get(f"{DOC}/versions/{long}/comments"), 404),
        (c.get(f"{DOC}/versions/{long}"), 404),
        (c.get(f"/v1/standards/{long}/versions/2.1/review"), 404),
    ):
        problem = assert_problem(r, status)
        assert len(r.content) < 600, r.text
        assert "AAAA…" in problem["detail"], problem


def test_comment_reads_answer_304_and_the_openapi_document_says_so(
    reviewed: Api, commenter: Callable[..., dict[str, str]]
) -> None:
    c = reviewed.client
    made = _comment(reviewed, commenter(), clause_key="S1.2")
    spec = c.get("/openapi.json").json()["paths"]
    for path, url in (
        ("/v1/standards/{slug}/versions/{version}/comments", f"{V21}/comments"),
        ("/v1/standards/{slug}/versions/{version}/comments/{comment_id}", f"{V21}/comments/{made['id']}"),
    ):
        etag = c.get(url).headers["etag"]
        assert c.get(url, headers={"If-None-Match": etag}).status_code == 304
        assert "304" in spec[path]["get"]["responses"], path
