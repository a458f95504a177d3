"""Request and response shapes of the webhook API, and the payload schemas of every event type.

The ``*Data`` models document each event's ``data`` (the catalogue at
``GET /v1/webhooks/event-types`` and the OpenAPI ``webhooks`` section are
generated from them). They allow additional properties: receivers must
ignore fields they do not know, and new fields may appear.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints, model_validator


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- event payloads ---------------------------------------------------------------------


class Links(_Open):
    """Absolute URLs of the resources an event is about (which keys appear depends on the type)."""

    version: str | None = None
    diff: str | None = None
    school: str | None = None
    affiliation: str | None = None
    current: str | None = None
    review: str | None = None
    comments: str | None = None
    comment: str | None = None


class ChangeReason(_Open):
    """Why a clause changed: its ``change_note`` (Markdown) and the comments accepted on it."""

    change_note: str | None = None
    accepted_comments: list[str] = Field(default_factory=list)


class ChangeSummary(_Open):
    """Clause-level change summary: the clause keys (or items carrying a ``key``) per kind, and
    ``change_notes`` (present when any changed clause says why) by clause key."""

    added: list[Any] = Field(default_factory=list)
    removed: list[Any] = Field(default_factory=list)
    modified: list[Any] = Field(default_factory=list)
    moved: list[Any] = Field(default_factory=list)
    change_notes: dict[str, ChangeReason] | None = None


class ReviewTotals(_Open):
    """A published version's review: how many comments, from how many organisations and regions."""

    comments: int
    organisations: int
    regions: list[str]
    link: str = Field(description="the disposition report")


class VersionPublishedData(_Open):
    """``standards.version.published``: a version became current."""

    document: str = Field(description="the document slug, e.g. training-standards")
    version: str = Field(description="the new version, major.minor")
    title: str
    previous_version: str | None = Field(default=None, description="the version it supersedes")
    reaffirmation_required: bool = Field(description="true for a major version: schools must re-affirm")
    effective_from: dt.datetime | None = None
    summary: str | None = Field(
        default=None,
        description="the editor's summary of the version (given at publish, else the draft's); "
        "`changes` lists the clause keys",
    )
    changes: ChangeSummary = Field(default_factory=ChangeSummary)
    review: ReviewTotals | None = Field(default=None, description="present when the draft had a review")
    links: Links = Field(default_factory=Links)


class VersionWithdrawnData(_Open):
    """``standards.version.withdrawn``: a version was withdrawn; ``current_version`` is current now."""

    document: str
    version: str
    current_version: str | None = None
    links: Links = Field(default_factory=Links)


class TranslationPublishedData(_Open):
    """``standards.translation.published``: a translation of a published version was published."""

    document: str
    version: str
    language: str = Field(description="BCP 47 tag")
    links: Links = Field(default_factory=Links)


class ReviewOpenedData(_Open):
    """``standards.review.opened``: a draft is public and takes comments until ``closes_at``."""

    document: str
    version: str = Field(description="the draft under review")
    opens_at: dt.datetime
    closes_at: dt.datetime
    summary: str = ""
    links: Links = Field(default_factory=Links)


class ReviewClosedData(_Open):
    """``standards.review.closed``: the draft takes no more comments (closed early, or ran out)."""

    document: str
    version: str
    opens_at: dt.datetime
    closes_at: dt.datetime
    closed_at: dt.datetime
    closed_early: bool
    comments: int = Field(description="comments not withdrawn")
    links: Links = Field(default_factory=Links)


class CommentData(_Open):
    """Who commented where: an organisation, its region and kind (never a person's details)."""

    document: str
    version: str
    comment_id: str
    clause_key: str | None = None
    section_key: str | None = None
    organisation: str
    region: str = Field(description="ISO 3166-1 alpha-2 or UN M49")
    commenter_type: str = Field(description="association | training_school | individual | other")
    links: Links = Field(default_factory=Links)


class CommentCreatedData(CommentData):
    """``standards.comment.created``: a comment on a draft under review."""

    quote: str | None = None
    text: str
    proposed_text: str | None = Field(default=None, description="Markdown")
    content_hash: str = Field(description="the draft's content the comment was written against")


class CommentDisposedData(CommentData):
    """``standards.comment.disposed``: an editor decided on a comment (or changed the decision)."""

    outcome: str = Field(description="accepted | accepted_with_changes | declined | noted")
    previous_outcome: str | None = None
    response: str


class AlignmentData(_Open):
    """A school's alignment as its public record shows it."""

    status: str = Field(description="none | aligned | reaffirmation_due | lapsed | withdrawn | suspended")
    version: str | None = Field(default=None, description="the version the school states alignment with")
    stated_at: dt.datetime | None = None
    stated_by: str | None = None
    evidence_url: str | None = None
    reaffirmation_due_by: dt.datetime | None = None


class SchoolData(_Open):
    """``school.listed`` / ``school.updated`` / ``school.delisted``: the public school record, as
    ``GET /v1/schools/{id}`` shows it (never ``contact``)."""

    id: str = Field(description="the school's id, sch_…")
    name: str
    country: str = Field(description="ISO 3166-1 alpha-2")
    city: str | None = None
    website: str | None = None
    programmes: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    listing: str = Field(description="listed | delisted")
    alternate_names: list[dict[str, Any]] = Field(default_factory=list, description="{value, lang}")
    alignment: AlignmentData | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    links: Links = Field(default_factory=Links)


class AlignmentChangedData(_Open):
    """``school.alignment.changed``: a school's alignment status changed."""

    school_id: str
    name: str
    country: str
    previous_status: str | None = None
    status: str = Field(description="none | aligned | reaffirmation_due | lapsed | withdrawn | suspended")
    aligned_version: str | None = None
    reaffirmation_due_by: dt.datetime | None = None
    links: Links = Field(default_factory=Links)


class PingData(_Open):
    """``webhook.ping``: sent by ``POST …/test``; unsequenced, never in the feed."""

    endpoint_id: str
    message: str


#: Every type a webhook may carry, with its data model and a one-line description.
EVENT_CATALOGUE: dict[str, tuple[type[BaseModel], str]] = {
    "standards.version.published": (
        VersionPublishedData,
        "A new version of a standards document is current.",
    ),
    "standards.version.withdrawn": (VersionWithdrawnData, "A published version was withdrawn."),
    "standards.translation.published": (TranslationPublishedData, "A translation was published."),
    "standards.review.opened": (ReviewOpenedData, "A draft was put under public review."),
    "standards.review.closed": (ReviewClosedData, "A draft's review closed: it takes no more comments."),
    "standards.comment.created": (CommentCreatedData, "An organisation commented on a draft under review."),
    "standards.comment.disposed": (CommentDisposedData, "An editor disposed of a comment (or changed it)."),
    "school.listed": (SchoolData, "A school was added to the public registry."),
    "school.updated": (SchoolData, "A listed school's public profile changed."),
    "school.delisted": (SchoolData, "A school left the public registry."),
    "school.alignment.changed": (AlignmentChangedData, "A school's alignment status changed."),
    "webhook.ping": (PingData, "A test message (POST …/test); unsequenced."),
}


class EventEnvelope(BaseModel):
    """What every webhook body and feed item looks like: ``{"id", "type", "sequence", "timestamp", "data"}``.

    ``id`` is also the ``webhook-id`` header; ``sequence`` is ``null`` only for ``webhook.ping``.
    """

    id: str
    type: str
    sequence: int | None
    timestamp: dt.datetime
    data: dict[str, Any]
    log_index: int | None = Field(
        default=None, description="the event's leaf in the transparency log (sequence − 1); absent on pings"
    )


class EventTypeInfo(BaseModel):
    """One catalogue entry: the type, what it means, whether it is sequenced, and its ``data`` schema."""

    type: str
    description: str
    sequenced: bool
    schema_: dict[str, Any] = Field(alias="schema")

    model_config = ConfigDict(populate_by_name=True)


class EventTypeList(BaseModel):
    data: list[EventTypeInfo]


# --- endpoints ---------------------------------------------------------------------------


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
    nothing. Unknown codes or documents are 422; codes are stored canonical (``de`` -> ``DE``)."""

    model_config = ConfigDict(extra="forbid")

    countries: list[FilterValue] = Field(
        default_factory=list, max_length=250, description="ISO 3166-1 alpha-2 codes, e.g. DE"
    )
    documents: list[FilterValue] = Field(
        default_factory=list, max_length=50, description="standards document slugs, e.g. training-standards"
    )
    languages: list[FilterValue] = Field(
        default_factory=list, max_length=100, description="BCP 47 language tags, e.g. de, pt-BR"
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
