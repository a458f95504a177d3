"""Reading the codes that webhook filters, feeds and badges take: one function, :func:`read_code`.

It reads what exists today — ``registry.schemas.country_code`` (ISO 3166-1 alpha-2)
and ``standards.schemas.normalise_language`` (BCP 47) — so that pointing every such
parameter at another codes module later is a change of this one function.
"""

from __future__ import annotations

from typing import Literal

from service.core.errors import Unprocessable
from service.registry.schemas import country_code
from service.standards.schemas import normalise_language

CodeKind = Literal["country", "language"]


def read_code(kind: CodeKind, value: str, *, parameter: str) -> str:
    """``value`` as a ``kind`` code in canonical form (``de`` -> ``DE`` for a country,
    ``pt-br`` -> ``pt-BR`` for a language).

    A country must be an assigned ISO 3166-1 alpha-2 code; a language a well-formed
    and valid BCP 47 tag (``xx`` is well-formed but names no language). Raises
    :class:`Unprocessable` (422) naming ``parameter`` otherwise; the value is quoted
    cut to 40 characters.
    """
    shown = repr(value[:40])
    try:
        if kind == "country":
            return country_code(value)
        return normalise_language(value.strip())
    except (ValueError, Unprocessable):
        what = (
            "an ISO 3166-1 alpha-2 country code (e.g. DE)"
            if kind == "country"
            else "a valid BCP 47 language tag (e.g. de, pt-BR)"
        )
        message = f"`{parameter}`: {shown} is not {what}."
        raise Unprocessable(message, extra={"parameter": parameter}) from None
