"""Webhook filters (issue 11, point 3): countries, documents, languages — through the API, the
fan-out's one INSERT … SELECT, real deliveries to a receiver on 127.0.0.1, ``recover`` and the
JSON change feed, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from tests.conftest import assert_problem
from tests.helpers import SLUG, publish_version, wait_for
from tests.webhooks.conftest import Receiver

OTHER = "ethics-guidelines"


def _translation(version: str) -> dict[str, Any]:
    return {
        "title": f"Ausbildungsstandards {version}",
        "sections": [{"key": "A", "title": "Praxis", "clauses": [{"key": "A1", "text": "Täglich üben."}]}],
    }


def _received(receiver: Receiver, url: str) -> list[tuple[str, str]]:
    out = []
    for request in receiver.received(url):
        event = json.loads(request.body)
        data = event["data"]
        out.append((event["type"], data.get("country") or data.get("language") or data.get("document")))
    return sorted(out)


def test_filters_choose_what_each_endpoint_receives(
    client: Any,
    receiver: Receiver,
    auth: Callable[..., dict[str, str]],
    make_endpoint: Callable[..., Any],
    manager: dict[str, str],
) -> None:
    editor, steward = auth("standards:write"), auth("registry:write")
    publish_version(client, f"/v1/standards/{SLUG}/versions", editor, "1.0", new_document=True)
    publish_version(client, f"/v1/standards/{OTHER}/versions", editor, "1.0", new_document=True)

    def endpoint(name: str, flt: dict[str, list[str]] | None, types: list[str] | None = None) -> str:
        url = receiver.url(name)
        body: dict[str, Any] = {"url": url}
        if flt is not None:
            body["filter"] = flt
        if types is not None:
            body["event_types"] = types
        r = client.post("/v1/webhooks/endpoints", json=body, headers=manager)
        assert r.status_code == 201, r.text
        return url

    everything = endpoint("all", None)
    germany = endpoint("de", {"countries": ["de"]})
    benelux = endpoint("nl-be", {"countries": ["NL", "BE"], "documents": [SLUG]})
    ethics = endpoint("ethics", {"documents": [OTHER]})
    german = endpoint("lang-de", {"languages": ["DE"]}, ["standards.translation.published"])
    nowhere = endpoint("aq", {"countries": ["AQ"]}, ["school.listed", "school.alignment.changed"])

    for name, country in (("Isar", "DE"), ("Stille Zee", "NL"), ("Sakura", "JP")):
        r = client.post("/v1/schools", json={"name": name, "country": country}, headers=steward)
        assert r.status_code == 201, r.text
    publish_version(client, f"/v1/standards/{SLUG}/versions", editor, "1.1", based_on="1.0")
    r = client.put(
        f"/v1/standards/{SLUG}/versions/1.1/translations/de", json=_translation("1.1"), headers=editor
    )
    assert r.status_code == 201, r.text
    r = client.put(
        f"/v1/standards/{OTHER}/versions/1.0/translations/fr", json=_translation("1.0"), headers=editor
    )
    assert r.status_code == 201, r.text

    wait_for(lambda: len(receiver.received(everything)) == 6, what="every event at the unfiltered endpoint")
    wait_for(lambda: len(receiver.received(ethics)) == 4, what="the ethics endpoint's deliveries")
    assert _received(receiver, everything) == [
        ("school.listed", "DE"),
        ("school.listed", "JP"),
        ("school.listed", "NL"),
        ("standards.translation.published", "de"),
        ("standards.translation.published", "fr"),
        ("standards.version.published", SLUG),
    ]
    assert _received(receiver, germany) == [
        ("school.listed", "DE"),
        ("standards.translation.published", "de"),
        ("standards.translation.published", "fr"),
        ("standards.version.published", SLUG),
    ]
    assert _received(receiver, benelux) == [
        ("school.listed", "NL"),
        ("standards.translation.published", "de"),
        ("standards.version.published", SLUG),
    ]
    # A document filter narrows standards events only: school events (no document) pass.
    assert _received(receiver, ethics) == [
        ("school.listed", "DE"),
        ("school.listed", "JP"),
        ("school.listed", "NL"),
        ("standards.translation.published", "fr"),
    ]
    assert _received(receiver, german) == [("standards.translation.published", "de")]
    # A filter that matches nothing: no delivery at all (nor a stored payload for it).
    ids = {e["url"]: e["id"] for e in client.get("/v1/webhooks/endpoints", headers=manager).json()["data"]}
    r = client.get(f"/v1/webhooks/endpoints/{ids[nowhere]}/deliveries", headers=manager)
    assert r.json()["data"] == [] and receiver.received(nowhere) == []


def test_filters_are_checked_and_stored_canonical(
    client: Any, manager: dict[str, str], auth: Callable[..., dict[str, str]]
) -> None:
    publish_version(
        client, f"/v1/standards/{SLUG}/versions", auth("standards:write"), "1.0", new_document=True
    )
    url = "http://127.0.0.1:9/hook"
    r = client.post(
        "/v1/webhooks/endpoints",
        json={
            "url": url,
            "filter": {"countries": ["de", "DE", "nl"], "languages": ["pt-br"], "documents": [SLUG]},
        },
        headers=manager,
    )
    assert r.status_code == 201, r.text
    endpoint = r.json()
    assert endpoint["filter"] == {"countries": ["DE", "NL"], "documents": [SLUG], "languages": ["pt-BR"]}
    assert client.post("/v1/webhooks/endpoints", json={"url": url}, headers=manager).json()["filter"] is None
    for bad in (
        {"countries": ["XX"]},
        {"countries": ["Germany"]},
        {"countries": ["DEU"]},
        {"documents": ["no-such-document"]},
        {"languages": ["xx"]},
        {"languages": ["en_US"]},
        {"regions": ["150"]},
        {"countries": "DE"},
        {"countries": ["D" * 5000]},
    ):
        body = assert_problem(
            client.post("/v1/webhooks/endpoints", json={"url": url, "filter": bad}, headers=manager), 422
        )
        assert "Traceback" not in body["detail"]
    path = f"/v1/webhooks/endpoints/{endpoint['id']}"
    assert_problem(client.patch(path, json={"filter": {"countries": ["ZZ"]}}, headers=manager), 422)
    assert_problem(client.patch(path, json={"filter": None}, headers=manager), 422)
    assert client.get(path, headers=manager).json()["filter"] == endpoint["filter"]  # unchanged by the 422s
    r = client.patch(path, json={"filter": {"countries": ["be"]}}, headers=manager)
    assert r.status_code == 200 and r.json()["filter"] == {
        "countries": ["BE"],
        "documents": [],
        "languages": [],
    }
    r = client.patch(path, json={"filter": {}}, headers=manager)
    assert r.status_code == 200 and r.json()["filter"] is None


def test_the_fan_out_is_one_insert_whatever_the_filters(
    client: Any, manager: dict[str, str], engine: Any, emit: Callable[..., Any], session_factory: Any
) -> None:
    from service.webhooks import service as webhooks

    with session_factory() as session:
        for n in range(120):
            webhooks.create_endpoint(
                session=session,
                owner="cli_filters",
                url=f"http://127.0.0.1:9/{n}",
                event_types=[],
                description="",
                keys_dir=client.app.state.settings.keys_dir,
                filter=None,
            )
            if n % 3 == 0:
                session.flush()
    with session_factory() as session:
        from service.webhooks.models import WebhookEndpoint

        rows = session.execute(sa.select(WebhookEndpoint)).scalars().all()
        for n, row in enumerate(rows):
            row.filter_countries = ["NL"] if n % 4 == 0 else (["DE"] if n % 4 == 1 else [])
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        emit("school.listed", {"id": "sch_1", "name": "A", "country": "NL", "listing": "listed"})
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO WEBHOOK_DELIVERIES")]
    assert len(inserts) == 1
    with session_factory() as session:
        made = session.execute(sa.text("SELECT count(*) FROM webhook_deliveries")).scalar_one()
    assert made == 90  # the 30 filtered to NL and the 60 without a country filter; not the 30 DE ones


def test_recover_and_the_change_feed_apply_the_same_filter(
    client: Any, manager: dict[str, str], auth: Callable[..., dict[str, str]]
) -> None:
    steward = auth("registry:write")
    for name, country in (("Isar", "DE"), ("Stille Zee", "NL"), ("Rhein", "DE")):
        assert (
            client.post("/v1/schools", json={"name": name, "country": country}, headers=steward).status_code
            == 201
        )
    feed = client.get("/v1/events", params={"country": "de"}).json()
    assert [e["data"]["name"] for e in feed["data"]] == ["Isar", "Rhein"]
    page = client.get("/v1/events", params={"country": "DE", "limit": 1})
    assert page.json()["next_cursor"] == "1"
    assert page.headers["link"] == '<http://testserver/v1/events?after=1&country=DE&limit=1>; rel="next"'
    assert client.get("/v1/events", params={"country": "AQ"}).json()["data"] == []
    for params in ({"country": "XX"}, {"document": "nope"}, {"language": "en_US"}):
        assert_problem(client.get("/v1/events", params=params), 422)
    # An endpoint registered now gets, through recover, only the missed events its filter passes.
    r = client.post(
        "/v1/webhooks/endpoints",
        json={"url": "http://127.0.0.1:9/recover", "filter": {"countries": ["DE"]}},
        headers=manager,
    )
    endpoint = r.json()
    r = client.post(
        f"/v1/webhooks/endpoints/{endpoint['id']}/recover",
        params={"since": "2000-01-01T00:00:00Z"},
        headers=manager,
    )
    assert r.status_code == 202 and r.json()["created"] == 2


def test_a_school_moving_country_reaches_the_endpoints_of_both_countries(
    client: Any,
    receiver: Receiver,
    auth: Callable[..., dict[str, str]],
    manager: dict[str, str],
) -> None:
    """A school that moves from DE to AT leaves the DE association's list: its ``school.updated``
    (country AT) reaches the DE endpoint as well as the AT one, and the JSON feed and
    ``recover`` filtered on DE include it; an NL endpoint gets nothing."""
    steward = auth("registry:write")
    urls = {}
    for country in ("DE", "AT", "NL"):
        urls[country] = receiver.url(country.lower())
        r = client.post(
            "/v1/webhooks/endpoints",
            json={
                "url": urls[country],
                "filter": {"countries": [country]},
                "event_types": ["school.updated"],
            },
            headers=manager,
        )
        assert r.status_code == 201, r.text
    r = client.post("/v1/schools", json={"name": "Isar", "country": "DE"}, headers=steward)
    school = r.json()
    etag = client.get(f"/v1/schools/{school['id']}").headers["ETag"]
    r = client.patch(
        f"/v1/schools/{school['id']}", json={"country": "AT"}, headers={**steward, "If-Match": etag}
    )
    assert r.status_code == 200, r.text
    # A later edit that keeps the country is not a move: it reaches AT only.
    etag = r.headers["ETag"]
    r = client.patch(
        f"/v1/schools/{school['id']}", json={"city": "Wien"}, headers={**steward, "If-Match": etag}
    )
    assert r.status_code == 200, r.text

    wait_for(lambda: len(receiver.received(urls["AT"])) == 2, what="the AT endpoint's two updates")
    wait_for(lambda: len(receiver.received(urls["DE"])) == 1, what="the move at the DE endpoint")
    moved = json.loads(receiver.received(urls["DE"])[0].body)
    assert (moved["type"], moved["data"]["country"], moved["data"]["id"]) == (
        "school.updated",
        "AT",
        school["id"],
    )
    assert receiver.received(urls["NL"]) == []

    feed = client.get("/v1/events", params={"country": "DE", "type": "school.updated"}).json()["data"]
    assert [e["id"] for e in feed] == [moved["id"]]
    ids = {e["url"]: e["id"] for e in client.get("/v1/webhooks/endpoints", headers=manager).json()["data"]}
    r = client.post(
        f"/v1/webhooks/endpoints/{ids[urls['DE']]}/recover",
        params={"since": "2000-01-01T00:00:00Z"},
        headers=manager,
    )
    assert r.status_code == 202 and r.json()["created"] == 0  # it has the move already


def test_a_language_filter_is_a_basic_range(
    client: Any,
    receiver: Receiver,
    auth: Callable[..., dict[str, str]],
    manager: dict[str, str],
) -> None:
    """``languages: ["de"]`` admits the ``de-CH`` translation as well as ``de`` (RFC 4647 basic
    filtering, as the API's language negotiation); ``de-CH`` admits only itself; the JSON feed
    and the Atom feed's ``language`` agree."""
    editor = auth("standards:write")
    publish_version(client, f"/v1/standards/{SLUG}/versions", editor, "1.0", new_document=True)
    urls = {}
    for name, ranges in (("de", ["de"]), ("de-ch", ["de-ch"]), ("fr", ["fr"])):
        urls[name] = receiver.url(name)
        r = client.post(
            "/v1/webhooks/endpoints",
            json={
                "url": urls[name],
                "filter": {"languages": ranges},
                "event_types": ["standards.translation.published"],
            },
            headers=manager,
        )
        assert r.status_code == 201, r.text
    for tag in ("de-CH", "de", "dsb"):
        r = client.put(
            f"/v1/standards/{SLUG}/versions/1.0/translations/{tag}", json=_translation("1.0"), headers=editor
        )
        assert r.status_code == 201, (tag, r.text)

    wait_for(
        lambda: len(receiver.received(urls["de"])) == 2, what="both German translations at the de endpoint"
    )
    wait_for(lambda: len(receiver.received(urls["de-ch"])) == 1, what="the Swiss one at the de-CH endpoint")
    assert _received(receiver, urls["de"]) == [
        ("standards.translation.published", "de"),
        ("standards.translation.published", "de-CH"),
    ]
    assert _received(receiver, urls["de-ch"]) == [("standards.translation.published", "de-CH")]
    assert receiver.received(urls["fr"]) == []
    feed = client.get("/v1/events", params={"language": "de", "type": "standards.translation.published"})
    assert [e["data"]["language"] for e in feed.json()["data"]] == ["de-CH", "de"]  # not dsb
    atom = client.get("/v1/feeds/standards.atom", params={"language": "de"}).text
    assert atom.count("<entry>") == 3  # the publish and both German translations


def test_a_bad_filter_value_names_the_body_member_it_came_from(
    client: Any, manager: dict[str, str], auth: Callable[..., dict[str, str]]
) -> None:
    """A filter's codes are read by the same rules and messages as the query parameters, but
    the problem names where the value was: ``filter.countries``, not a ``country`` parameter
    the request never had."""
    publish_version(
        client, f"/v1/standards/{SLUG}/versions", auth("standards:write"), "1.0", new_document=True
    )
    url = "http://127.0.0.1:9/hook"
    for bad, member, said in (
        ({"countries": ["DE", "Germany"]}, "filter.countries", "did you mean DE?"),
        ({"languages": ["de_CH"]}, "filter.languages", "did you mean de-CH?"),
        ({"documents": ["no-such-document"]}, "filter.documents", "no standards document"),
    ):
        body = assert_problem(
            client.post("/v1/webhooks/endpoints", json={"url": url, "filter": bad}, headers=manager), 422
        )
        assert body["parameter"] == member and body["detail"].startswith(f"`{member}`: "), body
        assert said in body["detail"]
    # the feeds' query parameters keep their own names
    feed = assert_problem(client.get("/v1/feeds/schools.atom", params={"country": "Germany"}), 422)
    assert feed["parameter"] == "country" and feed["hint"] == "DE"
