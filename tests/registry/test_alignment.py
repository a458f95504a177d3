"""The alignment lifecycle across major and minor publishes, the grace-period lapse,
suspension, withdrawal, the history and the events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from service.core import jobs
from tests.conftest import BASE_URL, assert_problem
from tests.registry.conftest import EVIDENCE, SLUG


def _status(client: TestClient, school_id: str) -> dict[str, Any]:
    return dict(client.get(f"/v1/schools/{school_id}").json()["alignment"])


def _alignment_events(client: TestClient) -> list[dict[str, Any]]:
    r = client.get("/v1/events", params={"type": "school.alignment.changed", "limit": 200})
    return [e["data"] for e in r.json()["data"]]


def _parse(ts: str) -> dt.datetime:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))


def test_state_needs_a_published_version_and_an_http_url(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    publish: Callable[[str], dict[str, Any]],
    state: Callable[..., Any],
    steward: dict[str, str],
) -> None:
    school = make_school()
    body = assert_problem(state(school["id"], "1.0"), 422)
    assert body["published_versions"] == []
    publish("1.0")
    assert_problem(state(school["id"], "1.1"), 422)
    url = f"/v1/schools/{school['id']}/alignment"
    for bad in (
        {"version": "1.0", "evidence_url": "javascript:alert(1)", "stated_by": "A"},
        {"version": "1.0", "evidence_url": "mailto:a@example.org", "stated_by": "A"},
        {"version": "one", "evidence_url": EVIDENCE, "stated_by": "A"},
        {"version": "1.0", "evidence_url": EVIDENCE, "stated_by": ""},
        {"version": "1.0", "evidence_url": EVIDENCE},
        {"version": "1.0", "evidence_url": EVIDENCE, "stated_by": "A", "extra": 1},
    ):
        assert_problem(client.post(url, json=bad, headers=steward), 422)
    assert _status(client, school["id"])["status"] == "none"
    r = state(school["id"], "1.0")
    assert r.status_code == 200, r.text
    assert r.json()["alignment"]["status"] == "aligned"


def test_major_publish_requires_reaffirmation_and_minor_does_not(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    publish: Callable[[str], dict[str, Any]],
    state: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
) -> None:
    publish("1.0")
    old = make_school(name="Old Major School", country="JP")
    fresh = make_school(name="Never Stated", country="JP")
    school_headers = auth("school:self", school_id=old["id"])
    r = state(old["id"], "1.0", headers=school_headers)
    assert r.status_code == 200, r.text

    publish("1.1")  # minor: nothing changes
    assert _status(client, old["id"])["status"] == "aligned"
    assert len(_alignment_events(client)) == 1

    published = publish("2.0")
    alignment = _status(client, old["id"])
    assert alignment["status"] == "reaffirmation_due"
    assert alignment["version"] == "1.0"
    due = _parse(alignment["reaffirmation_due_by"])
    publish_time = _parse(published["published_at"])
    # Due 180 days after the publication (the event's time, within the same transaction).
    assert abs(due - (publish_time + dt.timedelta(days=180))) < dt.timedelta(seconds=2)
    assert _status(client, fresh["id"])["status"] == "none"

    events = _alignment_events(client)
    assert events[-1] == {
        "school_id": old["id"],
        "name": "Old Major School",
        "country": "JP",
        "previous_status": "aligned",
        "status": "reaffirmation_due",
        "aligned_version": "1.0",
        "reaffirmation_due_by": alignment["reaffirmation_due_by"],
        "links": {
            "self": f"{BASE_URL}/v1/schools/{old['id']}",
            "affiliation": f"{BASE_URL}/v1/schools/{old['id']}/affiliation",
            "history": f"{BASE_URL}/v1/schools/{old['id']}/alignment/history",
        },
    }
    # The event follows the publish event in the feed (same transaction, next sequence).
    feed = client.get("/v1/events", params={"limit": 200}).json()["data"]
    assert [e["type"] for e in feed[-2:]] == ["standards.version.published", "school.alignment.changed"]
    assert feed[-2]["data"]["version"] == "2.0"
    assert feed[-1]["sequence"] == feed[-2]["sequence"] + 1

    # Stating the old major is no longer possible; re-affirming with 2.0 is.
    assert_problem(state(old["id"], "1.0", headers=school_headers), 422)
    r = state(old["id"], "2.0", headers=school_headers)
    assert r.json()["alignment"]["status"] == "aligned"
    assert r.json()["alignment"]["reaffirmation_due_by"] is None

    publish("2.1")  # minor again: stays aligned
    assert _status(client, old["id"])["status"] == "aligned"
    history = client.get(f"/v1/schools/{old['id']}/alignment/history").json()["data"]
    assert [(h["action"], h["actor"], h["previous_status"], h["status"], h["version"]) for h in history] == [
        ("stated", "school", "none", "aligned", "1.0"),
        ("reaffirmation_required", "system", "aligned", "reaffirmation_due", "1.0"),
        ("renewed", "school", "reaffirmation_due", "aligned", "2.0"),
    ]
    assert history[0]["evidence_url"] == EVIDENCE
    assert history[0]["stated_by"] == "Mira Example, director"


def test_lapse_job_after_the_grace_period(
    client: TestClient,
    engine: Any,
    make_school: Callable[..., dict[str, Any]],
    publish: Callable[[str], dict[str, Any]],
    state: Callable[..., Any],
) -> None:
    publish("1.0")
    due_school = make_school(name="Due")
    renewed = make_school(name="Renewed")
    for school in (due_school, renewed):
        assert state(school["id"], "1.0").status_code == 200
    publish("2.0")
    assert state(renewed["id"], "2.0").status_code == 200
    due = _parse(_status(client, due_school["id"])["reaffirmation_due_by"])

    assert jobs.run_job(engine, "registry.lapse", now=due - dt.timedelta(seconds=1)) == 0
    assert _status(client, due_school["id"])["status"] == "reaffirmation_due"
    assert jobs.run_job(engine, "registry.lapse", now=due + dt.timedelta(seconds=1)) == 1
    assert _status(client, due_school["id"])["status"] == "lapsed"
    assert _status(client, renewed["id"])["status"] == "aligned"
    assert jobs.run_job(engine, "registry.lapse", now=due + dt.timedelta(days=400)) == 0

    last = _alignment_events(client)[-1]
    assert (last["school_id"], last["previous_status"], last["status"]) == (
        due_school["id"],
        "reaffirmation_due",
        "lapsed",
    )
    history = client.get(f"/v1/schools/{due_school['id']}/alignment/history").json()["data"]
    assert (history[-1]["action"], history[-1]["actor"], history[-1]["at"]) == (
        "lapsed",
        "system",
        (due + dt.timedelta(seconds=1)).isoformat().replace("+00:00", "Z"),
    )
    # A lapsed school may state again.
    assert state(due_school["id"], "2.0").json()["alignment"]["status"] == "aligned"


def test_suspension_blocks_the_school_until_a_steward_acts(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    publish: Callable[[str], dict[str, Any]],
    state: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    steward: dict[str, str],
) -> None:
    publish("1.0")
    school = make_school()
    me = auth("school:self", school_id=school["id"])
    url = f"/v1/schools/{school['id']}/alignment"
    assert state(school["id"], "1.0", headers=me).status_code == 200

    r = client.post(f"{url}/suspend", json={"reason": "evidence under review"}, headers=steward)
    assert r.status_code == 200, r.text
    assert r.json()["alignment"]["status"] == "suspended"
    assert_problem(client.post(f"{url}/suspend", headers=steward), 409)
    assert_problem(state(school["id"], "1.0", headers=me), 409)
    assert_problem(client.post(f"{url}/withdraw", headers=me), 409)

    # A steward records a renewed statement: the school is aligned again and may act itself.
    assert state(school["id"], "1.0", headers=steward).json()["alignment"]["status"] == "aligned"
    r = client.post(f"{url}/withdraw", json={"reason": "closing the programme"}, headers=me)
    assert r.json()["alignment"]["status"] == "withdrawn"
    assert_problem(client.post(f"{url}/withdraw", headers=me), 409)

    history = client.get(f"{url}/history").json()["data"]
    assert [(h["action"], h["actor"], h["status"], h["reason"]) for h in history] == [
        ("stated", "school", "aligned", None),
        ("suspended", "steward", "suspended", "evidence under review"),
        ("stated", "steward", "aligned", None),
        ("withdrawn", "school", "withdrawn", "closing the programme"),
    ]
    assert [(e["previous_status"], e["status"]) for e in _alignment_events(client)] == [
        ("none", "aligned"),
        ("aligned", "suspended"),
        ("suspended", "aligned"),
        ("aligned", "withdrawn"),
    ]


def test_alignment_if_match_is_optional_but_checked(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    publish: Callable[[str], dict[str, Any]],
    steward: dict[str, str],
) -> None:
    publish("1.0")
    school = make_school()
    url = f"/v1/schools/{school['id']}/alignment"
    body = {"version": "1.0", "evidence_url": EVIDENCE, "stated_by": "A. Steward"}
    etag = client.get(f"/v1/schools/{school['id']}").headers["ETag"]
    assert_problem(client.post(url, json=body, headers={**steward, "If-Match": '"old"'}), 412)
    assert client.post(url, json=body, headers={**steward, "If-Match": etag}).status_code == 200
    assert_problem(client.post(url, json=body, headers={**steward, "If-Match": etag}), 412)


def test_history_pages_and_unknown_school(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    publish: Callable[[str], dict[str, Any]],
    state: Callable[..., Any],
) -> None:
    publish("1.0")
    school = make_school()
    for _ in range(3):
        assert state(school["id"], "1.0").status_code == 200
    url = f"/v1/schools/{school['id']}/alignment/history"
    first = client.get(url, params={"limit": 2})
    assert [h["action"] for h in first.json()["data"]] == ["stated", "renewed"]
    assert first.headers["Link"].endswith('>; rel="next"')
    second = client.get(url, params={"limit": 2, "cursor": first.json()["next_cursor"]}).json()
    assert [h["action"] for h in second["data"]] == ["renewed"]
    assert second["next_cursor"] is None
    assert_problem(client.get(url, params={"cursor": "garbage!"}), 422)
    assert_problem(client.get("/v1/schools/sch_nope/alignment/history"), 404)


def test_statements_racing_a_major_publish_never_stay_on_the_old_major(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    publish: Callable[[str], dict[str, Any]],
    state: Callable[..., Any],
    editor: dict[str, str],
) -> None:
    """Each 1.0 statement either commits before 2.0 (then the publish moves it) or after (then 422)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    publish("1.0")
    r = client.post(
        f"/v1/standards/{SLUG}/versions", json={"version": "2.0", "based_on": "1.0"}, headers=editor
    )
    assert r.status_code == 201, r.text
    schools = [make_school(name=f"Racing School {i}", country="DE")["id"] for i in range(8)]
    barrier = threading.Barrier(len(schools) + 1)

    def statement(school_id: str) -> int:
        barrier.wait()
        return int(state(school_id, "1.0").status_code)

    def release() -> int:
        barrier.wait()
        return client.post(f"/v1/standards/{SLUG}/versions/2.0/publish", headers=editor).status_code

    with ThreadPoolExecutor(len(schools) + 1) as pool:
        published = pool.submit(release)
        codes = list(pool.map(statement, schools))
    assert published.result() == 200
    assert set(codes) <= {200, 422}
    for school_id, code in zip(schools, codes, strict=True):
        status = _status(client, school_id)["status"]
        assert status == ("reaffirmation_due" if code == 200 else "none"), (school_id, code, status)
