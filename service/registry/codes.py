"""Reading the codes that webhook filters, feeds and badges take: one function, :func:`read_code`,
over the one codes module (``service/core/codes.py``: BCP 47 through langcodes, ISO 3166-1
through pycountry), with its messages and hints (``de_CH`` → "did you mean de-CH?")."""

from __future__ import annotations

from typing import Literal

from service.core import codes

CodeKind = Literal["country", "language"]


def read_code(kind: CodeKind, value: str, *, parameter: str) -> str:
    """``value`` as a ``kind`` code in canonical form (``de`` -> ``DE`` for a country,
    ``pt-br`` -> ``pt-BR`` for a language). Raises :class:`~service.core.errors.Unprocessable`
    (422) naming ``parameter``, with a ``hint`` where the code meant is likely."""
    read = codes.country_code if kind == "country" else codes.language_tag
    return codes.parameter(read, value, parameter)
