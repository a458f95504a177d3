"""Error responses in the OpenAPI document: every error is an RFC 9457 problem (DESIGN §4).

FastAPI documents only the success response and a 422 in its own
``HTTPValidationError`` JSON shape. The API really answers errors as
``application/problem+json`` (``errors.py``), so :func:`install` makes the
generated document say so:

- every 4xx/5xx response the routes declare without a body gets the
  ``Problem`` schema as ``application/problem+json``, and FastAPI's 422
  (``HTTPValidationError``) is replaced by it;
- statuses that follow from an operation's shape are added where the route
  does not declare them itself: 400 (malformed JSON) and 413 (body over
  1 MiB) for operations with a request body, 415 for those whose body is
  JSON (sent as another media type), 401/403 for operations that
  need a token, 404 for operations with path parameters, 429 for every
  rate-limited path (everything but ``/healthz``).

Route-specific outcomes (409, 410, 412, 428, …) are declared on the routes
with :func:`problems`. Responses a route documents with their own content
(the token endpoint's RFC 6749 errors) are left as they are.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from service.core.errors import PROBLEM_JSON

PROBLEM_REF = "#/components/schemas/Problem"

#: The RFC 9457 problem object as this API sends it (extension members vary by problem).
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem document; extension members (e.g. `errors`) depend on the problem.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "a URI reference naming the problem type"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "validation errors (422, and 400 for malformed JSON)",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": "string"}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}

DESCRIPTIONS: dict[int, str] = {
    400: "Malformed request (e.g. a body that is not valid JSON)",
    401: "No valid bearer token (`WWW-Authenticate` says why)",
    403: "The token lacks the scope, or the client may not act for this resource",
    404: "No such resource",
    406: "None of the offered media types is acceptable",
    409: "Conflicts with the resource's current state",
    410: "Gone",
    412: "`If-Match` does not match the current ETag",
    413: "Request body larger than 1 MiB",
    415: "The body is not of a media type this operation reads (`accepted` lists them)",
    422: "The request did not validate (`errors` lists why)",
    428: "`If-Match` is required",
    429: "Rate limit exceeded (`Retry-After` says when to retry)",
    503: "Temporarily unavailable (`Retry-After`)",
}

#: ``responses=`` entry of a cached public read that answers ``If-None-Match`` with a 304.
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "Not modified (`If-None-Match`)"}}

#: Paths without a rate limit (``ratelimit.EXEMPT_PATHS``).
_UNLIMITED = frozenset({"/healthz"})
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}


def problems(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for a route: each status a problem document.

    ``problems(409, 412)``; a specific description with ``problems(409, s409="Already published")``.
    """
    return {
        status: {
            "description": descriptions.get(f"s{status}", DESCRIPTIONS.get(status, "Error")),
            "content": _problem_content(),
        }
        for status in statuses
    }


def _is_validation_error(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


def document_problems(document: dict[str, Any]) -> dict[str, Any]:
    """Rewrite ``document`` (an OpenAPI dict) in place as the module docstring says; returns it."""
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            wanted: list[int] = []
            if "requestBody" in operation:
                wanted += [400, 413]
                if any(m.endswith("json") for m in operation["requestBody"].get("content", {})):
                    wanted.append(415)  # a JSON body sent as another type (errors._body_not_json)
            if operation.get("security"):
                wanted += [401, 403]
            if "{" in path:
                wanted.append(404)
            if path not in _UNLIMITED:
                wanted.append(429)
            for status in wanted:
                responses.setdefault(str(status), {"description": DESCRIPTIONS[status]})
            for code, response in responses.items():
                if code[0] not in "45":
                    continue
                if _is_validation_error(response):
                    response["content"] = _problem_content()
                    if response.get("description") == "Validation Error":
                        response["description"] = DESCRIPTIONS[422]
                elif not response.get("content"):
                    response["content"] = _problem_content()
            operation["responses"] = dict(sorted(responses.items()))
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    if "HTTPValidationError" not in _refs(document, skip="HTTPValidationError"):
        schemas.pop("HTTPValidationError", None)
        if "ValidationError" not in _refs(document, skip="ValidationError"):
            schemas.pop("ValidationError", None)
    return document


def _refs(document: dict[str, Any], *, skip: str) -> set[str]:
    """Names of component schemas referenced anywhere but inside the schema ``skip``."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                found.add(ref.rsplit("/", 1)[1])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for key, value in document.items():
        if key != "components":
            walk(value)
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        if name != skip:
            walk(schema)
    return found


#: Request bodies that routes read themselves (``request_body``): their schemas become components.
_BODY_MODELS: list[type[BaseModel]] = []


def request_body(model: type[BaseModel], others: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """``openapi_extra=`` for a route that reads its body itself (to take more than JSON):
    ``model`` documents ``application/json``; ``others`` maps further media types
    (``{"text/markdown": {"type": "string"}}``) to their schemas."""
    if model not in _BODY_MODELS:
        _BODY_MODELS.append(model)
    content: dict[str, Any] = {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
    }
    content.update({media: {"schema": schema} for media, schema in (others or {}).items()})
    return {"requestBody": {"required": True, "content": content}}


def _add_body_models(document: dict[str, Any]) -> None:
    if not _BODY_MODELS:
        return
    _, found = models_json_schema(
        [(model, "validation") for model in _BODY_MODELS], ref_template="#/components/schemas/{model}"
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in found.get("$defs", {}).items():
        schemas.setdefault(name, schema)


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the document with its problem responses."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            _add_body_models(document)
            app.openapi_schema = document_problems(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
