"""Sample guidelines (placeholder until the standards domain lands)."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from service.config import Settings


def database_is_empty(engine: Engine) -> bool:
    """True when no standards document exists yet."""
    return True


def load(*, engine: Engine, settings: Settings) -> None:
    """Load the sample guidelines."""
