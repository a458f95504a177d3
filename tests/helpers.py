"""Helpers shared by test packages that drive the public API."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

SLUG = "training-standards"


def publish_version(
    http: Any,
    versions_url: str,
    editor: dict[str, str],
    version: str,
    *,
    new_document: bool = False,
    based_on: str | None = None,
) -> dict[str, Any]:
    """Draft ``version``, give it one clause, publish it; returns the publish answer's body.

    ``http`` is anything with httpx's ``post``/``put`` (a ``TestClient`` or the ``httpx``
    module); ``versions_url`` is ``…/v1/standards/{slug}/versions``. ``new_document``
    creates the document with this first draft.
    """
    draft: dict[str, Any] = {"version": version}
    if new_document:
        draft["document"] = {"title": "Training Standards", "language": "en"}
    if based_on is not None:
        draft["based_on"] = based_on
    r = http.post(versions_url, json=draft, headers=editor)
    assert r.status_code == 201, r.text
    content = {
        "title": f"Training Standards {version}",
        "sections": [
            {
                "key": "A",
                "title": "Practice",
                "clauses": [
                    {
                        "key": "A1",
                        "kind": "requirement",
                        "applies_to": "teacher",
                        "text": f"Keep a daily practice ({version}).",
                    }
                ],
            }
        ],
    }
    r = http.put(f"{versions_url}/{version}", json=content, headers={**editor, "If-Match": r.headers["ETag"]})
    assert r.status_code == 200, r.text
    r = http.post(f"{versions_url}/{version}/publish", headers=editor)
    assert r.status_code == 200, r.text
    return dict(r.json())


def wait_for(
    predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02, *, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns something truthy and return that; fail naming ``what``
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met within {timeout:.1f} s")
        time.sleep(interval)


def commenter_headers(
    http: Any,
    session_factory: Callable[[], Any],
    *,
    organisation: str = "Deutscher Fachverband Achtsamkeit",
    region: str = "DE",
    commenter_type: str = "association",
    name: str = "commenting client",
) -> dict[str, str]:
    """Bearer headers of a new ``review:comment`` client standing for ``organisation``."""
    from service.security import clients

    with session_factory() as session:
        client, secret = clients.create_client(
            session=session,
            name=name,
            scopes=["review:comment"],
            organisation=organisation,
            region=region,
            commenter_type=commenter_type,
        )
        client_id = client.id
    r = http.post("/v1/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}
