"""Public-key signatures (issue 11, point 4): Standard Webhooks ``v1a`` (Ed25519), checked with
``cryptography``'s Ed25519 verification — the stock ``standardwebhooks`` Python library (1.x)
verifies only ``v1`` — never with the service's own signing code; and the reference receiver."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks import Webhook, WebhookVerificationError

from service.core.config import Settings
from service.main import create_app
from service.security import secretbox
from tests.helpers import wait_for
from tests.live import bearer, free_port, listening, serve
from tests.webhooks.conftest import Receiver

RECEIVER = Path(__file__).resolve().parents[2] / "examples" / "receiver" / "receiver.py"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "in_process_worker": True,
        "webhook_retry_schedule": "0,0.2,0.2",
        "webhook_timeout_s": 5.0,
        "webhook_secret_overlap_s": 3.0,
        # A real port: the reference receiver's test serves the app under uvicorn there.
        "public_base_url": f"http://127.0.0.1:{free_port()}",
    }


def public_key(text: str) -> Ed25519PublicKey:
    assert text.startswith("whpk_")
    raw = base64.b64decode(text[len("whpk_") :])
    assert len(raw) == 32
    return Ed25519PublicKey.from_public_bytes(raw)


def verifying_keys(headers: dict[str, str], body: bytes, keys: list[str]) -> list[str]:
    """Which of ``keys`` made one of the delivery's ``v1a`` signatures (cryptography checks each)."""
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    signatures = headers["webhook-signature"].split(" ")
    assert all(s.startswith("v1a,") for s in signatures), signatures
    found = []
    for key in keys:
        for signature in signatures:
            try:
                public_key(key).verify(base64.b64decode(signature[4:]), content)
            except InvalidSignature:
                continue
            found.append(key)
    return found


def test_ed25519_endpoints_sign_v1a_and_rotate_with_overlap(
    client: Any,
    manager: dict[str, str],
    receiver: Receiver,
    emit: Callable[..., Any],
    session_factory: Any,
) -> None:
    url = receiver.url()
    r = client.post(
        "/v1/webhooks/endpoints", json={"url": url, "signature_scheme": "ed25519"}, headers=manager
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["signature_scheme"] == "ed25519" and "secret" not in created
    first_key = created["public_key"]
    public_key(first_key)
    assert (
        client.get(f"/v1/webhooks/endpoints/{created['id']}", headers=manager).json()["public_key"]
        == first_key
    )

    [payload] = emit()
    [request] = wait_for(lambda: receiver.received(url))
    assert verifying_keys(request.headers, request.body, [first_key]) == [first_key]
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 30
    assert json.loads(request.body)["id"] == request.headers["webhook-id"] == payload["id"]
    # The stock library (v1 only) finds no signature it can check: v1a needs the public key.
    with pytest.raises(WebhookVerificationError):
        Webhook(base64.b64encode(b"x" * 32).decode()).verify(request.body, request.headers)
    # A tampered body fails.
    assert verifying_keys(request.headers, request.body + b" ", [first_key]) == []

    # Rotation: a new key pair; both sign during the overlap, then only the new one.
    r = client.post(f"/v1/webhooks/endpoints/{created['id']}/rotate-secret", headers=manager)
    assert r.status_code == 200, r.text
    rotated = r.json()
    second_key = rotated["public_key"]
    assert second_key != first_key and rotated["previous_public_key"] == first_key and "secret" not in rotated
    emit(data=None)
    wait_for(lambda: len(receiver.received(url)) == 2)
    overlap = receiver.received(url)[1]
    assert len(overlap.headers["webhook-signature"].split(" ")) == 2
    assert verifying_keys(overlap.headers, overlap.body, [first_key, second_key]) == [first_key, second_key]
    time.sleep(3.2)
    assert (
        client.get(f"/v1/webhooks/endpoints/{created['id']}", headers=manager).json()["previous_public_key"]
        is None
    )
    emit()
    wait_for(lambda: len(receiver.received(url)) == 3)
    after = receiver.received(url)[2]
    assert verifying_keys(after.headers, after.body, [first_key, second_key]) == [second_key]

    # The private key never leaves the service: encrypted at rest, in no answer.
    with session_factory() as session:
        stored = session.execute(
            sa.text("SELECT secret_enc, previous_secret_enc FROM webhook_endpoints WHERE id = :id"),
            {"id": created["id"]},
        ).one()
    keys_dir = client.app.state.settings.keys_dir
    for column in stored:
        assert "whsk_" not in column and secretbox.decrypt(keys_dir, column).startswith("whsk_")
    answers = [created, rotated, client.get("/v1/webhooks/endpoints", headers=manager).json()]
    assert "whsk_" not in json.dumps(answers)


def test_hmac_stays_the_default_and_schemes_are_checked(client: Any, manager: dict[str, str]) -> None:
    r = client.post("/v1/webhooks/endpoints", json={"url": "http://127.0.0.1:9/a"}, headers=manager)
    assert r.json()["signature_scheme"] == "hmac-sha256" and r.json()["secret"].startswith("whsec_")
    assert r.json()["public_key"] is None
    for scheme in ("rsa", "ED25519", "", None, 1):
        r = client.post(
            "/v1/webhooks/endpoints",
            json={"url": "http://127.0.0.1:9/b", "signature_scheme": scheme},
            headers=manager,
        )
        assert r.status_code == 422, (scheme, r.text)


@pytest.fixture
def live(settings: Settings) -> Iterator[str]:
    """The service under uvicorn on the port of ``public_base_url``, with its delivery worker."""
    app = create_app(settings)
    with serve(app, int(settings.public_base_url.rsplit(":", 1)[1])) as base:
        yield base


def test_reference_receiver_verifies_ed25519_deliveries_through_its_filter(
    live: str, tmp_path: Path, make_client: Callable[..., tuple[str, str]]
) -> None:
    manager = bearer(live, make_client, "webhooks:manage")
    steward = bearer(live, make_client, "registry:write")
    port = free_port()
    hook = f"http://127.0.0.1:{port}/imi-webhook"
    r = httpx.post(
        f"{live}/v1/webhooks/endpoints",
        json={"url": hook, "signature_scheme": "ed25519", "filter": {"countries": ["NL"]}},
        headers=manager,
    )
    assert r.status_code == 201, r.text
    endpoint = r.json()
    folder = tmp_path / "imi"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(RECEIVER),
            "--api",
            live,
            "--folder",
            str(folder),
            "--port",
            str(port),
            "--country",
            "NL",
        ],
        env=dict(os.environ, IMI_WEBHOOK_PUBLIC_KEY=endpoint["public_key"]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(
            lambda: (folder / "state.json").exists() and listening(port), timeout=30, what="the receiver"
        )

        def school(name: str, country: str) -> str:
            r = httpx.post(f"{live}/v1/schools", json={"name": name, "country": country}, headers=steward)
            assert r.status_code == 201, r.text
            return str(r.json()["id"])

        def move(school_id: str, country: str) -> None:
            url = f"{live}/v1/schools/{school_id}"
            etag = httpx.get(url).headers["ETag"]
            r = httpx.patch(url, json={"country": country}, headers={**steward, "If-Match": etag})
            assert r.status_code == 200, r.text

        def names() -> set[str]:
            return {s["name"] for s in json.loads((folder / "schools.json").read_text())}

        def log() -> list[Any]:
            return list(json.loads((folder / "state.json").read_text())["log"])

        stille = school("Stille Zee", "NL")
        [entry] = wait_for(log, timeout=20, what="the NL listing applied from a verified webhook")
        assert (entry["type"], entry["via"]) == ("school.listed", "webhook")
        # A school outside the filter never reaches it; the next NL event's sequence jumps
        # over it, and the receiver's catch-up asks the feed with its filter.
        sakura = school("Sakura Zen", "JP")
        school("Rotterdam Rust", "NL")
        wait_for(lambda: len(log()) == 2, timeout=20, what="the second NL listing")
        assert [e["sequence"] for e in log()] == [1, 3]
        assert names() == {"Stille Zee", "Rotterdam Rust"}  # the filter's country only
        # A school moving in joins the file; one moving away reaches it too, and leaves it.
        move(sakura, "NL")
        wait_for(lambda: len(log()) == 3, timeout=20, what="the move into NL")
        assert names() == {"Stille Zee", "Rotterdam Rust", "Sakura Zen"}
        move(stille, "BE")
        wait_for(lambda: len(log()) == 4, timeout=20, what="the move out of NL")
        assert names() == {"Rotterdam Rust", "Sakura Zen"}
        assert [(e["type"], e["via"]) for e in log()[2:]] == [("school.updated", "webhook")] * 2

        def settled() -> list[Any]:
            url = f"{live}/v1/webhooks/endpoints/{endpoint['id']}/deliveries"
            data = list(httpx.get(url, headers=manager).json()["data"])
            return data if len(data) == 4 and all(d["status"] != "pending" for d in data) else []

        deliveries = wait_for(settled, what="every delivery answered")
        assert [d["attempts"][0]["status_code"] for d in deliveries] == [204] * 4  # verified: 204
        # A delivery signed with another key is refused.
        body = json.dumps({"id": "evt_forged", "type": "school.listed", "sequence": 99, "data": {}}).encode()
        forged = httpx.post(
            hook,
            content=body,
            headers={
                "webhook-id": "evt_forged",
                "webhook-timestamp": str(int(time.time())),
                "webhook-signature": "v1a," + base64.b64encode(b"\x00" * 64).decode(),
            },
        )
        assert forged.status_code == 401
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert b"Traceback" not in err, err.decode()
