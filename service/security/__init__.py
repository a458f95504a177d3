"""Signing keys and tokens (the only python-jose importer), the secret box, API clients."""
