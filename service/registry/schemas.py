"""Request and response shapes of the registry (DESIGN §3).

Write bodies forbid unknown fields (422). Validation messages never echo the
submitted value, so private contact details cannot come back in a 422.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from service.core import codes
from service.registry.models import PROGRAMMES

_PROGRAMMES_BY_FOLD = {p.casefold(): p for p in PROGRAMMES}
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,253}$")
_PHONE = re.compile(r"^\+?[0-9 ()./-]{3,40}$")
_VERSION = r"^[0-9]{1,4}\.[0-9]{1,4}$"


def _no_controls(value: str) -> str:
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise ValueError("control characters are not allowed")
    return value


def clean_text(value: str) -> str:
    """Trimmed text without control characters; empty text is an error."""
    value = _no_controls(value).strip()
    if not value:
        raise ValueError("must not be empty")
    return value


#: Codes are read by ``service.core.codes``: the same spelling rules and messages everywhere.
country_code = codes.country_code
language_tag = codes.language_tag


def programme_name(value: str) -> str:
    """A programme of the controlled vocabulary, in its canonical spelling."""
    found = _PROGRAMMES_BY_FOLD.get(value.strip().casefold())
    if found is None:
        raise ValueError("unknown programme; known: " + ", ".join(PROGRAMMES))
    return found


def http_url(value: str) -> str:
    """An absolute ``http``/``https`` URL with a host and no user info; ``ValueError`` otherwise."""
    value = _no_controls(value).strip()
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        raise ValueError("must be an absolute http(s) URL") from None
    if parts.scheme.lower() not in ("http", "https") or not host or " " in value:
        raise ValueError("must be an absolute http(s) URL")
    if parts.username is not None or parts.password is not None:
        # Public URLs: credentials in them would be published in profiles and events.
        raise ValueError("must not carry user info (user:password@)")
    return value


def _dedupe(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _email(value: str) -> str:
    value = _no_controls(value).strip()
    if not _EMAIL.match(value):
        raise ValueError("must be an e-mail address")
    return value


def _phone(value: str) -> str:
    value = _no_controls(value).strip()
    if not _PHONE.match(value):
        raise ValueError("must be a phone number (digits, spaces, + ( ) . / -)")
    return value


Text = Annotated[str, Field(min_length=1, max_length=300), AfterValidator(clean_text)]
CityText = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(clean_text)]
Country = Annotated[str, Field(max_length=100, examples=["CH"]), AfterValidator(country_code)]
LanguageTag = Annotated[str, Field(max_length=100, examples=["de"]), AfterValidator(language_tag)]
Programme = Annotated[str, Field(max_length=20, examples=["MBSR"]), AfterValidator(programme_name)]
HttpUrl = Annotated[str, Field(max_length=500, examples=["https://example.org"]), AfterValidator(http_url)]
EvidenceUrl = Annotated[str, Field(max_length=2000), AfterValidator(http_url)]
Programmes = Annotated[list[Programme], Field(max_length=20), AfterValidator(_dedupe)]
Languages = Annotated[list[LanguageTag], Field(max_length=20), AfterValidator(_dedupe)]


class AlternateName(BaseModel):
    """Another name of the school: a translation or transliteration (``lang`` like ``ja-Latn``)."""

    model_config = ConfigDict(extra="forbid")

    value: Text
    lang: LanguageTag | None = None


class Contact(BaseModel):
    """Private contact details: never in a public response, an event, a log or the snapshot."""

    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, Field(max_length=254), AfterValidator(_email)] | None = None
    phone: Annotated[str, Field(max_length=40), AfterValidator(_phone)] | None = None


class SchoolCreate(BaseModel):
    """``POST /v1/schools``: ``name`` and ``country`` required, the rest optional."""

    model_config = ConfigDict(extra="forbid")

    name: Text
    country: Country
    city: CityText | None = None
    website: HttpUrl | None = None
    programmes: Programmes = Field(default_factory=list)
    languages: Languages = Field(default_factory=list)
    alternate_names: Annotated[list[AlternateName], Field(max_length=20)] = Field(default_factory=list)
    contact: Contact | None = None


class SchoolUpdate(BaseModel):
    """``PATCH /v1/schools/{id}`` (JSON merge patch, RFC 7396): present fields replace,
    ``null`` removes (not allowed for ``name`` and ``country``), arrays are replaced
    whole, ``contact`` is merged member by member."""

    model_config = ConfigDict(extra="forbid")

    name: Text | None = None
    country: Country | None = None
    city: CityText | None = None
    website: HttpUrl | None = None
    programmes: Programmes | None = None
    languages: Languages | None = None
    alternate_names: Annotated[list[AlternateName], Field(max_length=20)] | None = None
    contact: Contact | None = None


class AlignmentStatement(BaseModel):
    """``POST /v1/schools/{id}/alignment``: state or renew alignment with a published version."""

    model_config = ConfigDict(extra="forbid")

    version: Annotated[str, Field(pattern=_VERSION, examples=["2.0"])]
    evidence_url: EvidenceUrl
    stated_by: Annotated[str, Field(min_length=1, max_length=300, examples=["Ana Lima, programme lead"])]


class AlignmentAction(BaseModel):
    """Optional body of ``…/alignment/withdraw`` and ``…/alignment/suspend``: a public reason."""

    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(max_length=500)] | None = None


# --- responses (documentation of the bytes the router sends) ------------------------


class AlignmentPublic(BaseModel):
    """A school's current alignment statement and status."""

    status: Literal["none", "aligned", "reaffirmation_due", "lapsed", "withdrawn", "suspended"]
    version: str | None
    stated_at: dt.datetime | None
    stated_by: str | None
    evidence_url: str | None
    reaffirmation_due_by: dt.datetime | None


class SchoolPublic(BaseModel):
    """A school as the public sees it (stewards and the school itself also get ``contact``)."""

    id: str
    name: str
    alternate_names: list[AlternateName]
    country: str
    city: str | None
    website: str | None
    programmes: list[str]
    languages: list[str]
    listing: Literal["listed", "delisted"]
    alignment: AlignmentPublic
    created_at: dt.datetime
    updated_at: dt.datetime
    links: dict[str, str]
    contact: Contact | None = None


class Suggestion(BaseModel):
    """A listed school whose name is close to a query that found nothing."""

    name: str
    school_id: str
    country: str
    score: float = Field(description="0–1, best first")
    links: dict[str, str]


class SchoolList(BaseModel):
    """A page of schools; follow ``next_cursor`` (or the ``Link`` header) for the next.
    ``suggestions`` (closest names) is empty unless ``data`` is."""

    data: list[SchoolPublic]
    next_cursor: str | None
    suggestions: list[Suggestion] = Field(default_factory=list)


class HistoryEntry(BaseModel):
    """One statement or status change; ``actor`` is a role: ``school``, ``steward`` or ``system``."""

    at: dt.datetime
    action: str
    actor: Literal["school", "steward", "system"]
    previous_status: str
    status: str
    version: str | None
    evidence_url: str | None
    stated_by: str | None
    reaffirmation_due_by: dt.datetime | None
    reason: str | None


class HistoryList(BaseModel):
    """The alignment history, oldest first."""

    data: list[HistoryEntry]
    next_cursor: str | None


class Affiliation(BaseModel):
    """Is the school affiliated now? With a signed credential (compact JWS, ES256)."""

    school_id: str
    affiliated: bool
    status: str
    aligned_version: str | None
    current_version: str | None
    reaffirmation_due_by: dt.datetime | None
    listing: str
    credential: str
    links: dict[str, str]


class VerifyCandidate(BaseModel):
    """A school that may be the one asked about; ``chosen`` when it is clearly the best."""

    school: SchoolPublic
    score: float
    chosen: bool
    reason: str


class VerifyResult(BaseModel):
    """Up to 10 candidates, best first."""

    data: list[VerifyCandidate]


class CredentialCheck(BaseModel):
    """``POST /v1/credentials/verify``."""

    model_config = ConfigDict(extra="forbid")

    credential: str


#: Every ``reason`` of ``POST /v1/credentials/verify``: ``valid``, the token checks of
#: ``KeyStore.verify`` in the order they run, then ``affiliation.check_credential``'s own.
CredentialReason = Literal[
    "valid",
    "too_large",
    "malformed",
    "alg_not_allowed",
    "unknown_kid",
    "bad_signature",
    "wrong_type",
    "expired",
    "not_yet_valid",
    "wrong_issuer",
    "not_a_credential",
    "malformed_status",
    "unknown_status",
    "status_invalid",
    "status_suspended",
]


class CredentialVerdict(BaseModel):
    """Whether a presented credential is genuine and in force; ``claims`` only when valid."""

    valid: bool
    reason: CredentialReason = Field(
        description=(
            "`valid`, or the first check that failed: `too_large` (over 8 KiB), `malformed` (not a "
            "compact JWS with a JSON header and payload), `alg_not_allowed` (not ES256), "
            "`unknown_kid` (not a key of our JWKS), `bad_signature`, `wrong_type` (a JWS of ours "
            "that is no credential, e.g. an access token), `expired`, `not_yet_valid`, "
            "`wrong_issuer`, `not_a_credential` (no school subject or `affiliated` claim), then "
            "the status list entry as it reads now: `malformed_status` (the `status` claim names "
            "none of our lists), `unknown_status` (an entry no school holds), `status_invalid` "
            "(withdrawn, lapsed or delisted), `status_suspended`"
        )
    )
    claims: dict[str, Any]
