"""The registry of training schools that state alignment with the standards.

Importing the package registers its in-transaction listener (re-affirmation
after a major publish) and its periodic job (``registry.lapse``): every process
that writes events or runs jobs (the API, ``imi-api worker``, the CLI) imports it.
It also imports the transparency log, whose listener appends every event to the
log in the emitting transaction: through this package every such process has it.
"""

from service.registry import alignment as _alignment  # noqa: F401
from service.transparency import log as _log  # noqa: F401
