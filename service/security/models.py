"""API clients of the OAuth 2.0 client-credentials grant (RFC 6749 §4.4)."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Column, Field, SQLModel

from service.core.db import UTCDateTime

#: Scopes a client may hold (DESIGN §1).
SCOPES = ("standards:write", "registry:write", "school:self", "webhooks:manage")


class ApiClient(SQLModel, table=True):
    """A registered client. ``secret_hash`` is an argon2 hash; the secret is never stored.

    ``scopes`` is space-separated; ``school_id`` binds a ``school:self`` client
    to one school. A revoked client's tokens stop working at once.
    """

    __tablename__ = "api_clients"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    secret_hash: str = Field(max_length=200)
    scopes: str = Field(max_length=500)
    school_id: str | None = Field(default=None, max_length=40, index=True)
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
