"""The core: settings, database sessions, errors (RFC 9457), ids, JSON, logs, metrics, audit.

Imports no other package of ``service``."""
