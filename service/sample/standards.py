"""Sample guidelines (DESIGN §8), loaded through the standards service's own functions.

``standards_en.json`` holds the document and its versions 1.0 (published and
in force from 2017-11-27) and 2.0 (published and in force from 2021-07-01, a
major revision), so ``GET …/in-force?at=`` has a history to answer from;
``standards_de.json`` the German translation of 2.0. Every text was written
for this project. Loading drafts each version, replaces its content,
publishes it with its historical ``published_at`` and puts the translation,
in one transaction, so the event feed shows the publishes
(``standards.version.published`` x2, ``standards.translation.published``).
"""

from __future__ import annotations

import datetime as dt
import json
from importlib import resources
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select

from service.core.config import Settings
from service.core.db import transaction
from service.standards import service
from service.standards.models import StandardsDocument
from service.standards.schemas import DocumentCreate, DraftReplace, TranslationPut

ACTOR = "sample"


def read(name: str) -> Any:
    """A bundled sample file (``standards_en.json``, ``standards_de.json``) as JSON."""
    return json.loads(resources.files("service.sample").joinpath(name).read_text(encoding="utf-8"))


def _instant(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def database_is_empty(engine: Engine) -> bool:
    """True when no standards document exists yet."""
    with transaction(engine, readonly=True) as session:
        return session.exec(select(StandardsDocument.id)).first() is None


def load(*, engine: Engine, settings: Settings) -> None:
    """Load the sample guidelines (one transaction; raises on any inconsistency)."""
    data = read("standards_en.json")
    translation = read("standards_de.json")
    doc = data["document"]
    slug = doc["slug"]
    base = settings.public_base_url
    with transaction(engine) as session:
        for entry in data["versions"]:
            version = entry["version"]
            draft = service.create_draft(
                session=session,
                slug=slug,
                version=version,
                based_on=entry.get("based_on"),
                new_document=DocumentCreate(title=doc["title"], language=doc["language"]),
                actor=ACTOR,
                base_url=base,
            )
            body = DraftReplace.model_validate(
                {k: entry[k] for k in ("title", "summary", "sections", "regional_notes", "contributors")}
            )
            service.replace_draft(
                session=session,
                slug=slug,
                version=version,
                body=body,
                if_match=draft.json_etag(),
                actor=ACTOR,
                base_url=base,
            )
            service.publish(
                session=session,
                slug=slug,
                version=version,
                actor=ACTOR,
                effective_from=_instant(entry.get("effective_from")),
                published_at=_instant(entry["published_at"]),
                base_url=base,
            )
        service.put_translation(
            session=session,
            slug=slug,
            version=translation["version"],
            language=translation["language"],
            body=TranslationPut.model_validate({k: translation[k] for k in ("title", "summary", "sections")}),
            actor=ACTOR,
            base_url=base,
            published_at=_instant(translation.get("published_at")),
        )
