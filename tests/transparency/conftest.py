"""Fixtures of the transparency and status list tests: the registry's (stewards, schools,
versions built through the API) plus reading the log as a verifier does."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.ops.conftest import cli  # noqa: F401
from tests.registry.conftest import auth, editor, make_school, publish, state, steward  # noqa: F401
from tests.transparency import verifier

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def log_vkey(client: TestClient) -> str:
    """The log's vkey as ``/v1/log/key`` publishes it."""
    r = client.get("/v1/log/key")
    assert r.status_code == 200, r.text
    return str(r.json()["vkey"])


@pytest.fixture
def checkpoint(client: TestClient, log_vkey: str) -> Callable[..., tuple[int, bytes, str]]:
    """``checkpoint(size=None)`` -> ``(size, root, note)``, its log signature checked."""

    def read(size: int | None = None) -> tuple[int, bytes, str]:
        r = client.get("/v1/log/checkpoint", params={} if size is None else {"size": size})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "text/plain; charset=utf-8"
        assert verifier.log_signature_ok(r.text, log_vkey)
        text, _ = verifier.split_note(r.text)
        _origin, got, root = verifier.checkpoint_fields(text)
        return got, root, r.text

    return read


@pytest.fixture
def feed(client: TestClient) -> Callable[[], list[dict[str, Any]]]:
    """Every event of the feed, oldest first."""

    def read() -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        after = 0
        while True:
            page = client.get("/v1/events", params={"after": after, "limit": 200}).json()
            out += page["data"]
            if page["next_cursor"] is None:
                return out
            after = int(page["next_cursor"])

    return read


@pytest.fixture(scope="session")
def witness_module() -> ModuleType:
    """``examples/witness/witness.py``, imported from its file (it is not a package)."""
    path = ROOT / "examples" / "witness" / "witness.py"
    spec = importlib.util.spec_from_file_location("imi_example_witness", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
