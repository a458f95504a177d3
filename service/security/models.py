"""API clients of the OAuth 2.0 client-credentials grant (RFC 6749 §4.4)."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Column, Field, SQLModel

from service.core.db import UTCDateTime

#: Scopes a client may hold (DESIGN §1).
SCOPES = ("standards:write", "registry:write", "school:self", "webhooks:manage", "review:comment")
#: Who a ``review:comment`` client stands for (public with its comments).
COMMENTER_TYPES = ("association", "training_school", "individual", "other")


class ApiClient(SQLModel, table=True):
    """A registered client. ``secret_hash`` is an argon2 hash; the secret is never stored.

    ``scopes`` is space-separated; ``school_id`` binds a ``school:self`` client
    to one school. A revoked client's tokens stop working at once.
    ``organisation``, ``region`` (ISO 3166-1 alpha-2 or UN M49) and
    ``commenter_type`` describe whom a ``review:comment`` client stands for; they
    are shown with its comments (the client's ``name`` and id never are).
    """

    __tablename__ = "api_clients"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    secret_hash: str = Field(max_length=200)
    scopes: str = Field(max_length=500)
    school_id: str | None = Field(default=None, max_length=40, index=True)
    organisation: str | None = Field(default=None, max_length=200)
    region: str | None = Field(default=None, max_length=3)
    commenter_type: str | None = Field(default=None, max_length=20)
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
