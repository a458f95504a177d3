"""The OAuth 2.0 token endpoint (RFC 6749 §4.4, §5.2) and bearer-token checks (RFC 6750)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from jose import jws

from tests.conftest import BASE_URL, assert_problem

PROTECTED = "/v1/standards/training-standards/versions"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": BASE_URL,
        "aud": BASE_URL,
        "sub": "cli_x",
        "scope": "standards:write",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    return claims


def _token_for(client: TestClient, cid: str, secret: str, **form: str) -> Any:
    return client.post(
        "/v1/oauth/token", data={"grant_type": "client_credentials", **form}, auth=(cid, secret)
    )


def test_token_with_basic_auth(client: TestClient, make_client: Callable[..., tuple[str, str]]) -> None:
    cid, secret = make_client("standards:write", "webhooks:manage")
    r = _token_for(client, cid, secret)
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "standards:write webhooks:manage"
    assert r.headers["cache-control"] == "no-store"
    claims = json.loads(jws.get_unverified_claims(body["access_token"]))
    assert claims["iss"] == claims["aud"] == BASE_URL
    assert claims["sub"] == cid
    assert claims["exp"] - claims["iat"] == 3600
    assert jws.get_unverified_header(body["access_token"])["alg"] == "ES256"


def test_token_with_form_credentials_and_narrowed_scope(
    client: TestClient, make_client: Callable[..., tuple[str, str]]
) -> None:
    cid, secret = make_client("standards:write", "webhooks:manage")
    r = client.post(
        "/v1/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": cid,
            "client_secret": secret,
            "scope": "webhooks:manage",
        },
    )
    assert r.status_code == 200
    assert r.json()["scope"] == "webhooks:manage"


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({}, 400, "invalid_request"),
        ({"grant_type": "client_credentials", "scope": "registry:write"}, 400, "invalid_scope"),
    ],
)
def test_token_errors_follow_rfc6749(
    client: TestClient,
    make_client: Callable[..., tuple[str, str]],
    form: dict[str, str],
    status: int,
    error: str,
) -> None:
    cid, secret = make_client("standards:write")
    r = client.post("/v1/oauth/token", data=form, auth=(cid, secret))
    assert r.status_code == status
    assert r.json()["error"] == error
    assert r.headers["content-type"].startswith("application/json")


def test_wrong_secret_and_unknown_client_are_invalid_client(
    client: TestClient, make_client: Callable[..., tuple[str, str]]
) -> None:
    cid, _secret = make_client("standards:write")
    for creds in ((cid, "wrong"), ("cli_unknown", "x")):
        r = _token_for(client, *creds)
        assert r.status_code == 401
        assert r.json()["error"] == "invalid_client"
        assert r.headers["www-authenticate"].startswith("Basic")


def test_revoked_client_gets_no_token_and_its_tokens_stop(
    client: TestClient, make_client: Callable[..., tuple[str, str]], session_factory: Any
) -> None:
    from service.security import clients as service

    cid, secret = make_client("standards:write")
    token = _token_for(client, cid, secret).json()["access_token"]
    with session_factory() as s:
        service.revoke_client(session=s, client_id=cid)
    assert _token_for(client, cid, secret).status_code == 401
    r = client.post(PROTECTED, json={"version": "9.0"}, headers={"Authorization": f"Bearer {token}"})
    body = assert_problem(r, 401)
    assert body["reason"] == "revoked"


def test_missing_token_is_401_with_challenge(client: TestClient) -> None:
    r = client.post(PROTECTED, json={"version": "9.0"})
    assert_problem(r, 401)
    assert r.headers["www-authenticate"].startswith('Bearer realm="imi"')


def test_missing_scope_is_403(client: TestClient, auth: Callable[..., dict[str, str]]) -> None:
    r = client.post(PROTECTED, json={"version": "9.0"}, headers=auth("webhooks:manage"))
    assert_problem(r, 403)
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]


def _forged_tokens(app: Any) -> dict[str, str]:
    keys = app.state.keys
    kid = keys.active().kid
    public_pem = (
        serialization.load_pem_private_key(keys.active().private_pem, None)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )

    def signed(claims: dict[str, Any]) -> str:
        return keys.sign(claims, typ="at+jwt")

    def unsigned(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
        head = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
        sig = _b64(hmac.new(key, head.encode(), hashlib.sha256).digest()) if key else ""
        return head + "." + sig

    return {
        "expired": signed(_claims(iat=1, nbf=1, exp=2)),
        "wrong_audience": signed(_claims(aud="https://elsewhere.example")),
        "wrong_key": str(
            jws.sign(
                json.dumps(_claims()).encode(),
                other.decode(),
                headers={"kid": kid, "typ": "at+jwt"},
                algorithm="ES256",
            )
        ),
        "alg_none": unsigned({"alg": "none", "kid": kid, "typ": "at+jwt"}, _claims(), None),
        "hmac_with_public_key": unsigned(
            {"alg": "HS256", "kid": kid, "typ": "at+jwt"}, _claims(), public_pem
        ),
        "garbage": "not.a.token",
    }


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("expired", "expired"),
        ("wrong_audience", "wrong_audience"),
        ("wrong_key", "bad_signature"),
        ("alg_none", "alg_not_allowed"),
        ("hmac_with_public_key", "alg_not_allowed"),
        ("garbage", "malformed"),
    ],
)
def test_bad_tokens_are_401(client: TestClient, app: Any, case: str, reason: str) -> None:
    token = _forged_tokens(app)[case]
    r = client.post(PROTECTED, json={"version": "9.0"}, headers={"Authorization": f"Bearer {token}"})
    body = assert_problem(r, 401)
    assert body["reason"] == reason
    assert 'error="invalid_token"' in r.headers["www-authenticate"]


def test_jwks_publishes_the_signing_key(client: TestClient, app: Any) -> None:
    r = client.get("/.well-known/jwks.json")
    assert r.status_code == 200
    keys = r.json()["keys"]
    assert [k["kid"] for k in keys][0] == app.state.keys.active().kid
    assert {k["alg"] for k in keys} == {"ES256"}
    assert all("d" not in k for k in keys)
