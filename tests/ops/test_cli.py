"""``imi-api clients list|revoke|rotate-secret`` and ``export``/``import`` against the test database."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import assert_problem


def _token(client: TestClient, cid: str, secret: str) -> Any:
    return client.post("/v1/oauth/token", data={"grant_type": "client_credentials"}, auth=(cid, secret))


def _listed(cli: Callable[..., Any]) -> dict[str, dict[str, Any]]:
    result = cli("clients", "list")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    return {row["client_id"]: row for row in rows}


def test_clients_rotate_and_revoke_through_the_cli(client: TestClient, cli: Callable[..., Any]) -> None:
    created = cli("clients", "create", "--name", "Registry steward", "--scope", "registry:write")
    assert created.exit_code == 0, created.output
    lines = created.stdout.splitlines()
    assert len(lines) == 1
    creds = json.loads(lines[0])
    cid, first_secret = creds["client_id"], creds["client_secret"]
    assert _token(client, cid, first_secret).status_code == 200

    listed = _listed(cli)[cid]
    assert listed == {
        "client_id": cid,
        "name": "Registry steward",
        "scopes": ["registry:write"],
        "school_id": None,
        "created_at": listed["created_at"],
        "revoked_at": None,
    }
    assert first_secret not in cli("clients", "list").stdout

    rotated = cli("clients", "rotate-secret", cid)
    assert rotated.exit_code == 0, rotated.output
    new = json.loads(rotated.stdout)
    assert new["client_id"] == cid and new["client_secret"] != first_secret
    old_try = _token(client, cid, first_secret)
    assert old_try.status_code == 401 and old_try.json()["error"] == "invalid_client"
    token = _token(client, cid, new["client_secret"]).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/audit", headers=bearer).status_code == 200

    revoked = cli("clients", "revoke", cid)
    assert revoked.exit_code == 0, revoked.output
    assert f"revoked {cid}" in revoked.stderr
    after = client.get("/v1/audit", headers=bearer)  # the very next request fails
    assert assert_problem(after, 401)["reason"] == "revoked"
    assert _token(client, cid, new["client_secret"]).status_code == 401
    assert _listed(cli)[cid]["revoked_at"] is not None
    assert cli("clients", "rotate-secret", cid).exit_code == 2  # a revoked client gets no new secret


def test_cli_errors_for_unknown_clients(cli: Callable[..., Any]) -> None:
    for command in ("revoke", "rotate-secret"):
        result = cli("clients", command, "cli_doesnotexist")
        assert result.exit_code == 2
        assert result.stdout == ""
        assert "error: no" in result.stderr


def test_a_commenting_client_stands_for_an_organisation(client: TestClient, cli: Callable[..., Any]) -> None:
    created = cli(
        "clients", "create", "--name", "Contact: anna@example.org", "--scope", "review:comment",
        "--organisation", "Nederlandse Vereniging Mindfulness", "--region", "nl",
        "--commenter-type", "association",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    creds = json.loads(created.stdout)
    assert _token(client, creds["client_id"], creds["client_secret"]).json()["scope"] == "review:comment"
    row = _listed(cli)[creds["client_id"]]
    assert (row["organisation"], row["region"], row["commenter_type"]) == (
        "Nederlandse Vereniging Mindfulness",
        "NL",
        "association",
    )
    for missing in (
        ["--region", "DE", "--commenter-type", "association"],
        ["--organisation", "X", "--commenter-type", "association"],
        ["--organisation", "X", "--region", "DE"],
        ["--organisation", "X", "--region", "XX", "--commenter-type", "association"],
        ["--organisation", "X", "--region", "DE", "--commenter-type", "person"],
        ["--organisation", "   ", "--region", "DE", "--commenter-type", "other"],
    ):
        refused = cli("clients", "create", "--name", "n", "--scope", "review:comment", *missing)
        assert refused.exit_code == 2, (missing, refused.output)
        assert refused.stdout == ""
    # an organisation on a client that cannot comment is refused, not silently dropped
    for scope in ("standards:write", "webhooks:manage"):
        refused = cli(
            "clients", "create", "--name", "n", "--scope", scope,
            "--organisation", "X", "--region", "DE", "--commenter-type", "association",
        )  # fmt: skip
        assert refused.exit_code == 2, refused.output
        assert "review:comment" in refused.output and refused.stdout == ""


def test_a_school_client_for_a_school_that_does_not_exist_is_refused(
    client: TestClient, cli: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    """``--school`` with a mistyped id made a client that could edit nothing (every write a
    404), with status 0; now one line and exit status 2, and no client is made."""
    before = set(_listed(cli))
    refused = cli(
        "clients", "create", "--name", "Zürich school", "--scope", "school:self", "--school", "sch_typo"
    )
    assert refused.exit_code == 2 and refused.stdout == ""
    assert (
        refused.stderr.strip()
        == "error: --school: there is no school 'sch_typo' (its id: GET /v1/schools?q=<its name>)"
    )
    assert set(_listed(cli)) == before
    school = client.post(
        "/v1/schools", json={"name": "Zürcher Institut", "country": "CH"}, headers=auth("registry:write")
    )
    assert school.status_code == 201, school.text
    made = cli(
        "clients", "create", "--name", "Zürich", "--scope", "school:self", "--school", school.json()["id"]
    )
    assert made.exit_code == 0, made.output
    assert _listed(cli)[json.loads(made.stdout)["client_id"]]["school_id"] == school.json()["id"]
