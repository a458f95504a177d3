"""Request and response shapes of the review of drafts: review periods, comments, dispositions.

Write bodies forbid unknown fields (422). Texts are trimmed; line breaks are
kept (``\\r\\n`` becomes ``\\n``); other control characters are a 422.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from service.standards.schemas import KeyStr, ReviewSummary
from service.web.http import UTCInstant


def _text(value: str) -> str:
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    if any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in "\n\t" for ch in value):
        raise ValueError("control characters other than line breaks and tabs are not allowed")
    return value


_Clean = AfterValidator(_text)
Quote = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500), _Clean]
CommentText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000), _Clean
]
ProposedText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=10_000), _Clean]
ReviewText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2_000), _Clean]
Response = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000), _Clean]

Outcome = Literal["accepted", "accepted_with_changes", "declined", "noted"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReviewOpen(_Strict):
    """``POST …/versions/{version}/review``: open the draft's review until ``closes_at``."""

    closes_at: UTCInstant = Field(description="RFC 3339; in the future, at most 365 days ahead")
    summary: ReviewText = Field(
        default="", description="what the review asks about (at most 2,000 characters)"
    )


class CommentCreate(_Strict):
    """``POST …/versions/{version}/comments``; without a key, a general comment."""

    clause_key: KeyStr | None = Field(default=None, description="a clause of the draft, e.g. `B3.1`")
    section_key: KeyStr | None = Field(default=None, description="a section of the draft, e.g. `B`")
    quote: Quote | None = Field(default=None, description="the passage commented on (at most 500 characters)")
    text: CommentText = Field(description="the comment, plain text (at most 10,000 characters)")
    proposed_text: ProposedText | None = Field(
        default=None, description="a proposed wording, Markdown (at most 10,000 characters)"
    )


class CommentEdit(_Strict):
    """``PATCH …/comments/{id}`` (its author, while the review is open and no disposition was made):
    the members sent replace the comment's; ``null`` clears ``quote`` or ``proposed_text``."""

    quote: Quote | None = None
    text: CommentText | None = None
    proposed_text: ProposedText | None = None


class DispositionIn(_Strict):
    """``POST …/comments/{id}/disposition`` (editor): the decision and the answer to the commenter."""

    outcome: Outcome
    response: Response = Field(description="the answer, plain text (at most 10,000 characters)")


# --- response shapes (documentation; handlers answer precomputed bytes) ------------------


class Disposition(BaseModel):
    outcome: Outcome
    response: str
    disposed_at: dt.datetime


class CommentPublic(BaseModel):
    """A comment as everyone sees it: who stands behind it is an organisation, never a person."""

    id: str = Field(description="`cmt_…`")
    document: str
    version: str
    clause_key: str | None
    section_key: str | None
    quote: str | None
    text: str
    proposed_text: str | None = Field(description="Markdown")
    organisation: str
    region: str = Field(description="ISO 3166-1 alpha-2 or UN M49")
    commenter_type: Literal["association", "training_school", "individual", "other"]
    created_at: dt.datetime
    updated_at: dt.datetime
    content_hash: str = Field(description="the draft's content the comment was written against")
    state: Literal["pending", "disposed", "withdrawn"]
    withdrawn_at: dt.datetime | None
    disposition: Disposition | None
    links: dict[str, str]


class CommentList(BaseModel):
    data: list[CommentPublic]
    next_cursor: str | None


class CommentGroup(BaseModel):
    """The comments on one anchor: the whole draft (``scope`` general), a section or a clause."""

    scope: Literal["general", "section", "clause"]
    key: str | None
    section: str | None = Field(description="the section of a clause")
    title: str | None = Field(description="a section's title")
    in_version: bool = Field(description="false when the key is no longer in the version")
    comments: list[CommentPublic]


class ReviewReport(BaseModel):
    """The public disposition report: every comment with its outcome and response, grouped."""

    document: str
    version: str
    version_status: str
    title: str
    language: str = Field(
        description="the language served (`Content-Language`): of `title`, the section titles and, in "
        "Markdown and HTML, the words around the comments; the source language unless a translation "
        "was negotiated (comments are in their own)"
    )
    review: ReviewSummary
    outcomes: dict[str, int] = Field(description="comments per outcome, and `pending` and `withdrawn`")
    groups: list[CommentGroup]
    links: dict[str, str]
