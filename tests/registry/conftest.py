"""Fixtures of the registry tests: stewards, schools and standards versions built through the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import minted_auth
from tests.helpers import SLUG, publish_version

EVIDENCE = "https://school.example.org/alignment"


@pytest.fixture
def auth(app: Any, session_factory: Callable[[], Any]) -> Callable[..., dict[str, str]]:
    """Bearer headers for a new client: ``auth("registry:write", school_id=None)``.

    Overrides the shared fixture with :func:`tests.conftest.minted_auth` (no argon2 hashing).
    """
    return minted_auth(app, session_factory, name="registry test client")


@pytest.fixture
def steward(auth: Callable[..., dict[str, str]]) -> dict[str, str]:
    """Bearer headers of a registry steward."""
    return auth("registry:write")


@pytest.fixture
def editor(auth: Callable[..., dict[str, str]]) -> dict[str, str]:
    """Bearer headers of a standards editor."""
    return auth("standards:write")


@pytest.fixture
def make_school(client: TestClient, steward: dict[str, str]) -> Callable[..., dict[str, Any]]:
    """Create a school through ``POST /v1/schools``: ``make_school(name="Zürich", country="CH")``."""
    counter = iter(range(1, 10_000))

    def make(**fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"name": f"School {next(counter)}", "country": "NL"}
        body.update(fields)
        r = client.post("/v1/schools", json=body, headers=steward)
        assert r.status_code == 201, r.text
        return dict(r.json())

    return make


@pytest.fixture
def publish(client: TestClient, editor: dict[str, str]) -> Callable[[str], dict[str, Any]]:
    """Publish version ``v`` of the training standards through the standards API; returns the version."""

    def run(version: str) -> dict[str, Any]:
        first = client.get(f"/v1/standards/{SLUG}").status_code == 404
        return publish_version(client, f"/v1/standards/{SLUG}/versions", editor, version, new_document=first)

    return run


@pytest.fixture
def state(client: TestClient, steward: dict[str, str]) -> Callable[..., Any]:
    """State alignment: ``state(school_id, "2.0", headers=None)`` returns the response."""

    def run(school_id: str, version: str, headers: dict[str, str] | None = None) -> Any:
        return client.post(
            f"/v1/schools/{school_id}/alignment",
            json={"version": version, "evidence_url": EVIDENCE, "stated_by": "Mira Example, director"},
            headers=headers if headers is not None else steward,
        )

    return run
