"""Affiliation answers and their signed credentials, checked with an independent JOSE
library (joserfc) from nothing but the published JWKS; key rotation; the server-side
credential check and every way a credential is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from joserfc import jws, jwt
from joserfc.jwk import ECKey, KeySet
from joserfc.jwt import JWTClaimsRegistry

from service.security.keys import CREDENTIAL_TYP
from tests.conftest import BASE_URL, assert_problem


@pytest.fixture
def settings_overrides(tmp_path: Path) -> dict[str, Any]:
    # Own signing keys: these tests rotate them.
    return {"keys_dir": tmp_path / "keys"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwks(client: TestClient) -> KeySet:
    r = client.get("/.well-known/jwks.json")
    assert r.status_code == 200
    return KeySet.import_key_set(r.json())


def _independent_decode(client: TestClient, credential: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify with joserfc and the public JWKS only; returns (header, claims)."""
    token = jwt.decode(credential, _jwks(client), algorithms=["ES256"])
    JWTClaimsRegistry(
        iss={"essential": True, "value": BASE_URL},
        exp={"essential": True},
        nbf={"essential": True},
        iat={"essential": True},
        jti={"essential": True},
    ).validate(token.claims)
    return dict(token.header), dict(token.claims)


def _verify(client: TestClient, credential: Any) -> dict[str, Any]:
    r = client.post("/v1/credentials/verify", json={"credential": credential})
    assert r.status_code == 200, r.text
    return dict(r.json())


@pytest.fixture
def aligned(
    make_school: Callable[..., dict[str, Any]],
    publish: Callable[[str], dict[str, Any]],
    state: Callable[..., Any],
) -> dict[str, Any]:
    publish("1.0")
    school = make_school(name="Ljubljana Čuječnost", country="SI", contact={"email": "lj@example.org"})
    assert state(school["id"], "1.0").status_code == 200
    return school


def test_affiliation_of_an_aligned_school(client: TestClient, aligned: dict[str, Any]) -> None:
    r = client.get(f"/v1/schools/{aligned['id']}/affiliation")
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "public, max-age=60"
    body = r.json()
    credential = body.pop("credential")
    assert body == {
        "school_id": aligned["id"],
        "affiliated": True,
        "status": "aligned",
        "aligned_version": "1.0",
        "current_version": "1.0",
        "reaffirmation_due_by": None,
        "listing": "listed",
        "links": aligned["links"],
    }
    header, claims = _independent_decode(client, credential)
    assert header["alg"] == "ES256"
    assert header["typ"] == CREDENTIAL_TYP
    assert header["kid"] in {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}
    assert claims["sub"] == f"{BASE_URL}/v1/schools/{aligned['id']}"
    assert claims["iss"] == BASE_URL
    assert claims["exp"] - claims["iat"] == 2592000  # IMI_CREDENTIAL_TTL_S: 30 days (issue 12)
    assert claims["nbf"] == claims["iat"]
    assert abs(claims["iat"] - time.time()) < 60
    # `status` is the status list reference (draft-ietf-oauth-status-list, issue 12).
    assert (claims["affiliated"], claims["alignment_status"], claims["aligned_version"]) == (
        True,
        "aligned",
        "1.0",
    )
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16

    # Served again unchanged (the cached answer), and conditionally.
    again = client.get(f"/v1/schools/{aligned['id']}/affiliation")
    assert again.content == r.content
    assert (
        client.get(
            f"/v1/schools/{aligned['id']}/affiliation", headers={"If-None-Match": r.headers["ETag"]}
        ).status_code
        == 304
    )
    assert client.head(f"/v1/schools/{aligned['id']}/affiliation").status_code == 200
    assert_problem(client.get("/v1/schools/sch_nothing/affiliation"), 404)


def test_credentials_follow_every_status_change_at_once(
    client: TestClient,
    aligned: dict[str, Any],
    make_school: Callable[..., dict[str, Any]],
    steward: dict[str, str],
    publish: Callable[[str], dict[str, Any]],
) -> None:
    url = f"/v1/schools/{aligned['id']}/affiliation"
    first = client.get(url).json()
    make_school(name="Unrelated")  # an unrelated change keeps the same credential
    assert client.get(url).json()["credential"] == first["credential"]

    publish("2.0")  # major: reaffirmation due, still affiliated, new current version
    due = client.get(url).json()
    assert (due["affiliated"], due["status"], due["current_version"]) == (True, "reaffirmation_due", "2.0")
    assert _independent_decode(client, due["credential"])[1]["alignment_status"] == "reaffirmation_due"

    r = client.post(f"/v1/schools/{aligned['id']}/alignment/withdraw", headers=steward)
    assert r.status_code == 200
    withdrawn = client.get(url).json()
    assert (withdrawn["affiliated"], withdrawn["status"]) == (False, "withdrawn")
    claims = _independent_decode(client, withdrawn["credential"])[1]
    assert (claims["affiliated"], claims["alignment_status"], claims["aligned_version"]) == (
        False,
        "withdrawn",
        "1.0",
    )

    # Schools that never stated get a signed negative answer too.
    never = make_school(name="Never")
    negative = client.get(f"/v1/schools/{never['id']}/affiliation").json()
    assert (negative["affiliated"], negative["status"], negative["aligned_version"]) == (False, "none", None)
    assert _independent_decode(client, negative["credential"])[1]["affiliated"] is False

    # Delisted: a signed "no", even though the status is still aligned.
    other = make_school(name="Aligned then delisted")
    client.post(
        f"/v1/schools/{other['id']}/alignment",
        json={"version": "2.0", "evidence_url": "https://o.example.org", "stated_by": "O"},
        headers=steward,
    )
    assert client.get(f"/v1/schools/{other['id']}/affiliation").json()["affiliated"] is True
    client.post(f"/v1/schools/{other['id']}/delist", headers=steward)
    delisted = client.get(f"/v1/schools/{other['id']}/affiliation").json()
    assert (delisted["affiliated"], delisted["status"], delisted["listing"]) == (False, "aligned", "delisted")
    claims = _independent_decode(client, delisted["credential"])[1]
    assert (claims["affiliated"], claims["listing"]) == (False, "delisted")


def test_key_rotation(app: Any, client: TestClient, aligned: dict[str, Any], steward: dict[str, str]) -> None:
    url = f"/v1/schools/{aligned['id']}/affiliation"
    old = client.get(url).json()["credential"]
    old_kid = _independent_decode(client, old)[0]["kid"]
    new_key = app.state.keys.rotate()
    assert new_key.kid != old_kid
    new = client.get(url).json()["credential"]
    assert _independent_decode(client, new)[0]["kid"] == new_key.kid
    # The old credential keeps verifying, with joserfc and on the server.
    assert _independent_decode(client, old)[1]["sub"].endswith(aligned["id"])
    assert _verify(client, old)["valid"] is True
    assert _verify(client, new)["valid"] is True
    kids = [k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]]
    assert kids == [new_key.kid, old_kid]


def _public_pem(client: TestClient, kid: str) -> bytes:
    jwk = next(k for k in client.get("/.well-known/jwks.json").json()["keys"] if k["kid"] == kid)
    key = ECKey.import_key(jwk)
    pem: bytes = key.as_pem(private=False)
    return pem


def _hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(sig)}"


def test_credential_check_accepts_genuine_and_refuses_the_rest(
    app: Any, client: TestClient, aligned: dict[str, Any], steward: dict[str, str]
) -> None:
    genuine = client.get(f"/v1/schools/{aligned['id']}/affiliation").json()["credential"]
    verdict = _verify(client, genuine)
    assert (verdict["valid"], verdict["reason"]) == (True, "valid")
    assert verdict["claims"] == _independent_decode(client, genuine)[1]

    header_b64, payload_b64, _sig = genuine.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=="))
    claims = json.loads(base64.urlsafe_b64decode(payload_b64 + "=="))
    keys = app.state.keys
    now = int(time.time())

    # alg "none"
    none_token = f"{_b64(json.dumps({**header, 'alg': 'none'}).encode())}.{payload_b64}."
    # HS256 keyed with our public key (as PEM and as the JWK JSON): the classic confusion attack
    pem = _public_pem(client, header["kid"])
    hs_pem = _hs256({**header, "alg": "HS256"}, claims, pem)
    jwk_json = json.dumps(next(k for k in client.get("/.well-known/jwks.json").json()["keys"]))
    hs_jwk = _hs256({**header, "alg": "HS256"}, claims, jwk_json.encode())
    # A key we never published
    stranger = ECKey.import_key(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    unknown_kid = jws.serialize_compact(
        {"alg": "ES256", "kid": "k-not-ours", "typ": "JWT"}, json.dumps(claims), stranger
    )
    same_kid_wrong_key = jws.serialize_compact({**header, "alg": "ES256"}, json.dumps(claims), stranger)
    tampered = f"{header_b64}.{_b64(json.dumps({**claims, 'affiliated': False}).encode())}.{_sig}"

    cases = {
        "alg_not_allowed": [none_token, hs_pem, hs_jwk],
        "unknown_kid": [unknown_kid],
        "bad_signature": [same_kid_wrong_key, tampered],
        "expired": [keys.sign({**claims, "iat": now - 7200, "exp": now - 3600}, typ=CREDENTIAL_TYP)],
        "not_yet_valid": [keys.sign({**claims, "nbf": now + 3600, "exp": now + 7200}, typ=CREDENTIAL_TYP)],
        "wrong_issuer": [keys.sign({**claims, "iss": "https://imi.example.net"}, typ=CREDENTIAL_TYP)],
        "too_large": [keys.sign({**claims, "padding": "x" * 9000}, typ=CREDENTIAL_TYP)],
        "malformed": ["", "not.a.jws", "a.b", "💥.💥.💥"],
        "wrong_type": [steward["Authorization"].split()[1]],
    }
    for reason, tokens in cases.items():
        for token in tokens:
            assert _verify(client, token) == {"valid": False, "reason": reason, "claims": {}}, (reason, token)

    # Every reason a verifier can meet is listed in the OpenAPI document (a client can switch on it).
    documented = client.get("/openapi.json").json()["components"]["schemas"]["CredentialVerdict"]
    reasons = documented["properties"]["reason"]["enum"]
    assert {"valid", *cases} <= set(reasons)
    assert {
        "not_a_credential",
        "malformed_status",
        "unknown_status",
        "status_invalid",
        "status_suspended",
    } <= set(reasons)
    assert all(f"`{r}`" in documented["properties"]["reason"]["description"] for r in reasons)

    for bad_body in ({}, {"credential": 5}, {"credential": genuine, "extra": True}):
        assert_problem(client.post("/v1/credentials/verify", json=bad_body), 422)
