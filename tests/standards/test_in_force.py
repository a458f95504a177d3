"""The version in force on a date: the sample's history, withdrawals, versions that take effect later."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.sample.loader import load_sample
from tests.conftest import assert_problem
from tests.standards.conftest import Api, in_days

DOC = "/v1/standards/training-standards"


@pytest.fixture
def sample(client: TestClient, engine: Any, settings: Any, editor: dict[str, str]) -> TestClient:
    assert load_sample(engine=engine, settings=settings) is True
    return client


def _in_force(c: TestClient, at: str | None, **headers: str) -> Any:
    return c.get(f"{DOC}/in-force", params={"at": at} if at else {}, headers=headers)


@pytest.mark.parametrize(
    ("at", "version"),
    [
        ("2017-11-27T09:00:00Z", "1.0"),
        ("2017-11-27T10:00:00+01:00", "1.0"),  # the same instant, another offset
        ("2019-05-04T12:00:00Z", "1.0"),
        ("2022-05-04T00:00:00Z", "2.0"),
        ("2021-07-01T08:59:59.999Z", "1.0"),
        ("2021-07-01T09:00:00Z", "2.0"),
        ("2040-01-01T00:00:00Z", "2.0"),
    ],
)
def test_sample_history(sample: TestClient, at: str, version: str) -> None:
    r = _in_force(sample, at)
    assert r.status_code == 200, r.text
    assert r.headers["content-location"] == f"{DOC}/versions/{version}"
    assert r.headers["cache-control"] == "public, max-age=60"
    body = r.json()
    assert body["version"] == version
    # the body is the version's own representation
    assert body == sample.get(f"{DOC}/versions/{version}").json()
    assert (body["in_force"], body["in_force_version"]) == (version == "2.0", "2.0")


def test_before_the_first_version_and_bad_instants(sample: TestClient) -> None:
    assert_problem(_in_force(sample, "2017-11-27T08:59:59Z"), 404)
    assert_problem(_in_force(sample, "1999-01-01T00:00:00Z"), 404)
    for bad in ("2020-01-01", "yesterday", "2020-01-01T00:00:00", "1577836800", "9999-12-31T23:59:59-05:00"):
        assert_problem(_in_force(sample, bad), 422)
    assert_problem(sample.get("/v1/standards/nope/in-force"), 404)


def test_same_representations_languages_and_conditional_requests(sample: TestClient) -> None:
    at = "2023-03-01T00:00:00Z"
    de = sample.get(f"{DOC}/in-force", params={"at": at, "lang": "de"})
    assert (de.headers["content-language"], de.json()["language"]) == ("de", "de")
    fallback = sample.get(f"{DOC}/in-force", params={"at": "2018-03-01T00:00:00Z", "lang": "de"})
    assert fallback.headers["content-language"] == "en"  # 1.0 has no German translation
    md = _in_force(sample, at, Accept="text/markdown")
    assert md.text == sample.get(f"{DOC}/versions/2.0", headers={"Accept": "text/markdown"}).text
    html = _in_force(sample, at, Accept="text/html")
    assert html.text.startswith('<article class="imi-standards"')
    tag = _in_force(sample, at).headers["etag"]
    assert _in_force(sample, "2024-01-01T00:00:00Z", **{"If-None-Match": tag}).status_code == 304
    assert _in_force(sample, at, **{"If-None-Match": f"W/{tag}"}).status_code == 304
    assert_problem(sample.get(f"{DOC}/in-force", params={"at": at, "lang": "en_US"}), 422)
    assert_problem(_in_force(sample, at, Accept="image/png"), 406)
    assert sample.head(f"{DOC}/in-force", params={"at": at}).status_code == 200
    now = _in_force(sample, None)
    assert now.json()["version"] == "2.0"


def test_a_withdrawal_does_not_change_the_past(sample: TestClient, editor: dict[str, str]) -> None:
    before = dt.datetime.now(dt.UTC)
    r = sample.post(f"{DOC}/versions/2.0/withdraw", headers=editor)
    assert r.status_code == 200
    withdrawn_at = r.json()["withdrawn_at"]
    assert _in_force(sample, "2022-05-04T00:00:00Z").json()["version"] == "2.0"
    assert _in_force(sample, before.isoformat()).json()["version"] == "2.0"
    assert _in_force(sample, withdrawn_at).json()["version"] == "1.0"
    assert _in_force(sample, None).json()["version"] == "1.0"
    current = sample.get(f"{DOC}/current").json()
    assert (current["version"], current["in_force"], current["in_force_version"]) == ("1.0", True, "1.0")
    assert sample.get(f"{DOC}/versions/2.0").json()["in_force"] is False


def test_a_version_that_takes_effect_later_is_current_but_not_in_force(api: Api) -> None:
    from tests.standards.conftest import DEMO_V1, DEMO_V2

    c = api.client
    api.release("1.0", DEMO_V1)
    api.draft("2.0")
    api.replace("2.0", DEMO_V2)
    takes_effect = in_days(1)
    api.publish("2.0", body={"effective_from": takes_effect})
    current = c.get("/v1/standards/demo/current")
    body = current.json()
    assert (body["version"], body["status"], body["in_force"], body["in_force_version"]) == (
        "2.0",
        "published",
        False,
        "1.0",
    )
    assert current.headers["content-location"] == "/v1/standards/demo/versions/2.0"
    v1 = c.get("/v1/standards/demo/versions/1.0")
    assert (v1.json()["status"], v1.json()["in_force"]) == ("superseded", True)
    assert c.get("/v1/standards/demo/in-force").json()["version"] == "1.0"
    assert c.get("/v1/standards/demo/in-force", params={"at": in_days(2)}).json()["version"] == "2.0"
    snapshot = c.get("/v1/snapshot").json()["standards"][0]
    assert (snapshot["version"], snapshot["in_force"], snapshot["in_force_version"]) == ("2.0", False, "1.0")


def test_representations_change_when_a_version_takes_effect(api: Api) -> None:
    """Cached answers that say which version is in force are kept no longer than until it changes."""
    import time

    from tests.standards.conftest import DEMO_V1, DEMO_V2

    c = api.client
    api.release("1.0", DEMO_V1)
    api.draft("2.0")
    api.replace("2.0", DEMO_V2)
    api.publish("2.0", body={"effective_from": in_days(1.5 / 86400)})
    first = c.get("/v1/standards/demo/current")
    assert first.json()["in_force"] is False
    assert int(first.headers["cache-control"].rsplit("=", 1)[1]) <= 2
    version = c.get("/v1/standards/demo/versions/1.0")
    assert int(version.headers["cache-control"].rsplit("=", 1)[1]) <= 2
    assert c.get("/v1/snapshot").json()["standards"][0]["in_force"] is False
    time.sleep(1.8)
    assert (c.get("/v1/standards/demo/current").json()["in_force"]) is True
    assert c.get("/v1/standards/demo/versions/1.0").json()["in_force"] is False
    assert c.get("/v1/standards/demo/in-force").json()["version"] == "2.0"
    assert c.get("/v1/snapshot").json()["standards"][0]["in_force"] is True
    assert c.get("/v1/standards/demo/current").headers["cache-control"] == "public, max-age=60"
