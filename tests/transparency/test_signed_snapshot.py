"""Signed snapshots: ``GET /v1/snapshot`` with ``Accept: application/jose``, checked with an
independent JOSE library and with ``imi-api verify-snapshot`` against a JWKS from a file or
a server on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jws
from joserfc.jwk import KeySet
from joserfc.registry import HeaderParameter

from tests.conftest import assert_problem
from tests.transparency import verifier


def _signed(client: TestClient) -> str:
    r = client.get("/v1/snapshot", headers={"Accept": "application/jose"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/jose"
    return r.text


def test_the_signed_snapshot_is_the_plain_one_plus_its_checkpoint(
    client: TestClient, make_school: Callable[..., dict[str, Any]], log_vkey: str
) -> None:
    for i in range(3):
        make_school(name=f"Школа {i}", country="UA")
    plain = client.get("/v1/snapshot")
    assert plain.headers["content-type"] == "application/json"  # JSON stays the default
    token = _signed(client)
    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").json())
    # `checkpoint` is a private header parameter (RFC 7515 §4.3), not "crit": declare it.
    registry = jws.JWSRegistry(header_registry={"checkpoint": HeaderParameter("log checkpoint", "str")})
    decoded = jws.deserialize_compact(token, keys, algorithms=["ES256"], registry=registry)
    assert decoded.payload == plain.content  # the exact bytes
    header = decoded.protected
    assert header["typ"] == "imi-snapshot+jws" and header["cty"] == "application/json"
    note = header["checkpoint"]
    assert verifier.log_signature_ok(note, log_vkey)
    _origin, size, root = verifier.checkpoint_fields(verifier.split_note(note)[0])
    assert size == json.loads(plain.content)["sequence"] == 3
    assert note == client.get("/v1/log/checkpoint", params={"size": 3}).text

    # Cached like the plain one: the same JWS until something changes, then a new one.
    again = client.get("/v1/snapshot", headers={"Accept": "application/jose"})
    assert again.text == token
    assert (
        client.get(
            "/v1/snapshot", headers={"Accept": "application/jose", "If-None-Match": again.headers["etag"]}
        ).status_code
        == 304
    )
    make_school(name="Школа 3", country="UA")
    assert _signed(client) != token
    assert_problem(client.get("/v1/snapshot", headers={"Accept": "application/xml"}), 406)


@pytest.fixture
def jwks_server(client: TestClient) -> Iterator[str]:
    """The service's JWKS served by a plain HTTP server on 127.0.0.1; yields its URL."""
    body = client.get("/.well-known/jwks.json").content

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


def test_verify_snapshot_command(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    cli: Callable[..., Any],
    jwks_server: str,
    log_vkey: str,
    tmp_path: Path,
) -> None:
    make_school(name="Mindful Kyoto", country="JP")
    signed = tmp_path / "snapshot.jws"
    signed.write_text(_signed(client))
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_bytes(client.get("/.well-known/jwks.json").content)

    for source in (str(jwks_file), jwks_server):
        result = cli("verify-snapshot", str(signed), "--jwks", source, "--log-key", log_vkey)
        assert result.exit_code == 0, result.output
        out = json.loads(result.stdout)
        assert out["valid"] is True and out["sequence"] == 1 and out["schools"] == 1
        assert out["checkpoint"]["tree_size"] == 1 and out["checkpoint_verified"] is True

    def verdict(content: str, *extra: str) -> tuple[int, dict[str, Any]]:
        bad = tmp_path / "bad.jws"
        bad.write_text(content)
        result = cli("verify-snapshot", str(bad), "--jwks", str(jwks_file), *extra)
        return result.exit_code, json.loads(result.stdout)

    header, payload, signature = signed.read_text().split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged["schools"] = []
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    assert verdict(f"{header}.{forged_payload}.{signature}") == (
        1,
        {"valid": False, "reason": "bad_signature", "detail": "the signature does not verify"},
    )
    assert verdict("not a jws")[1]["reason"] == "malformed"
    other_log = "testserver/v1/log+00000000+AQ" + "A" * 42 + "="
    assert verdict(signed.read_text(), "--log-key", other_log)[1]["reason"] == "bad_log_key"
    gone = cli("verify-snapshot", str(signed), "--jwks", str(tmp_path / "missing.json"))
    assert gone.exit_code == 1 and json.loads(gone.stdout)["reason"] == "jwks_unavailable"
    empty_jwks = tmp_path / "empty.json"
    empty_jwks.write_text('{"keys": []}')
    unknown = cli("verify-snapshot", str(signed), "--jwks", str(empty_jwks))
    assert unknown.exit_code == 1 and json.loads(unknown.stdout)["reason"] == "unknown_kid"
    # The unsigned JSON (curl …/v1/snapshot > file, the first thing tried) says how to get the signed one;
    # it used to say "a compact JWS is ASCII text" (the sample's names are not ASCII).
    unsigned = client.get("/v1/snapshot").text
    code, said = verdict(unsigned)
    assert code == 1 and said["reason"] == "malformed"
    assert "not the signed snapshot" in said["detail"] and "Accept: application/jose" in said["detail"]


def test_verify_snapshot_names_an_unavailable_jwks_in_one_line(
    client: TestClient, cli: Callable[..., Any], tmp_path: Path
) -> None:
    """A JWKS URL that answers 404, or a closed port on 127.0.0.1: the reason in one line,
    without httpx's second line (a link to MDN's page on the status)."""
    signed = tmp_path / "snapshot.jws"
    signed.write_text(_signed(client))

    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_error(404)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    missing = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    try:
        result = cli("verify-snapshot", str(signed), "--jwks", missing)
    finally:
        server.shutdown()
        server.server_close()
    said = json.loads(result.stdout)
    assert result.exit_code == 1 and said["reason"] == "jwks_unavailable"
    assert said["detail"].startswith(f"cannot read the JWKS from {missing}: Client error '404")
    assert "\n" not in said["detail"] and "developer.mozilla.org" not in said["detail"]
    closed = cli("verify-snapshot", str(signed), "--jwks", missing)  # the port is closed now
    assert json.loads(closed.stdout)["reason"] == "jwks_unavailable" and closed.exit_code == 1
