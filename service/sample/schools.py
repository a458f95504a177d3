"""Sample schools (placeholder until the registry lands)."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from service.config import Settings


def load(*, engine: Engine, settings: Settings) -> None:
    """Load the sample schools."""
