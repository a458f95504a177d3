"""The disposition report of a review, in JSON, Markdown and HTML, and what a commenter's text
can do to it (nothing)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from markdown_it import MarkdownIt

from tests.conftest import assert_problem
from tests.standards.conftest import DEMO_V2, Api

DOC = "/v1/standards/demo"
V21 = f"{DOC}/versions/2.1"
SCRIPT = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _comment(api: Api, headers: dict[str, str], **body: Any) -> str:
    r = api.client.post(f"{V21}/comments", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _arrange(reviewed: Api, commenter: Callable[..., dict[str, str]]) -> dict[str, str]:
    """Comments on every kind of anchor, one on a clause the draft then loses, all disposed or withdrawn."""
    c, h = reviewed.client, reviewed.headers
    de, nl = commenter(), commenter(organisation="Mindful <b>Utrecht</b>", region="NL")
    ids = {
        "general": _comment(reviewed, nl, text=f"General {SCRIPT}"),
        "s3": _comment(reviewed, de, section_key="S3", text="Order the organisation clauses."),
        "s12": _comment(
            reviewed,
            de,
            clause_key="S1.2",
            quote=f"5 days {SCRIPT}",
            text="Too long\nfor beginners.\n# not a heading\n- not a list",
            proposed_text=f"Attend **a** retreat. {SCRIPT} [x](javascript:alert(1))\n\n```\ncode\n```",
        ),
        "s23": _comment(reviewed, nl, clause_key="S2.3", text="Refer to whom?"),
        "s11": _comment(reviewed, nl, clause_key="S1.1", text="Keep it."),
        "gone": _comment(reviewed, de, text="Withdrawn."),
    }
    assert c.post(f"{V21}/comments/{ids['gone']}/withdraw", headers=de).status_code == 200
    # the draft loses S2.3 after it was commented on
    content = {**DEMO_V2, "sections": [dict(s) for s in DEMO_V2["sections"]]}
    content["sections"][1]["clauses"] = [
        cl for cl in DEMO_V2["sections"][1]["clauses"] if cl["key"] != "S2.3"
    ]
    reviewed.replace("2.1", content)
    outcomes = {
        "general": "noted",
        "s3": "declined",
        "s12": "accepted_with_changes",
        "s23": "accepted",
        "s11": "noted",
    }
    for name, outcome in outcomes.items():
        r = c.post(
            f"{V21}/comments/{ids[name]}/disposition",
            json={"outcome": outcome, "response": f"Answer {SCRIPT}"},
            headers=h,
        )
        assert r.status_code == 200, r.text
    return ids


def test_report_in_json_groups_by_anchor_in_document_order(
    reviewed: Api, commenter: Callable[..., dict[str, str]]
) -> None:
    ids = _arrange(reviewed, commenter)
    r = reviewed.client.get(f"{V21}/review")
    assert r.status_code == 200
    assert r.headers["cache-control"] == "public, max-age=60"
    report = r.json()
    assert (report["document"], report["version"], report["version_status"]) == ("demo", "2.1", "draft")
    assert report["outcomes"] == {
        "accepted": 1,
        "accepted_with_changes": 1,
        "declined": 1,
        "noted": 2,
        "pending": 0,
        "withdrawn": 1,
    }
    groups = [
        (g["scope"], g["key"], g["in_version"], [x["id"] for x in g["comments"]]) for g in report["groups"]
    ]
    assert groups == [
        ("general", None, True, [ids["general"], ids["gone"]]),
        ("clause", "S1.1", True, [ids["s11"]]),
        ("clause", "S1.2", True, [ids["s12"]]),
        ("section", "S3", True, [ids["s3"]]),
        ("clause", "S2.3", False, [ids["s23"]]),
    ]
    s12 = report["groups"][2]["comments"][0]
    assert s12["disposition"]["outcome"] == "accepted_with_changes"
    assert s12["disposition"]["response"] == f"Answer {SCRIPT}"
    assert report["review"]["comments"] == 5 and report["review"]["organisations"] == 2
    # JSON keeps every text as written: escaping is the HTML form's job
    assert report["groups"][0]["comments"][0]["text"] == f"General {SCRIPT}"


def test_report_in_markdown_and_html_escapes_what_commenters_wrote(
    reviewed: Api, commenter: Callable[..., dict[str, str]]
) -> None:
    ids = _arrange(reviewed, commenter)
    c = reviewed.client
    md = c.get(f"{V21}/review", headers={"Accept": "text/markdown"})
    assert md.status_code == 200 and md.headers["content-type"] == "text/markdown; charset=utf-8"
    rendered = MarkdownIt("commonmark").render(md.text)  # what a Markdown site would make of it
    assert "<script" not in rendered and "<img" not in rendered
    assert "<h1>not a heading" not in rendered and "<li>not a list" not in rendered
    assert f"### {ids['s12'].replace('_', chr(92) + '_')}" in md.text
    assert "```markdown\nAttend **a** retreat." in md.text or "````markdown\nAttend **a** retreat." in md.text
    assert "_Withdrawn by its author._" in md.text
    assert "Clause S2.3 (no longer in this version)" in md.text

    html = c.get(f"{V21}/review", headers={"Accept": "text/html"})
    assert html.status_code == 200 and html.headers["content-type"] == "text/html; charset=utf-8"
    body = html.text
    assert body.startswith('<article class="imi-review" lang="en" dir="ltr"')
    assert "<script" not in body
    assert "<img" not in body
    assert "href=" not in body  # the javascript: link stays text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body
    assert "Mindful &lt;b&gt;Utrecht&lt;/b&gt;" in body
    assert "<strong>a</strong>" in body  # the proposed wording is Markdown, sanitised
    assert f'id="comment-{ids["s12"]}"' in body and 'data-outcome="accepted_with_changes"' in body
    assert 'id="review-clause-S2.3" data-in-version="false"' in body
    assert "Too long<br>for beginners." in body

    etags = {
        c.get(f"{V21}/review", headers={"Accept": m}).headers["etag"]
        for m in ("application/json", "text/markdown", "text/html")
    }
    assert len(etags) == 3
    tag = html.headers["etag"]
    assert c.get(f"{V21}/review", headers={"Accept": "text/html", "If-None-Match": tag}).status_code == 304
    assert_problem(c.get(f"{V21}/review", headers={"Accept": "image/png"}), 406)


def test_report_follows_every_change_and_freezes_with_the_publish(
    reviewed: Api, commenter: Callable[..., dict[str, str]]
) -> None:
    c, h = reviewed.client, reviewed.headers
    de = commenter()
    first = c.get(f"{V21}/review").json()
    assert first["groups"] == [] and first["review"]["state"] == "open"
    cid = _comment(reviewed, de, clause_key="S1.1", text="One.")
    assert [g["key"] for g in c.get(f"{V21}/review").json()["groups"]] == ["S1.1"]
    assert c.post(f"{V21}/review/close", headers=h).status_code == 200
    assert c.get(f"{V21}/review").json()["review"]["state"] == "closed"
    r = c.post(f"{V21}/comments/{cid}/disposition", json={"outcome": "noted", "response": "Seen."}, headers=h)
    assert r.status_code == 200
    assert c.get(f"{V21}/review").json()["outcomes"]["noted"] == 1
    assert c.post(f"{V21}/publish", headers=h).status_code == 200
    published = c.get(f"{V21}/review")
    assert published.headers["cache-control"] == "public, max-age=3600"
    assert published.json()["version_status"] == "published"
    for path in (
        f"{DOC}/versions/2.0/review",
        f"{DOC}/versions/9.9/review",
        "/v1/standards/nope/versions/1.0/review",
    ):
        assert_problem(c.get(path), 404)
