"""The full-state sync document ``GET /v1/snapshot``: a read across the domains."""
