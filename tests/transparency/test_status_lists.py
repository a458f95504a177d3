"""Credential status lists: the draft's test vectors through an independent decoder, the
served token, status flips on withdraw, suspend, lapse and delist, and a verifier that
refuses a suspended school's credential offline with a cached list."""

from __future__ import annotations

import base64
import datetime as dt
import time
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet

from service.core.db import transaction
from service.registry import alignment, status_lists
from tests.conftest import BASE_URL, assert_problem
from tests.helpers import wait_for
from tests.transparency import verifier

# draft-ietf-oauth-status-list §4.1 and Appendix "Test vectors for Status List encoding".
SMALL = [
    (1, "eNrbuRgAAhcBXQ", [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]),
    (2, "eNo76fITAAPfAgc", [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3]),
]
LONG_1 = (
    "eNrt3AENwCAMAEGogklACtKQPg9LugC9k_ACvreiogEAAKkeCQAAAAAAAAAAAAAAAAAAAIBylgQAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAXG9IAAAAAAAAAPwsJAAAAAAAAAAAAAAAvhsSAAAAAAAAAAAA7KpLAAAAAAAAAAAAAAAAAAAA"
    "AJsLCQAAAAAAAAAAADjelAAAAAAAAAAAKjDMAQAAAACAZC8L2AEb"
)
LONG_1_SET = [0, 1993, 25460, 159495, 495669, 554353, 645645, 723232, 854545, 934534, 1000345]
LONG_2 = (
    "eNrt2zENACEQAEEuoaBABP5VIO01fCjIHTMStt9ovGVIAAAAAABAbiEBAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAEB5"
    "WwIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAID0ugQAAAAAAAAAAAAAAAAAQG12SgAAAAAAAAAAAAAAAAAAAAAAAAAAAOCSIQEAAAAAAAAAAAAAAAAAAAAAAAD8ExIA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAwJEuAQAAAAAAAAAAAAAAAAAAAAAAAMB9SwIAAAAAAAAAAAAAAAAAAACoYUoA"
    "AAAAAAAAAAAAAEBqH81gAQw"
)
LONG_2_SET = {
    0: 1,
    1993: 2,
    25460: 1,
    159495: 3,
    495669: 1,
    554353: 1,
    645645: 2,
    723232: 1,
    854545: 1,
    934534: 2,
    1000345: 3,
}


@pytest.mark.parametrize(("bits", "lst", "expected"), SMALL)
def test_the_drafts_small_examples(bits: int, lst: str, expected: list[int]) -> None:
    assert verifier.decode_status_list(lst, bits)[: len(expected)] == expected
    # The service encodes the same statuses to a list the independent decoder reads back.
    ours = status_lists.encode(dict(enumerate(expected)), size=len(expected), bits=bits)
    assert verifier.decode_status_list(ours, bits)[: len(expected)] == expected


def test_the_drafts_test_vectors_of_two_to_the_twenty_entries() -> None:
    size = 2**20
    one = verifier.decode_status_list(LONG_1, 1)
    assert len(one) == size and [i for i, v in enumerate(one) if v] == LONG_1_SET
    two = verifier.decode_status_list(LONG_2, 2)
    assert len(two) == size and {i: v for i, v in enumerate(two) if v} == LONG_2_SET
    for bits, vector, values in ((1, LONG_1, dict.fromkeys(LONG_1_SET, 1)), (2, LONG_2, LONG_2_SET)):
        ours = status_lists.encode(values, size=size, bits=bits)
        raw = zlib.decompress(base64.urlsafe_b64decode(vector + "=="))
        assert zlib.decompress(base64.urlsafe_b64decode(ours + "=" * (-len(ours) % 4))) == raw
        assert ours == vector  # zlib level 9, like the draft's generator


def _token(client: TestClient, uri: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Fetch a status list token and verify it with joserfc and the JWKS only."""
    r = client.get(uri.removeprefix(BASE_URL))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/statuslist+jwt"
    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").json())
    token = jwt.decode(r.text, keys, algorithms=["ES256"])
    return dict(token.header), dict(token.claims), r.headers["etag"]


def _credential_claims(client: TestClient, school_id: str) -> dict[str, Any]:
    credential = client.get(f"/v1/schools/{school_id}/affiliation").json()["credential"]
    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").json())
    return dict(jwt.decode(credential, keys, algorithms=["ES256"]).claims)


def _served_value(client: TestClient, claims: dict[str, Any]) -> int:
    ref = claims["status"]["status_list"]
    _header, token, _etag = _token(client, ref["uri"])
    return verifier.decode_status_list(token["status_list"]["lst"], token["status_list"]["bits"])[ref["idx"]]


def test_every_credential_points_at_its_school_entry_in_a_signed_list(
    client: TestClient, make_school: Callable[..., dict[str, Any]]
) -> None:
    schools = [make_school(name=f"School {i}") for i in range(6)]
    refs = [_credential_claims(client, s["id"])["status"]["status_list"] for s in schools]
    assert {r["uri"] for r in refs} == {f"{BASE_URL}/v1/status-lists/1"}
    indices = [r["idx"] for r in refs]
    assert len(set(indices)) == 6 and max(indices) > 5  # drawn at random, not handed out in order
    assert all(0 <= i < status_lists.LIST_SIZE for i in indices)

    header, claims, etag = _token(client, refs[0]["uri"])
    assert header["typ"] == "statuslist+jwt" and header["alg"] == "ES256"
    assert claims["sub"] == refs[0]["uri"] and claims["iss"] == BASE_URL
    assert claims["exp"] - claims["iat"] == 86400 and claims["ttl"] == 300
    assert claims["status_list"]["bits"] == 2
    values = verifier.decode_status_list(claims["status_list"]["lst"], 2)
    assert len(values) == status_lists.LIST_SIZE and set(values) == {0}
    again = client.get("/v1/status-lists/1", headers={"If-None-Match": etag})
    assert again.status_code == 304
    # Rebuilt after its few seconds with nothing changed: the same bytes and ETag.
    time.sleep(status_lists.REFRESH_S + 0.1)
    assert client.get("/v1/status-lists/1").headers["etag"] == etag


def test_status_flips_on_withdraw_suspend_lapse_and_delist_within_5_s(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    publish: Callable[[str], dict[str, Any]],
    state: Callable[..., Any],
    steward: dict[str, str],
    engine: Any,
) -> None:
    publish("1.0")
    schools = {name: make_school(name=name) for name in ("withdrawn", "suspended", "lapsed", "delisted")}
    for school in schools.values():
        assert state(school["id"], "1.0").status_code == 200
    claims = {name: _credential_claims(client, s["id"]) for name, s in schools.items()}
    assert {name: _served_value(client, c) for name, c in claims.items()} == dict.fromkeys(schools, 0)

    sid = {name: s["id"] for name, s in schools.items()}
    assert (
        client.post(f"/v1/schools/{sid['withdrawn']}/alignment/withdraw", headers=steward).status_code == 200
    )
    assert (
        client.post(f"/v1/schools/{sid['suspended']}/alignment/suspend", headers=steward).status_code == 200
    )
    assert client.post(f"/v1/schools/{sid['delisted']}/delist", headers=steward).status_code == 200
    publish("2.0")  # the others owe a re-affirmation: still valid
    with transaction(engine) as session:
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
        assert alignment.lapse_overdue(session, later) == 1  # the only one still owing it
    expected = {"withdrawn": 1, "suspended": 2, "lapsed": 1, "delisted": 1}
    started = time.monotonic()
    wait_for(
        lambda: {n: _served_value(client, c) for n, c in claims.items()} == expected,
        timeout=5.0,
        what="status flips in the served list",
    )
    assert time.monotonic() - started < 5.0

    # A steward lifts the suspension by stating alignment again: valid again.
    assert (
        client.post(
            f"/v1/schools/{sid['suspended']}/alignment",
            headers=steward,
            json={
                "version": "2.0",
                "evidence_url": "https://school.example.org/a",
                "stated_by": "Steward, on file",
            },
        ).status_code
        == 200
    )
    wait_for(lambda: _served_value(client, claims["suspended"]) == 0, timeout=5.0, what="lifted")


def test_an_offline_verifier_with_a_cached_list_refuses_a_suspended_credential(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    publish: Callable[[str], dict[str, Any]],
    state: Callable[..., Any],
    steward: dict[str, str],
) -> None:
    publish("1.0")
    school = make_school(name="Centro Atención Plena", country="ES")
    assert state(school["id"], "1.0").status_code == 200
    credential = client.get(f"/v1/schools/{school['id']}/affiliation").json()["credential"]
    jwks = KeySet.import_key_set(client.get("/.well-known/jwks.json").json())  # cached by the verifier

    def offline_verdict(cached_list: str) -> str:
        claims = dict(jwt.decode(credential, jwks, algorithms=["ES256"]).claims)
        if not claims["affiliated"] or claims["exp"] < time.time():
            return "refused: claims"
        ref = claims["status"]["status_list"]
        token = jwt.decode(cached_list, jwks, algorithms=["ES256"])
        if token.header["typ"] != "statuslist+jwt" or token.claims["sub"] != ref["uri"]:
            return "refused: wrong list"
        if token.claims["exp"] < time.time():
            return "refused: stale list"
        lst = token.claims["status_list"]
        value = verifier.decode_status_list(lst["lst"], lst["bits"])[ref["idx"]]
        return {0: "accepted", 1: "refused: invalid", 2: "refused: suspended"}[value]

    uri = _credential_claims(client, school["id"])["status"]["status_list"]["uri"]
    before = client.get(uri.removeprefix(BASE_URL)).text
    assert offline_verdict(before) == "accepted"
    assert client.post(f"/v1/schools/{school['id']}/alignment/suspend", headers=steward).status_code == 200
    after = wait_for(
        lambda: (t := client.get(uri.removeprefix(BASE_URL)).text) != before and t,
        timeout=5.0,
        what="new list",
    )
    # The credential itself is still signed and unexpired (30 days) ...
    assert jwt.decode(credential, jwks, algorithms=["ES256"]).claims["exp"] > time.time() + 29 * 86400
    # ... but the list fetched after the suspension, checked with no network at all, refuses it.
    assert offline_verdict(after) == "refused: suspended"


def test_server_side_check_reads_the_status_now(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    publish: Callable[[str], dict[str, Any]],
    state: Callable[..., Any],
    steward: dict[str, str],
) -> None:
    publish("1.0")
    school = make_school(name="Ljubljana Čuječnost", country="SI")
    assert state(school["id"], "1.0").status_code == 200
    credential = client.get(f"/v1/schools/{school['id']}/affiliation").json()["credential"]

    def verdict() -> dict[str, Any]:
        r = client.post("/v1/credentials/verify", json={"credential": credential})
        assert r.status_code == 200
        return dict(r.json())

    assert verdict()["valid"] is True
    assert client.post(f"/v1/schools/{school['id']}/alignment/suspend", headers=steward).status_code == 200
    assert verdict() == {"valid": False, "reason": "status_suspended", "claims": {}}  # at once: no cache
    assert client.post(f"/v1/schools/{school['id']}/alignment/withdraw", headers=steward).status_code == 200
    assert verdict() == {"valid": False, "reason": "status_invalid", "claims": {}}


def test_credentials_carry_the_checkpoint_size_they_were_issued_under(
    client: TestClient, make_school: Callable[..., dict[str, Any]]
) -> None:
    school = make_school(name="A")
    make_school(name="B")
    claims = _credential_claims(client, school["id"])
    assert claims["checkpoint_size"] == 2
    size = int(client.get("/v1/log/checkpoint").text.split("\n")[1])
    assert size == 2


def test_hostile_status_list_requests(client: TestClient, make_school: Callable[..., dict[str, Any]]) -> None:
    make_school(name="A")
    assert_problem(client.get("/v1/status-lists/0"), 422)
    assert_problem(client.get("/v1/status-lists/abc"), 422)
    assert_problem(client.get("/v1/status-lists/99999999999999999999"), 422)
    assert_problem(client.get("/v1/status-lists/2"), 404)
    assert_problem(client.get("/v1/status-lists/1", headers={"Accept": "application/json"}), 406)
    assert (
        client.get("/v1/status-lists/1", headers={"Accept": "application/statuslist+jwt"}).status_code == 200
    )
    assert client.get("/v1/status-lists/1", headers={"Accept": "*/*"}).status_code == 200


def test_schools_without_an_entry_are_placed_in_bulk_like_one_at_a_time(
    client: TestClient,
    engine: Any,
    make_school: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A registry filled before status lists (or in bulk) gets one entry per school: lists fill
    to half, random distinct indices, each school's value as :func:`assign` would write it."""
    import sqlalchemy as sa

    from service.security.clients import Principal

    steward = Principal(client_id="cli_test", scopes=frozenset({"registry:write"}))
    monkeypatch.setattr(status_lists, "LIST_SIZE", 16)
    monkeypatch.setattr(status_lists, "FILL_LIMIT", 8)
    schools = [make_school(name=f"Bulk {i}") for i in range(20)]  # each placed by assign: 8 + 8 + 4
    with transaction(engine) as session:
        alignment.suspend_alignment(
            session=session, school_id=schools[0]["id"], actor=steward, reason="r", base_url=BASE_URL
        )
        # As a registry from before status lists: no entries, no lists.
        session.execute(sa.text("DELETE FROM status_list_entries"))
        session.execute(sa.text("DELETE FROM status_lists"))
    with transaction(engine) as session:
        assert status_lists.assign_missing(session) == 20
        assert status_lists.assign_missing(session) == 0
        entries = "SELECT list_id, idx, school_id, status FROM status_list_entries"
        rows = session.execute(sa.text(entries)).all()
        lists = session.execute(sa.text("SELECT id, assigned FROM status_lists ORDER BY id")).all()
    assert [tuple(r) for r in lists] == [(1, 8), (2, 8), (3, 4)]
    assert len({(r.list_id, r.idx) for r in rows}) == 20 and all(0 <= r.idx < 16 for r in rows)
    assert {r.school_id for r in rows} == {s["id"] for s in schools}
    assert {r.school_id: r.status for r in rows}[schools[0]["id"]] == 2  # suspended
    assert sum(r.status for r in rows) == 2
