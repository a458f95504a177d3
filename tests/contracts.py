"""Checking event payloads against the published schemas (the catalogue of
``service/webhooks/schemas.py``), with an independent validator (``jsonschema``, draft 2020-12,
formats checked)."""

from __future__ import annotations

import functools
import json
from typing import Any

from jsonschema import Draft202012Validator

from service.core.jsonutil import dumps
from service.webhooks.schemas import EVENT_CATALOGUE


@functools.cache
def validator(event_type: str) -> Draft202012Validator:
    """A validator of ``event_type``'s ``data`` schema, as ``GET /v1/webhooks/event-types`` serves it."""
    model, _description = EVENT_CATALOGUE[event_type]
    schema = model.model_json_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def breaches(event_type: str, data: Any) -> list[str]:
    """Why ``data`` (as it goes on the wire) does not fit ``event_type``'s schema; ``[]`` when it does."""
    if event_type not in EVENT_CATALOGUE:
        return [f"{event_type}: not in the catalogue"]
    wire = json.loads(dumps(data))
    return [
        f"{event_type}: {'/'.join(map(str, error.absolute_path)) or '(data)'}: {error.message}"
        for error in validator(event_type).iter_errors(wire)
    ]
