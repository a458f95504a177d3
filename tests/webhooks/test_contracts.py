"""Payload contracts (issue 11, point 5): the OpenAPI 3.1 document with its ``webhooks`` section is
valid (openapi-spec-validator), carries the catalogue's schemas, headers and examples, every event
of the sample data fits its schema, and a client generated from it (openapi-python-client) works
against a running server."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from service.core.config import Settings
from service.main import create_app
from service.sample.loader import load_sample
from service.webhooks.contracts import EXAMPLES
from service.webhooks.schemas import EVENT_CATALOGUE
from tests.live import free_port, serve

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
HEADERS = {"webhook-id", "webhook-timestamp", "webhook-signature"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return dict(json.loads(COMMITTED.read_text()))


def envelope_validator(document: dict[str, Any], event_type: str) -> Draft202012Validator:
    """A validator of a whole webhook body of ``event_type`` from the document's ``webhooks``."""
    body = document["webhooks"][event_type]["post"]["requestBody"]["content"]["application/json"]
    schema = {**body["schema"], "components": document["components"]}
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def inline(schema: Any, definitions: dict[str, Any], prefix: str) -> Any:
    """``schema`` with every ``$ref`` under ``prefix`` replaced by its definition (no cycles here)."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(prefix):
            return inline(definitions[ref[len(prefix) :]], definitions, prefix)
        return {k: inline(v, definitions, prefix) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [inline(v, definitions, prefix) for v in schema]
    return schema


def test_the_document_is_valid_openapi_31_with_every_payload(client: Any, document: dict[str, Any]) -> None:
    assert client.get("/openapi.json").json() == document  # the committed one is the served one
    validate(document)
    assert document["openapi"].startswith("3.1")
    catalogue = {item["type"]: item for item in client.get("/v1/webhooks/event-types").json()["data"]}
    assert set(document["webhooks"]) == set(catalogue) == set(EVENT_CATALOGUE)
    components = document["components"]["schemas"]
    for name, item in catalogue.items():
        operation = document["webhooks"][name]["post"]
        parameters = {p["name"]: p for p in operation["parameters"]}
        assert set(parameters) == HEADERS and all(
            p["in"] == "header" and p["required"] for p in parameters.values()
        )
        assert "v1a," in parameters["webhook-signature"]["description"]
        assert "v1," in parameters["webhook-signature"]["description"]
        envelope = components[
            operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
        ]
        assert set(envelope["required"]) >= {"id", "type", "sequence", "timestamp", "data"}
        # The same schema as the catalogue serves, once references are followed.
        published = inline(envelope["properties"]["data"], components, "#/components/schemas/")
        served = inline(item["schema"], item["schema"].get("$defs", {}), "#/$defs/")
        assert published == served, name
        # Its example is a valid body of that type.
        [example] = operation["requestBody"]["content"]["application/json"]["examples"].values()
        assert example["value"]["type"] == name
        errors = [e.message for e in envelope_validator(document, name).iter_errors(example["value"])]
        assert errors == [], (name, errors)
        assert set(operation["responses"]) >= {"204", "410"}
    assert set(EXAMPLES) == set(EVENT_CATALOGUE)


def test_every_sample_event_fits_its_published_schema(
    client: Any, app: Any, settings: Settings, document: dict[str, Any]
) -> None:
    load_sample(engine=app.state.engine, settings=settings)
    seen: dict[str, int] = {}
    after = 0
    while True:
        page = client.get("/v1/events", params={"after": after, "limit": 200}).json()
        for event in page["data"]:
            errors = [e.message for e in envelope_validator(document, event["type"]).iter_errors(event)]
            assert errors == [], (event["type"], errors)
            seen[event["type"]] = seen.get(event["type"], 0) + 1
            after = event["sequence"]
        if not page["next_cursor"]:
            break
    assert set(seen) >= {
        "standards.version.published",
        "standards.translation.published",
        "school.listed",
        "school.alignment.changed",
    }


# --- a generated client ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The client openapi-python-client generates from the committed document, imported."""
    out = tmp_path_factory.mktemp("client")
    tool = Path(sys.executable).with_name("openapi-python-client")
    done = subprocess.run(
        [
            str(tool),
            "generate",
            "--path",
            str(COMMITTED),
            "--meta",
            "none",
            "--output-path",
            str(out / "imi_client"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("imi_client")
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == "imi_client" or m.startswith("imi_client.")]:
            del sys.modules[name]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"public_base_url": f"http://127.0.0.1:{free_port()}"}


def test_a_generated_client_talks_to_a_running_server(
    generated: Any, settings: Settings, make_client: Callable[..., tuple[str, str]], session_factory: Any
) -> None:
    client_module = importlib.import_module("imi_client.client")
    event_types_api = importlib.import_module(
        "imi_client.api.webhooks.event_types_v1_webhooks_event_types_get"
    )
    create_api = importlib.import_module("imi_client.api.webhooks.create_endpoint_v1_webhooks_endpoints_post")
    affiliation_api = importlib.import_module(
        "imi_client.api.registry.get_affiliation_v1_schools_school_id_affiliation_get"
    )
    models = importlib.import_module("imi_client.models")

    from service.registry import service as registry
    from service.registry.schemas import SchoolCreate

    app = create_app(settings)
    with serve(app, int(settings.public_base_url.rsplit(":", 1)[1])) as base:
        with session_factory() as session:
            school_id = registry.create_school(
                session=session,
                data=SchoolCreate(name="Stille Zee", country="NL"),
                actor="test",
                base_url=base,
            ).id
        cid, secret = make_client("webhooks:manage")
        token = httpx.post(
            f"{base}/v1/oauth/token", data={"grant_type": "client_credentials"}, auth=(cid, secret)
        )
        public = client_module.Client(base_url=base)
        manager = client_module.AuthenticatedClient(base_url=base, token=token.json()["access_token"])

        # 1. The event-type catalogue, as typed models.
        types = event_types_api.sync(client=public)
        assert {t.type_ for t in types.data} == set(EVENT_CATALOGUE)

        # 2. Register an Ed25519 endpoint with a filter.
        body = models.EndpointCreate(
            url="http://127.0.0.1:9/hook",
            filter_=models.EndpointFilter(countries=["nl"]),
            signature_scheme=models.EndpointCreateSignatureScheme.ED25519,
        )
        created = create_api.sync(client=manager, body=body)
        assert isinstance(created, models.EndpointWithSecret), created
        assert created.public_key.startswith("whpk_") and created.filter_.countries == ["NL"]

        # 3. A school's signed affiliation.
        answer = affiliation_api.sync(school_id=school_id, client=public)
        assert isinstance(answer, models.Affiliation), answer
        assert (
            answer.school_id == school_id and answer.affiliated is False and answer.credential.count(".") == 2
        )

        # And a webhook body read with the generated payload model.
        event = httpx.get(f"{base}/v1/events", params={"type": "school.listed"}).json()["data"][0]
        parsed = models.EventSchoolListed.from_dict(event)
        assert parsed.data.name == "Stille Zee" and parsed.data.country == "NL"
