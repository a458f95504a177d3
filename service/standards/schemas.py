"""Request and response shapes of the standards API, and the validators of its codes.

Write bodies forbid unknown fields (422, DESIGN §4). A draft is replaced with
its own GET representation: the read-only members of that representation
(``status``, ``content_hash``, timestamps, ``links``, ``translations``, …) are
accepted and ignored, anything else unknown is a 422.

Codes are read by ``service.core.codes`` (the same rules and messages as every
other layer): languages are BCP 47 (RFC 5646) tags in canonical form (``pt-br`` ->
``pt-BR``, ``iw`` -> ``he``; ``de_CH`` is refused: did you mean ``de-CH``?); regions
are ISO 3166-1 alpha-2 codes (upper case) or UN M49 numeric codes (three digits).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from service.core import codes
from service.web.http import UTCInstant

#: ``major.minor``, no leading zeros (``1.0``, ``2.10``).
VERSION_PATTERN = r"^(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})$"
#: Stable section and clause keys: ``A1.2``, ``TT-3.2``.
KEY_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,38}[A-Za-z0-9])?$"

VersionStr = Annotated[str, StringConstraints(pattern=VERSION_PATTERN)]
KeyStr = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20000)]
OptText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=20000)]
#: Why a clause changed in this version (Markdown, part of the content).
ChangeNote = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]


# --- codes -----------------------------------------------------------------------------


def normalise_language(tag: str, *, name: str = "lang") -> str:
    """The canonical form of a BCP 47 tag (``pt-br`` -> ``pt-BR``), read by ``service.core.codes``.

    Raises :class:`Unprocessable` (422, with ``parameter`` and a ``hint`` where one is
    likely) for anything else (``en_US``: did you mean ``en-US``?).
    """
    return codes.parameter(codes.language_tag, tag, name)


def normalise_region(code: str) -> str:
    """An ISO 3166-1 alpha-2 country (``de`` -> ``DE``) or a UN M49 code (``142``).

    Raises :class:`ValueError` (``codes.CodeError``) for anything else: a 422 in a body.
    """
    return codes.region_code(code)


# --- write bodies -----------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DocumentCreate(_Strict):
    """A new document, created together with its first draft."""

    title: Title
    language: str = Field(default="en", description="source language, BCP 47")

    @field_validator("language")
    @classmethod
    def _lang(cls, value: str) -> str:
        return codes.language_tag(value)


class DraftCreate(_Strict):
    """``POST /v1/standards/{slug}/versions``: ``{"version": "2.1", "based_on": "2.0"}``.

    ``based_on`` copies that version's content (not its translations).
    ``document`` creates the document when ``slug`` does not exist yet.
    """

    version: VersionStr
    based_on: VersionStr | None = None
    document: DocumentCreate | None = None


class ClauseIn(_Strict):
    """A clause as it appears in the version representation; ``order`` is read-only."""

    key: KeyStr
    order: int | None = Field(default=None, description="read-only: the position in the list counts")
    kind: Literal["requirement", "recommendation", "guidance"]
    applies_to: Literal["teacher", "trainer", "training_organisation"]
    text: LongText
    change_note: ChangeNote | None = Field(
        default=None, description="Markdown, at most 2,000 characters: why the clause changed in this version"
    )


class SectionIn(_Strict):
    """A section with its clauses; ``order`` is read-only (list position counts)."""

    key: KeyStr
    order: int | None = Field(default=None, description="read-only: the position in the list counts")
    title: Title
    intro: OptText | None = None
    clauses: list[ClauseIn] = Field(default_factory=list, max_length=500)


class RegionalNoteIn(_Strict):
    """Context for one region on a clause or section key of the same version."""

    region: str = Field(description="ISO 3166-1 alpha-2 (DE) or UN M49 (142)")
    target: KeyStr
    text: LongText

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        return normalise_region(value)


class ContributorIn(_Strict):
    """A credited working-party member."""

    name: Title
    affiliation: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] = ""
    region: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""


class DraftReplace(_Strict):
    """``PUT …/versions/{version}``: the draft's own GET representation, edited.

    Editable: ``title``, ``summary``, ``effective_from``, ``sections``,
    ``regional_notes``, ``contributors``. The other members are read-only
    and ignored.
    """

    title: Title
    summary: OptText = ""
    effective_from: UTCInstant | None = None
    sections: list[SectionIn] = Field(default_factory=list, max_length=200)
    regional_notes: list[RegionalNoteIn] = Field(default_factory=list, max_length=1000)
    contributors: list[ContributorIn] = Field(default_factory=list, max_length=500)
    # Read-only members of the representation: accepted so that what you GET you can PUT.
    document: Any = Field(default=None, description="read-only, ignored")
    version: Any = Field(default=None, description="read-only, ignored")
    status: Any = Field(default=None, description="read-only, ignored")
    language: Any = Field(default=None, description="read-only, ignored")
    source_language: Any = Field(default=None, description="read-only, ignored")
    based_on: Any = Field(default=None, description="read-only, ignored")
    content_hash: Any = Field(default=None, description="read-only, ignored")
    published_at: Any = Field(default=None, description="read-only, ignored")
    withdrawn_at: Any = Field(default=None, description="read-only, ignored")
    updated_at: Any = Field(default=None, description="read-only, ignored")
    translations: Any = Field(default=None, description="read-only, ignored")
    links: Any = Field(default=None, description="read-only, ignored")
    review: Any = Field(default=None, description="read-only, ignored")
    in_force: Any = Field(default=None, description="read-only, ignored")
    in_force_version: Any = Field(default=None, description="read-only, ignored")


class PublishRequest(_Strict):
    """Optional body of ``POST …/publish``; ``effective_from`` defaults to the publication time."""

    effective_from: UTCInstant | None = None
    summary: OptText | None = None


class TranslationClauseIn(_Strict):
    key: KeyStr
    text: LongText


class TranslationSectionIn(_Strict):
    key: KeyStr
    title: Title
    intro: OptText | None = None
    clauses: list[TranslationClauseIn] = Field(default_factory=list, max_length=500)


class TranslationPut(_Strict):
    """``PUT …/translations/{lang}``: every text of the version in that language.

    It must cover exactly the version's sections and clauses (same keys), and
    an intro or summary wherever the source has one.
    """

    title: Title
    summary: OptText | None = None
    sections: list[TranslationSectionIn] = Field(max_length=200)


# --- response shapes (documentation; handlers answer precomputed bytes) ------------------


class ClausePublic(BaseModel):
    key: str
    order: int
    kind: str
    applies_to: str
    text: str = Field(description="Markdown (CommonMark)")
    change_note: str | None = Field(default=None, description="Markdown: why it changed in this version")


class SectionPublic(BaseModel):
    key: str
    order: int
    title: str
    intro: str | None
    clauses: list[ClausePublic]


class RegionalNotePublic(BaseModel):
    region: str
    target: str
    text: str


class ContributorPublic(BaseModel):
    name: str
    affiliation: str
    region: str


class ReviewSummary(BaseModel):
    """A version's review at a glance (the full report is at `link`)."""

    state: Literal["open", "closed"]
    opens_at: dt.datetime
    closes_at: dt.datetime
    closed_at: dt.datetime | None
    summary: str
    comments: int = Field(description="comments that were not withdrawn")
    organisations: int = Field(description="organisations that commented")
    regions: list[str] = Field(description="their regions (ISO 3166-1 alpha-2 or UN M49), sorted")
    link: str = Field(description="the disposition report")


class VersionPublic(BaseModel):
    """One version in full, in the served ``language`` (see ``Content-Language``)."""

    document: str
    version: str
    status: Literal["draft", "published", "superseded", "withdrawn"]
    title: str
    summary: str
    language: str = Field(description="the language served (also in `Content-Language`)")
    source_language: str
    based_on: str | None
    published_at: dt.datetime | None
    effective_from: dt.datetime | None
    withdrawn_at: dt.datetime | None
    content_hash: str
    sections: list[SectionPublic]
    regional_notes: list[RegionalNotePublic]
    contributors: list[ContributorPublic]
    translations: list[str]
    links: dict[str, str | None]
    in_force: bool | None = Field(
        default=None, description="whether this version is the one in force now (not on drafts)"
    )
    in_force_version: str | None = Field(
        default=None, description="the document's version in force now (not on drafts)"
    )
    review: ReviewSummary | None = Field(
        default=None, description="the version's public review, when it had one (drafts under review too)"
    )


class VersionSummary(BaseModel):
    version: str
    status: str
    title: str
    published_at: dt.datetime | None
    effective_from: dt.datetime | None
    content_hash: str
    links: dict[str, str | None]


class VersionList(BaseModel):
    data: list[VersionSummary]
    next_cursor: str | None


class DocumentPublic(BaseModel):
    id: str
    slug: str
    title: str
    language: str
    current_version: str | None
    versions: list[str] = Field(description="published and superseded versions, ascending")
    links: dict[str, str | None]


class DocumentList(BaseModel):
    data: list[DocumentPublic]
    next_cursor: str | None


class ClauseView(BaseModel):
    """One clause of one version, with the regional notes attached to it."""

    document: str
    version: str
    status: str
    language: str
    key: str
    order: int
    section: dict[str, str]
    kind: str
    applies_to: str
    text: str
    change_note: str | None = Field(default=None, description="Markdown: why it changed in this version")
    regional_notes: list[RegionalNotePublic]
    links: dict[str, str | None]


class DiffPublic(BaseModel):
    """Clause-level differences between two versions (either direction)."""

    document: str
    from_: str = Field(alias="from")
    to: str
    added: list[dict[str, Any]]
    removed: list[dict[str, Any]]
    modified: list[dict[str, Any]]
    moved: list[dict[str, Any]]


class TranslationPublic(BaseModel):
    document: str
    version: str
    language: str
    status: Literal["draft", "published"]
    published_at: dt.datetime | None
    title: str
    summary: str | None
    sections: list[dict[str, Any]]
    links: dict[str, str | None]
