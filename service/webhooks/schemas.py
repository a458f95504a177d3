"""The payload schemas of every event type, the catalogue and the envelope: the contract a
receiver reads. The request and response shapes of the endpoints API are ``endpoint_schemas.py``.

The ``*Data`` models document each event's ``data`` (the catalogue at
``GET /v1/webhooks/event-types`` and the OpenAPI ``webhooks`` section are
generated from them). They allow additional properties: receivers must
ignore fields they do not know, and new fields may appear.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
    "school.updated": (
        SchoolData,
        "A listed school's public profile changed. A move to another country reaches the "
        "endpoints filtered on either country: `country` is the new one.",
    ),
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
