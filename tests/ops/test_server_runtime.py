"""The server process's runtime tuning (service.main.app_from_env), checked in a fresh interpreter."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.main import GIL_SWITCH_INTERVAL_S

PROBE = (
    "import gc, json, sys; from service.main import app_from_env; before = sys.getswitchinterval(); "
    "app_from_env(); print(json.dumps([before, sys.getswitchinterval(), gc.get_freeze_count()]))"
)


def test_the_server_freezes_its_startup_objects_and_shortens_the_gil_switch_interval(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "IMI_DATABASE_URL": f"sqlite:///{tmp_path}/runtime.db",
        "IMI_KEYS_DIR": str(tmp_path / "keys"),
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    before, after, frozen = json.loads(out.strip().splitlines()[-1])
    # The interpreter keeps microseconds: 0.0001 reads back as 9.999999999999999e-05.
    assert GIL_SWITCH_INTERVAL_S == 0.0001
    assert before == 0.005 and after == pytest.approx(GIL_SWITCH_INTERVAL_S)
    # Startup objects (imports, the app) are out of the collector's full passes: >100k of them.
    assert frozen > 100_000


def test_an_app_built_and_started_by_create_app_freezes_nothing(client: TestClient) -> None:
    # create_app (what tests and embedders use) must not freeze: frozen objects are never freed.
    assert client.get("/healthz").status_code == 200  # the lifespan ran
    assert gc.get_freeze_count() == 0
