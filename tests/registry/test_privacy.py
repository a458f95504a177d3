"""A school's private contact details never leave: not through a public endpoint, the
event feed, the audit log, a credential, an error, a log line or the snapshot."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from service.core.audit import AuditEntry

EMAIL = "zz-private-leak-check@example.org"
EMAIL2 = "zz-second-leak-check@example.org"
PHONE = "+41 99 123 45 67"
PHONE2 = "+41 98 765 43 21"
SECRETS = (EMAIL, EMAIL2, PHONE, PHONE2, "zz-private", "zz-second", "123 45 67", "765 43 21")


def _assert_clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked through {where}"


def test_contact_never_leaks(
    client: TestClient,
    session_factory: Callable[[], Any],
    steward: dict[str, str],
    auth: Callable[..., dict[str, str]],
    publish: Callable[[str], dict[str, Any]],
    state: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    publish("1.0")
    r = client.post(
        "/v1/schools",
        json={
            "name": "Leak Check School",
            "country": "CH",
            "city": "Bern",
            "website": "https://leak.example.ch",
            "contact": {"email": EMAIL, "phone": PHONE},
        },
        headers=steward,
    )
    assert r.status_code == 201
    school_id = r.json()["id"]
    me = auth("school:self", school_id=school_id)
    etag = client.get(f"/v1/schools/{school_id}").headers["ETag"]
    r = client.patch(
        f"/v1/schools/{school_id}",
        json={"city": "Thun", "contact": {"email": EMAIL2, "phone": PHONE2}},
        headers={**me, "If-Match": etag},
    )
    assert r.status_code == 200
    assert r.json()["contact"] == {"email": EMAIL2, "phone": PHONE2}  # the school sees its own
    assert state(school_id, "1.0", headers=me).status_code == 200
    # A rejected contact is not echoed in the 422 either.
    bad = client.post(
        "/v1/schools",
        json={"name": "X", "country": "CH", "contact": {"email": f"{EMAIL} {EMAIL}", "phone": PHONE + "x"}},
        headers=steward,
    )
    assert bad.status_code == 422
    _assert_clean(bad.text, "a 422 problem")

    public = [
        f"/v1/schools/{school_id}",
        "/v1/schools",
        "/v1/schools?q=leak",
        "/v1/schools?country=CH",
        f"/v1/schools/{school_id}/alignment/history",
        f"/v1/schools/{school_id}/affiliation",
        "/v1/verify?name=Leak%20Check%20School",
        "/v1/verify?website=leak.example.ch",
        "/v1/events?limit=200",
        "/v1/snapshot",
    ]
    for path in public:
        r = client.get(path)
        assert r.status_code in (200, 404), (path, r.status_code)  # /v1/snapshot may not exist yet
        _assert_clean(r.text, path)
        _assert_clean(json.dumps(dict(r.headers)), f"headers of {path}")
    assert client.get("/v1/schools?q=leak").json()["data"][0]["id"] == school_id

    credential = client.get(f"/v1/schools/{school_id}/affiliation").json()["credential"]
    for part in credential.split(".")[:2]:
        _assert_clean(base64.urlsafe_b64decode(part + "==").decode(), "the credential")

    audit_page = client.get("/v1/audit?limit=200", headers=steward)
    if audit_page.status_code == 200:
        _assert_clean(audit_page.text, "GET /v1/audit")
    with session_factory() as session:
        rows = session.execute(sa.select(AuditEntry)).scalars().all()
        assert {"school.create", "school.update", "school.alignment.stated"} <= {e.action for e in rows}
        _assert_clean(json.dumps([e.details for e in rows]), "the audit log table")
        update = next(e for e in rows if e.action == "school.update")
        assert update.details == {"fields": ["city", "contact"]}
        events = session.execute(sa.text("SELECT data FROM events")).scalars().all()
        _assert_clean(json.dumps([str(d) for d in events]), "the events table")

    _assert_clean(caplog.text, "the logs")
    # Erasure: the steward's view shows the contact gone.
    assert client.delete(f"/v1/schools/{school_id}/contact", headers=steward).status_code == 204
    assert client.get(f"/v1/schools/{school_id}", headers=steward).json()["contact"] is None
