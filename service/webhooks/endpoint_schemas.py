"""Request and response shapes of the webhook endpoints API: endpoints, their filters and
signature schemes, deliveries with their attempts, and recovery."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints, model_validator

#: An event type as a subscription names it (the catalogue's names are far shorter).
EventTypeName = Annotated[str, StringConstraints(max_length=64)]
#: A code or slug in a filter (language tags are at most 35 characters, slugs 80).
FilterValue = Annotated[str, StringConstraints(min_length=1, max_length=80)]
#: How deliveries are signed: Standard Webhooks ``v1`` (HMAC-SHA256 with the endpoint's
#: ``whsec_`` secret) or ``v1a`` (Ed25519; receivers verify with the ``whpk_`` public key).
SignatureScheme = Literal["hmac-sha256", "ed25519"]


class EndpointFilter(BaseModel):
    """Which events of its types an endpoint gets: each list narrows the events that carry that
    attribute (school events by ``countries``, standards events by ``documents``, translation
    events by ``languages``); an event without the attribute passes, an empty list restricts
    nothing. A school that moves from one country to another reaches the endpoints of both.
    Unknown codes or documents are 422; codes are stored canonical (``de`` -> ``DE``)."""

    model_config = ConfigDict(extra="forbid")

    countries: list[FilterValue] = Field(
        default_factory=list,
        max_length=250,
        description="ISO 3166-1 alpha-2 codes, e.g. DE (a school moving to or from one of them is included)",
    )
    documents: list[FilterValue] = Field(
        default_factory=list, max_length=50, description="standards document slugs, e.g. training-standards"
    )
    languages: list[FilterValue] = Field(
        default_factory=list,
        max_length=100,
        description="BCP 47 language ranges, e.g. de (also de-CH), pt-BR",
    )


class EndpointCreate(BaseModel):
    """``POST /v1/webhooks/endpoints``. ``event_types`` empty or absent = every type;
    ``filter`` absent = every event of those types; ``signature_scheme`` absent = ``hmac-sha256``."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000)
    event_types: list[EventTypeName] = Field(default_factory=list, max_length=50)
    description: str = Field(default="", max_length=500)
    filter: EndpointFilter | None = None
    signature_scheme: SignatureScheme = "hmac-sha256"


class EndpointUpdate(BaseModel):
    """``PATCH``: any of ``url``, ``event_types``, ``description``, ``filter``, ``enabled``.

    ``{"enabled": true}`` re-enables a disabled endpoint and clears its failure state;
    ``{"filter": {}}`` removes its filter.
    """

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=2000)
    event_types: list[EventTypeName] | None = Field(default=None, max_length=50)
    description: str | None = Field(default=None, max_length=500)
    filter: EndpointFilter | None = None
    # Strict: "yes" or 1 is a mistake, not a true.
    enabled: StrictBool | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> EndpointUpdate:
        # A null used to be ignored silently; leaving a member out is how to keep it.
        nulls = [name for name in sorted(self.model_fields_set) if getattr(self, name) is None]
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null: leave a member out to keep it as it is")
        return self


class EndpointPublic(BaseModel):
    """An endpoint as its owner sees it (never the secret, except once in :class:`EndpointWithSecret`).

    ``public_key`` (``ed25519`` only) verifies its ``v1a`` signatures; during a rotation's
    overlap ``previous_public_key`` signs beside it until ``previous_secret_expires_at``."""

    id: str
    url: str
    description: str
    event_types: list[str]
    filter: EndpointFilter | None
    signature_scheme: SignatureScheme
    public_key: str | None
    previous_public_key: str | None
    enabled: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    failing_since: dt.datetime | None
    last_success_at: dt.datetime | None
    last_failure_at: dt.datetime | None
    disabled_at: dt.datetime | None
    disabled_reason: str | None
    previous_secret_expires_at: dt.datetime | None


class EndpointWithSecret(EndpointPublic):
    """The 201 of a create and the answer of ``rotate-secret``: an ``hmac-sha256`` endpoint's
    ``secret`` is shown only here; an ``ed25519`` endpoint has none to show (its private key
    never leaves the service) and its new ``public_key`` is given instead."""

    secret: str | None = Field(default=None, description="`whsec_…`, hmac-sha256 endpoints only")


class EndpointList(BaseModel):
    data: list[EndpointPublic]
    next_cursor: str | None


class AttemptPublic(BaseModel):
    """One attempt: ``status_code`` is ``null`` when no response came (see ``error``)."""

    number: int
    at: dt.datetime
    status_code: int | None
    duration_ms: int
    response_excerpt: str | None
    error: str | None
    next_attempt_at: dt.datetime | None


class DeliveryPublic(BaseModel):
    """One event (or ping) to one endpoint, with every attempt, oldest first."""

    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    sequence: int | None
    status: str
    attempt_count: int
    next_attempt_at: dt.datetime | None
    created_at: dt.datetime
    delivered_at: dt.datetime | None
    last_status_code: int | None
    last_error: str | None
    attempts: list[AttemptPublic]


class DeliveryList(BaseModel):
    data: list[DeliveryPublic]
    next_cursor: str | None


class RecoverResult(BaseModel):
    """``recover``: failed deliveries put back in the queue, and deliveries created for missed events."""

    requeued: int
    created: int
    since: dt.datetime
