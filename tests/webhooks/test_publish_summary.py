"""``standards.version.published`` carries the editor's ``summary`` beside the clause-level
``changes`` (issue 16): in the feed, in a verified webhook delivery, and in its JSON Schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jsonschema
from standardwebhooks import Webhook

from tests.helpers import wait_for
from tests.webhooks.conftest import Receiver

DOC = "/v1/standards/guide"
CONTENT = {
    "title": "Guide",
    "summary": "The draft's own summary.",
    "sections": [
        {
            "key": "A",
            "title": "Practice",
            "clauses": [{"key": "A1", "kind": "requirement", "applies_to": "teacher", "text": "Practise."}],
        }
    ],
}


def _release(client: Any, editor: dict[str, str], version: str, publish: dict[str, Any] | None) -> None:
    body: dict[str, Any] = {"version": version}
    if version == "1.0":
        body["document"] = {"title": "Guide", "language": "en"}
    else:
        body["based_on"] = "1.0"
    assert client.post(f"{DOC}/versions", json=body, headers=editor).status_code == 201
    draft = client.get(f"{DOC}/versions/{version}", headers=editor)
    put = client.put(
        f"{DOC}/versions/{version}", json=CONTENT, headers={**editor, "If-Match": draft.headers["etag"]}
    )
    assert put.status_code == 200, put.text
    r = client.post(f"{DOC}/versions/{version}/publish", json=publish, headers=editor)
    assert r.status_code == 200, r.text


def test_the_publish_summary_reaches_the_feed_and_subscribers(
    client: Any,
    auth: Callable[..., dict[str, str]],
    receiver: Receiver,
    make_endpoint: Callable[..., dict[str, Any]],
) -> None:
    editor = auth("standards:write")
    url = receiver.url()
    endpoint = make_endpoint(url, ["standards.version.published"])
    _release(client, editor, "1.0", None)
    _release(client, editor, "1.1", {"summary": "Editorial fixes: “clearer” wording, ü."})

    feed = client.get("/v1/events", params={"type": "standards.version.published"}).json()["data"]
    assert [e["data"]["summary"] for e in feed] == [
        "The draft's own summary.",  # no summary at publish: the draft's
        "Editorial fixes: “clearer” wording, ü.",  # the editor's, given at publish
    ]
    assert feed[1]["data"]["changes"] == {"added": [], "removed": [], "modified": [], "moved": []}

    deliveries = wait_for(lambda: len(receiver.received(url)) == 2 and receiver.received(url))
    payloads = [Webhook(endpoint["secret"]).verify(d.body, d.headers) for d in deliveries]
    assert {p["data"]["summary"] for p in payloads} == {e["data"]["summary"] for e in feed}

    types = {t["type"]: t for t in client.get("/v1/webhooks/event-types").json()["data"]}
    schema = types["standards.version.published"]["schema"]
    assert "summary" in schema["properties"]
    for payload in payloads:
        jsonschema.validate(payload["data"], schema)
