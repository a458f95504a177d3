"""The reference receiver (examples/receiver) against the running service: uvicorn on 127.0.0.1
with the in-process worker and the sample data, the receiver as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from service.core.config import Settings
from service.main import create_app
from service.sample.loader import load_sample
from tests.helpers import wait_for
from tests.live import bearer, free_port, listening

RECEIVER = Path(__file__).resolve().parents[2] / "examples" / "receiver" / "receiver.py"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    port = free_port()
    return {
        "in_process_worker": True,
        "webhook_retry_schedule": "0,0.3,0.3,0.3",
        "public_base_url": f"http://127.0.0.1:{port}",
        "webhook_timeout_s": 10.0,
    }


@pytest.fixture
def api(settings: Settings) -> Iterator[str]:
    """The service on 127.0.0.1 with the sample data."""
    app = create_app(settings)
    load_sample(engine=app.state.engine, settings=settings)
    port = int(settings.public_base_url.rsplit(":", 1)[1])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=20)
    yield settings.public_base_url
    server.should_exit = True
    thread.join(timeout=30)


def test_reference_receiver_keeps_a_folder_in_sync(
    api: str, make_client: Callable[..., tuple[str, str]], tmp_path: Path
) -> None:
    manager = bearer(api, make_client, "webhooks:manage")
    editor = bearer(api, make_client, "standards:write")
    steward = bearer(api, make_client, "registry:write")
    port = free_port()
    hook = f"http://127.0.0.1:{port}/imi-webhook"
    r = httpx.post(f"{api}/v1/webhooks/endpoints", json={"url": hook}, headers=manager)
    assert r.status_code == 201, r.text
    endpoint = r.json()
    folder = tmp_path / "imi"
    proc = subprocess.Popen(
        [sys.executable, str(RECEIVER), "--api", api, "--folder", str(folder), "--port", str(port)],
        env=dict(os.environ, IMI_WEBHOOK_SECRET=endpoint["secret"]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # On start it copies the current state and follows the feed from its end.
        wait_for(lambda: (folder / "state.json").exists() and listening(port), timeout=30)
        guidelines = json.loads((folder / "guidelines" / "training-standards.json").read_text())
        assert guidelines["version"] == "2.0"
        assert (folder / "guidelines" / "training-standards.html").read_text().strip()
        schools = json.loads((folder / "schools.json").read_text())
        listed = httpx.get(f"{api}/v1/schools", params={"limit": 200}).json()["data"]
        assert len(schools) == len(listed) > 40
        last = _state(folder)["last_sequence"]
        assert last > 0 and httpx.get(f"{api}/v1/events", params={"after": last}).json()["data"] == []

        # A publish reaches the receiver by webhook within seconds.
        r = httpx.post(
            f"{api}/v1/standards/training-standards/versions",
            json={"version": "2.1", "based_on": "2.0"},
            headers=editor,
        )
        assert r.status_code == 201, r.text
        r = httpx.post(f"{api}/v1/standards/training-standards/versions/2.1/publish", headers=editor)
        assert r.status_code == 200, r.text
        started = time.monotonic()
        wait_for(
            lambda: (
                json.loads((folder / "guidelines" / "training-standards.json").read_text())["version"]
                == "2.1"
            ),
            timeout=15,
        )
        assert time.monotonic() - started < 10
        wait_for(lambda: _state(folder)["log"] and _state(folder)["log"][-1]["via"] == "webhook")

        # A missed event (endpoint disabled meanwhile) is caught up from the feed on the next jump.
        r = httpx.patch(
            f"{api}/v1/webhooks/endpoints/{endpoint['id']}", json={"enabled": False}, headers=manager
        )
        assert r.status_code == 200
        r = httpx.post(
            f"{api}/v1/schools", json={"name": "Stille Zee Mindfulness", "country": "NL"}, headers=steward
        )
        assert r.status_code == 201, r.text
        missed = r.json()["id"]
        r = httpx.patch(
            f"{api}/v1/webhooks/endpoints/{endpoint['id']}", json={"enabled": True}, headers=manager
        )
        assert r.status_code == 200
        r = httpx.post(
            f"{api}/v1/schools", json={"name": "Calm Harbour Training", "country": "NZ"}, headers=steward
        )
        assert r.status_code == 201, r.text
        wait_for(lambda: len(_state(folder)["log"]) >= 3)
        names = {s["name"] for s in json.loads((folder / "schools.json").read_text())}
        assert {"Stille Zee Mindfulness", "Calm Harbour Training"} <= names
        log = _state(folder)["log"]
        # The jump made it read the feed, which brought the missed event (and the new one with it,
        # so the webhook itself was then a duplicate).
        assert [e["type"] for e in log[-2:]] == ["school.listed", "school.listed"]
        assert log[-2]["via"] == "feed" and log[-2]["sequence"] < log[-1]["sequence"]
        assert missed in {s["id"] for s in json.loads((folder / "schools.json").read_text())}
        # Duplicates are ignored: the same delivery again changes nothing.
        before = len(_state(folder)["log"])

        def newest_delivery() -> dict[str, Any]:
            [d] = httpx.get(
                f"{api}/v1/webhooks/endpoints/{endpoint['id']}/deliveries",
                params={"limit": 1},
                headers=manager,
            ).json()["data"]
            return d

        # The receiver may have answered before the worker recorded it (outcomes are written in
        # batches, and a retry is a 409 while the worker still holds the delivery): wait for the
        # record. Under load this used to fail: the retry was refused and never happened.
        def recorded() -> dict[str, Any] | None:
            d = newest_delivery()
            return d if d["status"] == "succeeded" else None

        d = wait_for(recorded, what="the delivery is recorded")
        retried = httpx.post(
            f"{api}/v1/webhooks/endpoints/{endpoint['id']}/deliveries/{d['id']}/retry", headers=manager
        )
        assert retried.status_code == 202, retried.text
        wait_for(
            lambda: (
                httpx.get(
                    f"{api}/v1/webhooks/endpoints/{endpoint['id']}/deliveries",
                    params={"limit": 1},
                    headers=manager,
                ).json()["data"][0]["attempt_count"]
                == d["attempt_count"] + 1
            )
        )
        assert len(_state(folder)["log"]) == before
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert b"Traceback" not in err, err.decode()


def _state(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "state.json").read_text())


def _receiver(
    *args: str, secret: str | None = "whsec_" + "A" * 44, cwd: Path
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMI_WEBHOOK_")}
    if secret is not None:
        env["IMI_WEBHOOK_SECRET"] = secret
    return subprocess.run(
        [sys.executable, str(RECEIVER), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def _one_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and lines[-1].startswith("receiver.py: error: "), result.stderr
    for needle in needles:
        assert needle in lines[-1], (needle, lines[-1])


@pytest.mark.parametrize(
    ("secret", "needle"),
    [
        ("s3cret", "must start with whsec_"),
        ("whsec_", "empty"),
        ("whsec_not base64!", "followed by base64"),
    ],
)
def test_the_receiver_refuses_a_secret_that_is_not_one(tmp_path: Path, secret: str, needle: str) -> None:
    """A mistyped secret used to start listening and answer every delivery 401."""
    port = str(free_port())
    result = _receiver(
        "--api", "http://127.0.0.1:1", "--folder", "imi", "--port", port, secret=secret, cwd=tmp_path
    )
    _one_line(result, needle)
    assert not (tmp_path / "imi").exists()


def test_the_receiver_refuses_a_public_key_of_the_wrong_size(tmp_path: Path) -> None:
    result = _receiver("--api", "http://127.0.0.1:1", "--public-key", "whpk_MTIz", secret=None, cwd=tmp_path)
    _one_line(result, "base64 of 32 bytes", "decodes to 3")


def test_the_receiver_says_in_one_line_that_the_api_does_not_answer(tmp_path: Path) -> None:
    """``--api`` at a closed port (the API not started, a wrong port) or not a URL at all was an
    httpx traceback out of the catch-up."""
    closed = f"http://127.0.0.1:{free_port()}"
    _one_line(
        _receiver("--api", closed, cwd=tmp_path),
        f"cannot catch up from the API at {closed} (--api)",
        "refused",
    )
    _one_line(
        _receiver("--api", "localhost-8000", cwd=tmp_path), "cannot catch up", "'http://' or 'https://'"
    )


def test_the_receiver_says_in_one_line_that_its_port_is_taken(api: str, tmp_path: Path) -> None:
    """It catches up, then cannot listen where something already does (here: the API itself)."""
    port = api.rsplit(":", 1)[1]
    result = _receiver("--api", api, "--folder", "imi", "--port", port, cwd=tmp_path)
    _one_line(result, f"cannot listen on 127.0.0.1:{port}", "in use")
