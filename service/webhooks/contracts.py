"""Payload contracts: the OpenAPI document's ``webhooks`` section (OpenAPI 3.1).

Every event type of the catalogue (``schemas.EVENT_CATALOGUE``, the same models
``GET /v1/webhooks/event-types`` serves as JSON Schemas) becomes one webhook
operation: the request body is the event envelope with that type's ``data``, the
three Standard Webhooks headers are documented as required header parameters
(both signature schemes), and each operation carries an example payload
(:data:`EXAMPLES`; the tests validate them against the schemas). The component
schemas of the payloads are the catalogue's own (:func:`publish_contracts`).
Client generators then know every payload a receiver gets.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header
from pydantic import create_model

from service.webhooks import schemas

BASE = "https://api.example.org"
_SCHOOL = "sch_01jf3k5v8m2q7r9t4w6y8z0a1b"
_SCHOOL_LINKS = {
    "self": f"{BASE}/v1/schools/{_SCHOOL}",
    "affiliation": f"{BASE}/v1/schools/{_SCHOOL}/affiliation",
    "history": f"{BASE}/v1/schools/{_SCHOOL}/alignment/history",
}
_SCHOOL_RECORD: dict[str, Any] = {
    "id": _SCHOOL,
    "name": "Stille Zee Mindfulness",
    "alternate_names": [],
    "country": "NL",
    "city": "Den Haag",
    "website": "https://stillezee.example/",
    "programmes": ["MBSR", "MBCT"],
    "languages": ["nl", "en"],
    "listing": "listed",
    "alignment": {
        "status": "none",
        "version": None,
        "stated_at": None,
        "stated_by": None,
        "evidence_url": None,
        "reaffirmation_due_by": None,
    },
    "created_at": "2026-12-06T10:00:00Z",
    "updated_at": "2026-12-06T10:00:00Z",
    "links": _SCHOOL_LINKS,
}
_DOC = f"{BASE}/v1/standards/training-standards"

#: An example ``data`` per event type.
EXAMPLES: dict[str, dict[str, Any]] = {
    "standards.version.published": {
        "document": "training-standards",
        "version": "2.0",
        "title": "Training Standards and Ethical Guidelines",
        "previous_version": "1.0",
        "reaffirmation_required": True,
        "effective_from": "2022-01-01T00:00:00Z",
        "summary": "A major revision: supervision and retreats reworded, trainer criteria added.",
        "changes": {"added": ["C4"], "removed": ["B7"], "modified": ["A2", "B3.1"], "moved": ["D1"]},
        "links": {"version": f"{_DOC}/versions/2.0", "diff": f"{_DOC}/diff?from=1.0&to=2.0"},
    },
    "standards.version.withdrawn": {
        "document": "training-standards",
        "version": "2.1",
        "current_version": "2.0",
        "links": {"version": f"{_DOC}/versions/2.1", "current": f"{_DOC}/versions/2.0"},
    },
    "standards.translation.published": {
        "document": "training-standards",
        "version": "2.0",
        "language": "de",
        "links": {"version": f"{_DOC}/versions/2.0?lang=de"},
    },
    "school.listed": _SCHOOL_RECORD,
    "school.updated": {**_SCHOOL_RECORD, "city": "Scheveningen"},
    "school.delisted": {**_SCHOOL_RECORD, "listing": "delisted"},
    "school.alignment.changed": {
        "school_id": _SCHOOL,
        "name": "Stille Zee Mindfulness",
        "country": "NL",
        "previous_status": "none",
        "status": "aligned",
        "aligned_version": "2.0",
        "reaffirmation_due_by": None,
        "links": _SCHOOL_LINKS,
    },
    "standards.review.opened": {
        "document": "training-standards",
        "version": "2.1",
        "opens_at": "2026-12-01T09:00:00Z",
        "closes_at": "2027-02-28T23:59:59Z",
        "summary": "Supervision hours and retreat length, reviewed with the regional associations.",
        "links": {"version": f"{_DOC}/versions/2.1", "review": f"{_DOC}/versions/2.1/review"},
    },
    "standards.review.closed": {
        "document": "training-standards",
        "version": "2.1",
        "opens_at": "2026-12-01T09:00:00Z",
        "closes_at": "2027-02-28T23:59:59Z",
        "closed_at": "2027-02-28T23:59:59Z",
        "closed_early": False,
        "comments": 37,
        "links": {"version": f"{_DOC}/versions/2.1", "review": f"{_DOC}/versions/2.1/review"},
    },
    "standards.comment.created": {
        "document": "training-standards",
        "version": "2.1",
        "comment_id": "cmt_01jf3k5v8m2q7r9t4w6y8z0a1f",
        "clause_key": "B3.1",
        "organisation": "Achtsamkeitsverband Deutschland",
        "region": "DE",
        "commenter_type": "association",
        "quote": "at least three hours of supervision",
        "text": "Our members asked for the hours to count per course taught, not per year.",
        "proposed_text": "At least three hours of supervision per 8-week course taught.",
        "content_hash": "sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "links": {"comment": f"{_DOC}/versions/2.1/comments/cmt_01jf3k5v8m2q7r9t4w6y8z0a1f"},
    },
    "standards.comment.disposed": {
        "document": "training-standards",
        "version": "2.1",
        "comment_id": "cmt_01jf3k5v8m2q7r9t4w6y8z0a1f",
        "clause_key": "B3.1",
        "organisation": "Achtsamkeitsverband Deutschland",
        "region": "DE",
        "commenter_type": "association",
        "outcome": "accepted_with_changes",
        "previous_outcome": None,
        "response": "Adopted, counted per course of eight weeks or longer.",
        "links": {"comment": f"{_DOC}/versions/2.1/comments/cmt_01jf3k5v8m2q7r9t4w6y8z0a1f"},
    },
    "webhook.ping": {"endpoint_id": "whe_01jf3k5v8m2q7r9t4w6y8z0a1c", "message": "ping"},
}

WEBHOOK_ID = (
    "The event id (`evt_…`; `msg_…` for a ping): the same on every retry and for every endpoint. "
    "Deliveries are at-least-once: de-duplicate on it."
)
WEBHOOK_TIMESTAMP = "Unix seconds when this attempt was signed; refuse values more than 5 minutes away."
WEBHOOK_SIGNATURE = (
    'Signatures of `"{webhook-id}.{webhook-timestamp}.{body}"`, space-separated: `v1,<base64 '
    "HMAC-SHA256>` with your `whsec_` secret (`hmac-sha256` endpoints), or `v1a,<base64 Ed25519 "
    "signature>` verified with your `whpk_` public key (`ed25519` endpoints). During a rotation's "
    "overlap two are sent: accept the delivery when one verifies (Standard Webhooks)."
)


def example_payload(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """A whole webhook body for ``name`` with ``data``."""
    return {
        "id": "msg_01jf3k5v8m2q7r9t4w6y8z0a1d"
        if name == "webhook.ping"
        else "evt_01jf3k5v8m2q7r9t4w6y8z0a1e",
        "type": name,
        "sequence": None if name == "webhook.ping" else 42,
        "timestamp": "2026-12-06T10:00:00Z",
        "data": data,
    }


def publish_contracts(app: FastAPI) -> None:
    """Finish the ``webhooks`` section of ``app``'s document: the component schemas of every
    event's ``data`` become exactly the JSON Schemas the catalogue serves
    (``model_json_schema()``, references pointed at the components), and each operation gets
    its example body.

    Done on the generated document because FastAPI renders the same models a little
    differently (it drops ``"default": null``) and drops ``null`` members from examples
    (a ping's ``"sequence": null``); the contract is one schema and real bodies. Call
    after every other ``app.openapi`` wrapper is installed."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            components = document.setdefault("components", {}).setdefault("schemas", {})
            for model, _description in schemas.EVENT_CATALOGUE.values():
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(schema.pop("$defs", {}))
                components[model.__name__] = schema
            for name, item in document.get("webhooks", {}).items():
                if name in EXAMPLES:
                    body = item["post"]["requestBody"]["content"]["application/json"]
                    description = schemas.EVENT_CATALOGUE[name][1]
                    value = example_payload(name, EXAMPLES[name])
                    body["examples"] = {name: {"summary": description, "value": value}}
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def register_openapi_webhooks(webhooks: APIRouter) -> None:
    """Describe every event type in the OpenAPI document's ``webhooks`` section (OpenAPI 3.1)."""
    for name, (model, description) in schemas.EVENT_CATALOGUE.items():
        envelope = create_model(  # type: ignore[call-overload]
            "Event_" + name.replace(".", "_"),
            __base__=schemas.EventEnvelope,
            __doc__=f"`{name}`: {description}",
            data=(model, ...),
        )

        def receiver(  # pragma: no cover - documentation only
            body: Any,
            webhook_id: Any,
            webhook_timestamp: Any,
            webhook_signature: Any,
        ) -> None:
            return None

        receiver.__annotations__ = {
            "body": envelope,
            "webhook_id": Annotated[str, Header(alias="webhook-id", description=WEBHOOK_ID)],
            "webhook_timestamp": Annotated[
                str, Header(alias="webhook-timestamp", description=WEBHOOK_TIMESTAMP, pattern=r"^[0-9]+$")
            ],
            "webhook_signature": Annotated[
                str, Header(alias="webhook-signature", description=WEBHOOK_SIGNATURE)
            ],
            "return": None,
        }
        webhooks.post(
            name,
            summary=description,
            description=(
                f"POSTed to your endpoint for `{name}` as UTF-8 JSON, signed per Standard Webhooks. "
                "Answer 2xx within the deadline (`IMI_WEBHOOK_TIMEOUT_S`); `410 Gone` disables the "
                "endpoint; anything else is a failed attempt, retried on the schedule."
            ),
            operation_id="receive_" + name.replace(".", "_"),
            status_code=204,
            responses={
                204: {"description": "received (any 2xx)"},
                410: {"description": "stop sending: the endpoint is disabled"},
                "4XX": {"description": "a failed attempt: retried (`Retry-After` is honoured on 429)"},
                "5XX": {"description": "a failed attempt: retried (`Retry-After` is honoured on 503)"},
            },
        )(receiver)
