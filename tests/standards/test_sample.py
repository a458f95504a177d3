"""The sample guidelines load through the service and have the shape DESIGN §8 asks for."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from service.sample import standards as sample
from service.sample.loader import load_sample

DOC = "/v1/standards/training-standards"


def _clauses(version: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for s in version["sections"] for c in s["clauses"]]


def test_sample_loads_two_versions_translation_and_events(
    client: TestClient, engine: Any, settings: Any
) -> None:
    assert sample.database_is_empty(engine) is True
    assert load_sample(engine=engine, settings=settings) is True
    assert sample.database_is_empty(engine) is False
    assert load_sample(engine=engine, settings=settings) is False  # never twice

    doc = client.get(DOC).json()
    assert doc["current_version"] == "2.0"
    assert doc["versions"] == ["1.0", "2.0"]
    v1 = client.get(f"{DOC}/versions/1.0").json()
    v2 = client.get(f"{DOC}/versions/2.0").json()
    assert (v1["status"], v1["published_at"]) == ("superseded", "2017-11-27T09:00:00Z")
    assert (v2["status"], v2["published_at"]) == ("published", "2021-07-01T09:00:00Z")
    assert v2["translations"] == ["de"]
    assert (len(_clauses(v1)), len(_clauses(v2))) == (37, 40)
    assert {s["key"][0] for s in v2["sections"]} == {"A", "B", "C"}
    assert {n["region"] for n in v2["regional_notes"]} >= {"DE", "NL"}
    assert all(p["name"] and p["affiliation"] and p["region"] for p in v2["contributors"])
    assert v2["content_hash"].startswith("sha256:") and v2["content_hash"] != v1["content_hash"]

    diff = client.get(f"{DOC}/diff", params={"from": "1.0", "to": "2.0"}).json()
    assert {k: len(diff[k]) > 0 for k in ("added", "removed", "modified", "moved")} == {
        "added": True,
        "removed": True,
        "modified": True,
        "moved": True,
    }
    assert [m["key"] for m in diff["moved"]] == ["A2.5", "B2.4"]
    assert [r["key"] for r in diff["removed"]] == ["B2.5", "C2.5"]

    de = client.get(f"{DOC}/current", params={"lang": "de"})
    assert de.headers["content-language"] == "de"
    body = de.json()
    assert body["title"] == "Ausbildungsstandards und ethische Leitlinien"
    en_texts = {c["key"]: c["text"] for c in _clauses(v2)}
    de_texts = {c["key"]: c["text"] for c in _clauses(body)}
    assert de_texts.keys() == en_texts.keys()
    assert all(de_texts[k] != en_texts[k] for k in en_texts)  # every clause really translated

    feed: list[dict[str, Any]] = []
    after = "0"
    while True:
        page = client.get("/v1/events", params={"after": after, "limit": 200}).json()
        feed += page["data"]
        if page["next_cursor"] is None:
            break
        after = page["next_cursor"]
    assert [e["sequence"] for e in feed] == list(range(1, len(feed) + 1))  # events 1..N, gap-free
    standards_events = [e for e in feed if e["type"].startswith("standards.")]
    assert feed[0] is standards_events[0]
    assert [(e["type"], e["data"]["version"]) for e in standards_events] == [
        ("standards.version.published", "1.0"),
        ("standards.version.published", "2.0"),
        ("standards.translation.published", "2.0"),
    ]
    published = standards_events[1]["data"]
    assert published["previous_version"] == "1.0"
    assert published["reaffirmation_required"] is True
    assert published["changes"]["moved"] == ["A2.5", "B2.4"]
    assert (
        published["links"]["diff"] == "http://testserver/v1/standards/training-standards/diff?from=1.0&to=2.0"
    )


def test_sample_files_cover_the_facts() -> None:
    data = sample.read("standards_en.json")
    text = " ".join(c["text"] for v in data["versions"][1:] for s in v["sections"] for c in s["clauses"])
    for fact in ("12 months", "120 hours", "5 days", "supervision", "six domains", "9 eight-week courses"):
        assert fact in text, fact
