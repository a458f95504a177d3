"""``imi-api export`` / ``imi-api import``: a complete backup as JSON Lines.

Format ``imi-backup`` version 1, UTF-8, one JSON object per line:

1. a header ``{"format": "imi-backup", "version": 1, "schema_revision": "<alembic
   revision>", "created_at": "<RFC 3339>", "public": false, "tables": [...]}``;
2. one line per row, ``{"table": "<name>", "row": {"<column>": value, ...}}``,
   tables in foreign-key dependency order, rows in primary-key order;
3. a trailer ``{"trailer": {"rows": {"<table>": <count>, ...}}}`` — a file
   without it (or with other counts) was cut short and is refused.

Generic over ``service.models.metadata``: a table added later is exported
and imported without touching this module. Values are JSON as they are, except
timestamps (ISO 8601 with offset), dates and times (ISO 8601), binary (base64),
decimals (strings) and intervals (seconds). Counters live in tables
(``event_counter``) and travel with them; PostgreSQL sequences behind integer
keys are moved past the imported ids.

The file is written to a temporary file created with mode 0600 and renamed, so
it is never readable by others and never half-written under its final name.

``--public`` writes only what the API shows everyone: the tables in
:data:`~format.PUBLIC_TABLES` (a table added later stays out until it is listed),
without :data:`~format.PRIVATE_COLUMNS` or columns that look private (secrets,
hashes, tokens, e-mail, phone, contact; or ``Column(info={"private": True})``),
and without rows the public cannot see (:data:`~format.PUBLIC_ROWS`: drafts, delisted
schools) or rows that belong to them. A public export is for sharing, not for
restoring: import refuses it.

The format and what both directions share are ``format.py``; writing a backup is
``export.py``, restoring one ``restore.py``.
"""

from service.ops.backup.export import export_backup as export_backup
from service.ops.backup.export import export_to_file as export_to_file
from service.ops.backup.format import BackupError as BackupError
from service.ops.backup.format import ProgressSink as ProgressSink
from service.ops.backup.format import Summary as Summary
from service.ops.backup.format import schema_revision as schema_revision
from service.ops.backup.restore import import_backup as import_backup
from service.ops.backup.restore import import_from_file as import_from_file
