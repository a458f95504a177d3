"""Imports every table module so ``SQLModel.metadata`` knows the whole schema
(Alembic's env and the "migrations match models" test use it)."""

from sqlmodel import SQLModel

from service.core import audit, changes  # noqa: F401
from service.events import models as events_models  # noqa: F401
from service.registry import models as registry_models  # noqa: F401
from service.security import models as auth_models  # noqa: F401
from service.standards import models as standards_models  # noqa: F401
from service.transparency import models as transparency_models  # noqa: F401
from service.web import idempotency  # noqa: F401
from service.webhooks import models as webhooks_models  # noqa: F401

metadata = SQLModel.metadata
