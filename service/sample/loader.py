"""Loads the sample data through the service's own functions (DESIGN §8),
so its publishes and listings appear in the event feed like any others."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from service.core.config import Settings


def load_sample(*, engine: Engine, settings: Settings) -> bool:
    """Load the sample guidelines and schools into an empty database.

    Returns ``False`` (and changes nothing) when the database already holds a
    standards document.
    """
    from service.sample import schools, standards

    if not standards.database_is_empty(engine):
        return False
    # Schools stating 1.0 do so between the 1.0 and 2.0 publishes (see sample/schools.py).
    with schools.stating_before_major(engine=engine, settings=settings):
        standards.load(engine=engine, settings=settings)
    schools.load(engine=engine, settings=settings)
    return True
