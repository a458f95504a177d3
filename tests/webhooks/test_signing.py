"""Our signatures are byte-identical to the standardwebhooks library's; secrets are encrypted at rest."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from service.security import secretbox
from service.webhooks import signing


def test_signature_matches_the_reference_library() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    body = '{"id":"evt_1","title":"Zürich 🧘 正念"}'.encode()
    ts = 1_764_400_000
    ours = signing.sign(signing.secret_key(secret), "evt_1", ts, body)
    theirs = Webhook(secret).sign("evt_1", dt.datetime.fromtimestamp(ts, dt.UTC), body.decode())
    assert ours == theirs


def test_two_keys_give_two_signatures_each_verifying() -> None:
    a, b = signing.new_secret(), signing.new_secret()
    body = b'{"x":1}'
    import time

    ts = int(time.time())
    headers = signing.headers([signing.secret_key(a), signing.secret_key(b)], "evt_2", ts, body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(a).verify(body, dict(headers))
    Webhook(b).verify(body, dict(headers))
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, dict(headers))
    assert headers["content-length"] == "7" and headers["content-type"] == "application/json"


def test_secrets_are_encrypted_and_keys_rotate(tmp_path: Path) -> None:
    secret = signing.new_secret()
    token = secretbox.encrypt(tmp_path, secret)
    assert secret not in token and secret[6:] not in token
    assert (tmp_path / "secrets" / "0001.key").exists()
    assert (tmp_path / "secrets" / "0001.key").stat().st_mode & 0o777 == 0o600
    assert secretbox.decrypt(tmp_path, token) == secret
    secretbox.add_key(tmp_path)
    newer = secretbox.encrypt(tmp_path, secret)
    assert secretbox.decrypt(tmp_path, token) == secret  # the old key still decrypts
    assert secretbox.decrypt(tmp_path, newer) == secret
    rotated = secretbox.reencrypt(tmp_path, token)
    (tmp_path / "secrets" / "0001.key").unlink()
    assert secretbox.decrypt(tmp_path, rotated) == secret
    with pytest.raises(secretbox.SecretKeyError):
        secretbox.decrypt(tmp_path, token)
