"""Fixtures of the standards tests: editor tokens and small documents built through the API."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

SLUG = "demo"

#: Version 1.0 of the small fixture document the diff tests compute by hand.
DEMO_V1: dict[str, Any] = {
    "title": "Demo standards",
    "summary": "A small document for tests.",
    "sections": [
        {
            "key": "S1",
            "title": "Practice",
            "intro": "What teachers do for themselves.",
            "clauses": [
                {
                    "key": "S1.1",
                    "kind": "requirement",
                    "applies_to": "teacher",
                    "text": "Keep a daily practice.",
                },
                {
                    "key": "S1.2",
                    "kind": "requirement",
                    "applies_to": "teacher",
                    "text": "Attend a retreat yearly.",
                },
                {"key": "S1.3", "kind": "recommendation", "applies_to": "teacher", "text": "Read widely."},
            ],
        },
        {
            "key": "S2",
            "title": "Ethics",
            "clauses": [
                {
                    "key": "S2.1",
                    "kind": "requirement",
                    "applies_to": "trainer",
                    "text": "Act with integrity.",
                },
                {"key": "S2.2", "kind": "guidance", "applies_to": "trainer", "text": "Know your limits."},
            ],
        },
        {
            "key": "S3",
            "title": "Organisation",
            "clauses": [
                {"key": "S3.1", "kind": "requirement", "applies_to": "training_organisation", "text": "One."},
                {"key": "S3.2", "kind": "requirement", "applies_to": "training_organisation", "text": "Two."},
                {
                    "key": "S3.3",
                    "kind": "requirement",
                    "applies_to": "training_organisation",
                    "text": "Three.",
                },
            ],
        },
    ],
    "regional_notes": [
        {"region": "DE", "target": "S1.2", "text": "Retreats in German are listed by the association."}
    ],
    "contributors": [{"name": "Ada Example", "affiliation": "Example Institute", "region": "Germany"}],
}

#: Version 2.0: S1.4 and S2.3 added, S2.2 removed, S1.2 reworded, S2.1 re-kinded,
#: S1.3 moved to S2, S3.3 moved to the front of S3.
DEMO_V2: dict[str, Any] = {
    "title": "Demo standards",
    "summary": "The second edition.",
    "sections": [
        {
            "key": "S1",
            "title": "Practice",
            "intro": "What teachers do for themselves.",
            "clauses": [
                {
                    "key": "S1.1",
                    "kind": "requirement",
                    "applies_to": "teacher",
                    "text": "Keep a daily practice.",
                },
                {"key": "S1.4", "kind": "requirement", "applies_to": "teacher", "text": "Take supervision."},
                {
                    "key": "S1.2",
                    "kind": "requirement",
                    "applies_to": "teacher",
                    "text": "Attend a silent retreat of at least 5 days every year.",
                },
            ],
        },
        {
            "key": "S2",
            "title": "Ethics",
            "clauses": [
                {
                    "key": "S2.1",
                    "kind": "recommendation",
                    "applies_to": "trainer",
                    "text": "Act with integrity.",
                },
                {"key": "S1.3", "kind": "recommendation", "applies_to": "teacher", "text": "Read widely."},
                {"key": "S2.3", "kind": "guidance", "applies_to": "trainer", "text": "Refer when in doubt."},
            ],
        },
        {
            "key": "S3",
            "title": "Organisation",
            "clauses": [
                {
                    "key": "S3.3",
                    "kind": "requirement",
                    "applies_to": "training_organisation",
                    "text": "Three.",
                },
                {"key": "S3.1", "kind": "requirement", "applies_to": "training_organisation", "text": "One."},
                {"key": "S3.2", "kind": "requirement", "applies_to": "training_organisation", "text": "Two."},
            ],
        },
    ],
    "regional_notes": [{"region": "142", "target": "S2", "text": "Asia Pacific chapters adapt the wording."}],
    "contributors": [{"name": "Ada Example", "affiliation": "Example Institute", "region": "Germany"}],
}


def translation_of(content: dict[str, Any], prefix: str) -> dict[str, Any]:
    """A complete translation body of ``content`` whose texts start with ``prefix``."""
    return {
        "title": f"{prefix} {content['title']}",
        "summary": f"{prefix} {content['summary']}" if content.get("summary") else None,
        "sections": [
            {
                "key": s["key"],
                "title": f"{prefix} {s['title']}",
                **({"intro": f"{prefix} {s['intro']}"} if s.get("intro") else {}),
                "clauses": [{"key": c["key"], "text": f"{prefix} {c['text']}"} for c in s["clauses"]],
            }
            for s in content["sections"]
        ],
    }


class Api:
    """Small helpers over the HTTP API for arranging documents."""

    def __init__(self, client: TestClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    def url(self, version: str, slug: str = SLUG) -> str:
        return f"/v1/standards/{slug}/versions/{version}"

    def draft(self, version: str, *, based_on: str | None = None, slug: str = SLUG) -> Any:
        body: dict[str, Any] = {"version": version, "document": {"title": "Demo standards", "language": "en"}}
        if based_on:
            body["based_on"] = based_on
        r = self.client.post(f"/v1/standards/{slug}/versions", json=body, headers=self.headers)
        assert r.status_code == 201, r.text
        return r

    def replace(self, version: str, content: dict[str, Any], *, slug: str = SLUG) -> Any:
        current = self.client.get(self.url(version, slug), headers=self.headers)
        assert current.status_code == 200, current.text
        body = {**current.json(), **copy.deepcopy(content)}
        r = self.client.put(
            self.url(version, slug), json=body, headers={**self.headers, "If-Match": current.headers["etag"]}
        )
        assert r.status_code == 200, r.text
        return r

    def publish(self, version: str, *, slug: str = SLUG, body: dict[str, Any] | None = None) -> Any:
        r = self.client.post(f"{self.url(version, slug)}/publish", json=body, headers=self.headers)
        assert r.status_code == 200, r.text
        return r

    def release(self, version: str, content: dict[str, Any], *, slug: str = SLUG) -> Any:
        self.draft(version, slug=slug)
        self.replace(version, content, slug=slug)
        return self.publish(version, slug=slug)


@pytest.fixture
def editor(auth: Callable[..., dict[str, str]]) -> dict[str, str]:
    """Bearer headers with ``standards:write``."""
    return auth("standards:write")


@pytest.fixture
def api(client: TestClient, editor: dict[str, str]) -> Api:
    return Api(client, editor)


@pytest.fixture
def demo(api: Api) -> Api:
    """The demo document with 1.0 (superseded) and 2.0 (current) published."""
    api.release("1.0", DEMO_V1)
    api.release("2.0", DEMO_V2)
    return api


@pytest.fixture
def commenter(client: TestClient, session_factory: Callable[[], Any]) -> Callable[..., dict[str, str]]:
    """Bearer headers of a new ``review:comment`` client: ``commenter(organisation=…, region="NL")``."""
    from tests.helpers import commenter_headers

    def make(**fields: str) -> dict[str, str]:
        return commenter_headers(client, session_factory, **fields)

    return make


def in_days(days: float) -> str:
    """An RFC 3339 instant ``days`` from now (UTC)."""
    import datetime as dt

    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).isoformat()


@pytest.fixture
def reviewed(demo: Api) -> Api:
    """The demo document with 1.0 and 2.0 published and draft 2.1 (based on 2.0) under review."""
    demo.draft("2.1", based_on="2.0")
    r = demo.client.post(
        f"{demo.url('2.1')}/review",
        json={"closes_at": in_days(30), "summary": "Tell us."},
        headers=demo.headers,
    )
    assert r.status_code == 201, r.text
    return demo
