"""``python -m service.cli``: the ``imi-api`` command."""

from service.cli import app

app()
