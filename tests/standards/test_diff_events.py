"""The clause-level diff (both directions, hand-computed) and the standards events."""

from __future__ import annotations

from tests.conftest import assert_problem
from tests.standards.conftest import DEMO_V2, Api, translation_of

DOC = "/v1/standards/demo"


def _clause(key: str, section: str, order: int, kind: str, applies_to: str, text: str) -> dict[str, object]:
    return {
        "key": key,
        "section": section,
        "order": order,
        "kind": kind,
        "applies_to": applies_to,
        "text": text,
    }


def _fields(kind: str, applies_to: str, text: str) -> dict[str, str]:
    return {"kind": kind, "applies_to": applies_to, "text": text}


S14 = ("requirement", "teacher", "Take supervision.")
S23 = ("guidance", "trainer", "Refer when in doubt.")
S22 = ("guidance", "trainer", "Know your limits.")
S12_OLD = _fields("requirement", "teacher", "Attend a retreat yearly.")
S12_NEW = _fields("requirement", "teacher", "Attend a silent retreat of at least 5 days every year.")
S21_OLD = _fields("requirement", "trainer", "Act with integrity.")
S21_NEW = _fields("recommendation", "trainer", "Act with integrity.")

FORWARD = {
    "document": "demo",
    "from": "1.0",
    "to": "2.0",
    "added": [_clause("S1.4", "S1", 2, *S14), _clause("S2.3", "S2", 3, *S23)],
    "removed": [_clause("S2.2", "S2", 2, *S22)],
    "modified": [
        {"key": "S1.2", "section": "S1", "before": S12_OLD, "after": S12_NEW},
        {"key": "S2.1", "section": "S2", "before": S21_OLD, "after": S21_NEW},
    ],
    "moved": [
        {"key": "S1.3", "from": {"section": "S1", "order": 3}, "to": {"section": "S2", "order": 2}},
        {"key": "S3.3", "from": {"section": "S3", "order": 3}, "to": {"section": "S3", "order": 1}},
    ],
}

BACKWARD = {
    "document": "demo",
    "from": "2.0",
    "to": "1.0",
    "added": [_clause("S2.2", "S2", 2, *S22)],
    "removed": [_clause("S1.4", "S1", 2, *S14), _clause("S2.3", "S2", 3, *S23)],
    "modified": [
        {"key": "S1.2", "section": "S1", "before": S12_NEW, "after": S12_OLD},
        {"key": "S2.1", "section": "S2", "before": S21_NEW, "after": S21_OLD},
    ],
    "moved": [
        {"key": "S1.3", "from": {"section": "S2", "order": 2}, "to": {"section": "S1", "order": 3}},
        {"key": "S3.3", "from": {"section": "S3", "order": 1}, "to": {"section": "S3", "order": 3}},
    ],
}


def test_diff_both_directions(demo: Api) -> None:
    forward = demo.client.get(f"{DOC}/diff", params={"from": "1.0", "to": "2.0"})
    assert forward.status_code == 200
    assert forward.json() == FORWARD
    assert forward.headers["cache-control"] == "public, max-age=3600"
    assert demo.client.get(f"{DOC}/diff", params={"from": "2.0", "to": "1.0"}).json() == BACKWARD
    same = demo.client.get(f"{DOC}/diff", params={"from": "2.0", "to": "2.0"}).json()
    assert [same[k] for k in ("added", "removed", "modified", "moved")] == [[], [], [], []]


def test_diff_problems(demo: Api) -> None:
    c = demo.client
    assert_problem(c.get(f"{DOC}/diff", params={"from": "1.0", "to": "9.0"}), 404)
    assert_problem(c.get("/v1/standards/nope/diff", params={"from": "1.0", "to": "2.0"}), 404)
    assert_problem(c.get(f"{DOC}/diff", params={"from": "1.0"}), 422)
    assert_problem(c.get(f"{DOC}/diff"), 422)
    demo.draft("2.1", based_on="2.0")
    assert_problem(c.get(f"{DOC}/diff", params={"from": "2.0", "to": "2.1"}), 404)
    editor = c.get(f"{DOC}/diff", params={"from": "2.0", "to": "2.1"}, headers=demo.headers)
    assert editor.status_code == 200
    assert editor.headers["cache-control"] == "private, no-cache"


def test_published_events_carry_the_change_summary(demo: Api) -> None:
    c, h = demo.client, demo.headers
    r = c.put(f"{DOC}/versions/2.0/translations/de", json=translation_of(DEMO_V2, "DE"), headers=h)
    assert r.status_code == 201
    c.post(f"{DOC}/versions/2.0/withdraw", headers=h)
    demo.draft("2.1", based_on="1.0")
    demo.publish("2.1")
    feed = c.get("/v1/events").json()["data"]
    assert [(e["sequence"], e["type"]) for e in feed] == [
        (1, "standards.version.published"),
        (2, "standards.version.published"),
        (3, "standards.translation.published"),
        (4, "standards.version.withdrawn"),
        (5, "standards.version.published"),
    ]
    first, second = feed[0]["data"], feed[1]["data"]
    assert first["previous_version"] is None
    assert first["reaffirmation_required"] is False
    assert first["links"] == {"version": "http://testserver/v1/standards/demo/versions/1.0", "diff": None}
    assert first["changes"]["added"] == ["S1.1", "S1.2", "S1.3", "S2.1", "S2.2", "S3.1", "S3.2", "S3.3"]
    v2 = c.get(f"{DOC}/versions/2.0").json()
    assert second == {
        "document": "demo",
        "version": "2.0",
        "title": "Demo standards",
        "previous_version": "1.0",
        "reaffirmation_required": True,
        "effective_from": v2["effective_from"],
        "summary": "The second edition.",  # issue 16: the editor's summary reaches subscribers
        "changes": {
            "added": ["S1.4", "S2.3"],
            "removed": ["S2.2"],
            "modified": ["S1.2", "S2.1"],
            "moved": ["S1.3", "S3.3"],
        },
        "links": {
            "version": "http://testserver/v1/standards/demo/versions/2.0",
            "diff": "http://testserver/v1/standards/demo/diff?from=1.0&to=2.0",
        },
    }
    assert feed[2]["data"] == {
        "document": "demo",
        "version": "2.0",
        "language": "de",
        "links": {"version": "http://testserver/v1/standards/demo/versions/2.0?lang=de"},
    }
    assert feed[3]["data"] == {
        "document": "demo",
        "version": "2.0",
        "current_version": "1.0",
        "links": {
            "version": "http://testserver/v1/standards/demo/versions/2.0",
            "current": "http://testserver/v1/standards/demo/versions/1.0",
        },
    }
    minor = feed[4]["data"]
    # 2.1 (based on 1.0) follows 1.0 after 2.0 was withdrawn: a major step from 1.x, no clause changes
    assert (minor["version"], minor["previous_version"], minor["reaffirmation_required"]) == (
        "2.1",
        "1.0",
        True,
    )
    assert minor["changes"] == {"added": [], "removed": [], "modified": [], "moved": []}
