"""The review's four events: sequenced in the feed, and delivered signed to a real receiver."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from standardwebhooks import Webhook

from tests.helpers import commenter_headers, wait_for
from tests.standards.conftest import DEMO_V1, DEMO_V2, Api
from tests.webhooks.conftest import Receiver

REVIEW_TYPES = [
    "standards.review.opened",
    "standards.comment.created",
    "standards.review.closed",
    "standards.comment.disposed",
]
V21 = "/v1/standards/demo/versions/2.1"


def test_review_events_in_the_feed_and_by_webhook(
    client: Any,
    auth: Callable[..., dict[str, str]],
    session_factory: Callable[[], Any],
    receiver: Receiver,
    make_endpoint: Callable[..., dict[str, Any]],
) -> None:
    editor = auth("standards:write")
    api = Api(client, editor)
    api.release("1.0", DEMO_V1)
    api.draft("2.1", based_on="1.0")
    api.replace("2.1", DEMO_V2)
    url = receiver.url()
    endpoint = make_endpoint(url, event_types=REVIEW_TYPES)
    commenter = commenter_headers(
        client,
        session_factory,
        organisation="Asia Pacific Mindfulness Network",
        region="142",
        name="Jane Doe",
    )

    closes = (dt.datetime.now(dt.UTC) + dt.timedelta(days=14)).isoformat()
    assert client.post(f"{V21}/review", json={"closes_at": closes}, headers=editor).status_code == 201
    r = client.post(
        f"{V21}/comments", json={"clause_key": "S2.3", "text": "Refer to whom?"}, headers=commenter
    )
    assert r.status_code == 201
    comment_id = r.json()["id"]
    assert client.post(f"{V21}/review/close", headers=editor).status_code == 200
    disposed = client.post(
        f"{V21}/comments/{comment_id}/disposition",
        json={"outcome": "accepted", "response": "We name the supervisor."},
        headers=editor,
    )
    assert disposed.status_code == 200

    feed = client.get("/v1/events", params={"after": 1}).json()["data"]
    assert [(e["sequence"], e["type"]) for e in feed] == list(zip([2, 3, 4, 5], REVIEW_TYPES, strict=True))
    opened, created, closed, dispositions = (e["data"] for e in feed)
    assert (opened["document"], opened["version"], opened["links"]["review"]) == (
        "demo",
        "2.1",
        f"http://testserver{V21}/review",
    )
    assert {k: created[k] for k in ("comment_id", "clause_key", "section_key", "organisation", "region")} == {
        "comment_id": comment_id,
        "clause_key": "S2.3",
        "section_key": "S2",
        "organisation": "Asia Pacific Mindfulness Network",
        "region": "142",
    }
    assert created["commenter_type"] == "association" and created["text"] == "Refer to whom?"
    assert (closed["closed_early"], closed["comments"]) == (True, 1)
    assert (dispositions["outcome"], dispositions["previous_outcome"]) == ("accepted", None)
    # who stands behind a comment is an organisation: never the client, its name, or a person
    raw = json.dumps(feed)
    assert "cli_" not in raw and "Jane Doe" not in raw

    delivered = wait_for(
        lambda: len(receiver.received(url)) >= 4 and receiver.received(url), what="4 deliveries"
    )
    bodies = sorted(
        (Webhook(endpoint["secret"]).verify(req.body, req.headers) for req in delivered),
        key=lambda body: body["sequence"],
    )
    assert [(b["type"], b["id"]) for b in bodies] == [(e["type"], e["id"]) for e in feed]
    assert [b["data"] for b in bodies] == [e["data"] for e in feed]
