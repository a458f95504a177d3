"""Helpers shared by test packages that drive the public API."""

from __future__ import annotations

import re
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


#: Hostile ``Accept-Language`` headers (issue 16): none may fail a read; each is ignored, or
#: read up to its well-formed part. The first is the 10,000-character header.
HOSTILE_ACCEPT_LANGUAGE = (
    "de-" + "x" * 10_000,
    ",".join(["zz"] * 5000),
    "de;q=" + "9" * 1000,
    "de;q=1.5",
    "de;q=abc",
    "ДЕ, 日本語",
    "de_CH",
    ";;;,,,===",
)


def words_in(*texts: str) -> set[str]:
    """The words of ``texts``, lower-cased (letters of any script; digits and punctuation split)."""
    return {w.lower() for text in texts for w in re.findall(r"[^\W\d_]+", text)}


def visible_text(markup: str) -> str:
    """What a reader sees of an HTML or SVG document: no tags, no style sheet, entities read."""
    import html

    without_style = re.sub(r"<style\b.*?</style>", " ", markup, flags=re.S | re.I)
    return html.unescape(re.sub(r"<[^>]*>", " ", without_style))


def vary_of(response: Any) -> list[str]:
    """The members of ``Vary``, lower-cased."""
    return [v.strip().lower() for v in response.headers.get("vary", "").split(",") if v.strip()]


def many_spellings(primary: str, count: int = 300) -> set[str]:
    """``count`` different ``Accept-Language`` headers that all come to ``primary``."""
    spellings = set()
    for n in range(count):
        region = ["CH", "AT", "DE", "LI", "ch", "at", "BE", "lu"][n % 8]
        q = f"{0.5 + (n % 499 + 1) / 1000:.3f}".rstrip("0").rstrip(".")
        spellings.add(f"{primary}-{region};q={q}, xx;q=0.{n % 4}, en;q=0.01")
    assert len(spellings) == count
    return spellings
