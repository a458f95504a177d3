"""Loads the sample data through the service's own functions (DESIGN §8),
so its publishes and listings appear in the event feed like any others."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from service.config import Settings


def load_sample(*, engine: Engine, settings: Settings) -> bool:
    """Load the sample guidelines and schools into an empty database.

    Returns ``False`` (and changes nothing) when the database already holds a
    standards document.
    """
    from service.sample import schools, standards

    if not standards.database_is_empty(engine):
        return False
    standards.load(engine=engine, settings=settings)
    schools.load(engine=engine, settings=settings)
    return True
