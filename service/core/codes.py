"""One way to read codes: BCP 47 language tags, ISO 3166-1 countries, UN M49 regions.

Every query parameter and body field that takes a code reads it here, so the same
spelling is accepted (or refused) with the same message everywhere: the standards'
``lang=`` and regional notes, the registry's ``language=``/``country=`` and school
fields, ``/v1/verify``, and later webhook filters and badges.

- **Languages** (RFC 5646, read with ``langcodes``): a well-formed, valid tag is
  returned in canonical form — case (``pt-br`` → ``pt-BR``), deprecated and
  grandfathered tags (``iw`` → ``he``, ``i-klingon`` → ``tlh``). Anything else is
  refused: ``de_CH`` (a POSIX locale, not a tag: subtags are separated by hyphens)
  gets the hint ``de-CH``, a language name (``German``, ``Deutsch``) the hint ``de``.
  Refusing rather than repairing ``de_CH`` keeps one spelling per language in data,
  caches and filters, and is what DESIGN §4 asks of a malformed tag (422).
- **Countries** (ISO 3166-1 alpha-2, read with ``pycountry``): case does not matter
  (``ch`` → ``CH``). An alpha-3 or numeric code, an English name (``Germany``) or a
  name in a major language (``Deutschland``, ``Allemagne``; Babel's CLDR names) is
  refused with the alpha-2 code as the hint: "did you mean DE?".
- **Regions** (regional notes): a country as above, or a UN M49 numeric code (``142``
  Asia, ``419`` Latin America and the Caribbean).

Errors are :class:`CodeError` (a ``ValueError``, so pydantic turns it into a 422 in a
body's ``errors`` list); :func:`parameter` reads a query parameter and raises the 422
problem with ``parameter`` and ``hint`` members. Values are quoted in messages cut
to 40 characters, so a hostile 10,000-character value is not echoed whole.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache

import langcodes
import pycountry

from service.core.errors import Unprocessable

#: Longest language tag accepted (RFC 5646 §4.4.1 asks implementations to handle 35).
MAX_TAG_LENGTH = 35
_TAG_SHAPE = re.compile(r"^[A-Za-z0-9]{1,8}(?:-[A-Za-z0-9]{1,8})*$")
#: Locales whose CLDR names of languages and countries are understood in hints.
HINT_LOCALES = (
    *("en", "de", "fr", "es", "it", "nl", "pt", "sv", "da", "nb", "fi"),
    *("pl", "cs", "tr", "el", "ru", "ja", "zh", "ko", "ar", "he"),
)

#: UN M49 regions that are not countries (world, continents, sub-regions).
M49_REGIONS = {
    "001": "World",
    "002": "Africa",
    "011": "Western Africa",
    "014": "Eastern Africa",
    "015": "Northern Africa",
    "017": "Middle Africa",
    "018": "Southern Africa",
    "202": "Sub-Saharan Africa",
    "019": "Americas",
    "003": "North America",
    "005": "South America",
    "013": "Central America",
    "021": "Northern America",
    "029": "Caribbean",
    "419": "Latin America and the Caribbean",
    "142": "Asia",
    "030": "Eastern Asia",
    "034": "Southern Asia",
    "035": "South-eastern Asia",
    "143": "Central Asia",
    "145": "Western Asia",
    "150": "Europe",
    "039": "Southern Europe",
    "151": "Eastern Europe",
    "154": "Northern Europe",
    "155": "Western Europe",
    "009": "Oceania",
    "053": "Australia and New Zealand",
    "054": "Melanesia",
    "057": "Micronesia",
    "061": "Polynesia",
}


class CodeError(ValueError):
    """A value that is not the code asked for; ``hint`` is the code probably meant (or ``None``)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message + (f"; did you mean {hint}?" if hint else ""))
        self.hint = hint


def shown(value: str) -> str:
    """``value`` quoted for a message, cut to 40 characters."""
    return repr(value if len(value) <= 40 else value[:40] + "…")


def _folded(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.strip().casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


# --- languages -----------------------------------------------------------------------------


def language_tag(value: str) -> str:
    """The canonical form of a well-formed, valid BCP 47 tag (``pt-br`` → ``pt-BR``).

    Raises :class:`CodeError` for anything else, with a hint where one is likely
    (``de_CH`` → ``de-CH``, ``German`` → ``de``).
    """
    if len(value) > 64:  # never a tag; not worth a slot in the memo either
        raise CodeError(f"{shown(value)} is not a BCP 47 language tag (e.g. de, de-CH, pt-BR)")
    return _language_tag(value)


@lru_cache(maxsize=4096)
def _language_tag(value: str) -> str:
    tag = value.strip()
    if tag and len(tag) <= MAX_TAG_LENGTH and _TAG_SHAPE.match(tag) and langcodes.tag_is_valid(tag):
        try:
            return str(langcodes.standardize_tag(tag))
        except (ValueError, langcodes.LanguageTagError):
            pass
    raise CodeError(
        f"{shown(value)} is not a BCP 47 language tag (e.g. de, de-CH, pt-BR)", hint=_language_hint(tag)
    )


def _language_hint(tag: str) -> str | None:
    if "_" in tag and len(tag) <= MAX_TAG_LENGTH:
        candidate = tag.replace("_", "-")
        if _TAG_SHAPE.match(candidate) and langcodes.tag_is_valid(candidate):
            return str(langcodes.standardize_tag(candidate))
    return _language_names().get(_folded(tag)) if len(tag) <= 60 else None


@lru_cache(maxsize=1)
def _language_names() -> dict[str, str]:
    """Folded language names (``german``, ``deutsch``, ``allemand``) → tag, from CLDR."""
    from babel import Locale

    names: dict[str, str] = {}
    for locale in HINT_LOCALES:
        for code, name in Locale.parse(locale).languages.items():
            if "_" not in code:
                names.setdefault(_folded(name), code)
    return names


def is_language_tag(value: str) -> bool:
    """Whether :func:`language_tag` accepts ``value``."""
    try:
        language_tag(value)
    except CodeError:
        return False
    return True


# --- countries and regions -----------------------------------------------------------------


def country_code(value: str) -> str:
    """An ISO 3166-1 alpha-2 code, upper-cased (``ch`` → ``CH``).

    Raises :class:`CodeError` for anything else, hinting the alpha-2 code of a
    country given by name, alpha-3 or numeric code (``Germany`` → ``DE``).
    """
    if len(value) > 80:
        raise CodeError(f"{shown(value)} is not an ISO 3166-1 alpha-2 country code (e.g. CH, DE, BR)")
    return _country_code(value)


@lru_cache(maxsize=1024)
def _country_code(value: str) -> str:
    code = value.strip().upper()
    if len(code) == 2 and code.isascii() and pycountry.countries.get(alpha_2=code) is not None:
        return code
    raise CodeError(
        f"{shown(value)} is not an ISO 3166-1 alpha-2 country code (e.g. CH, DE, BR)",
        hint=_country_hint(value),
    )


def _country_hint(value: str) -> str | None:
    text = value.strip()
    if not text or len(text) > 80:
        return None
    try:
        found = pycountry.countries.lookup(text)  # alpha-3, numeric, English and official names
    except LookupError:
        return _country_names().get(_folded(text))
    return str(found.alpha_2)


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    """Folded country names in :data:`HINT_LOCALES` (``deutschland``, ``suisse``) → alpha-2."""
    return {name: code for name, code in _territory_names().items() if len(code) == 2}


@lru_cache(maxsize=1)
def _territory_names() -> dict[str, str]:
    """Folded CLDR names of countries and M49 regions (``asien``, ``europe``) → their code."""
    from babel import Locale

    names: dict[str, str] = {}
    for locale in HINT_LOCALES:
        for code, name in Locale.parse(locale).territories.items():
            known = code in M49_REGIONS if len(code) == 3 else pycountry.countries.get(alpha_2=code)
            if known:
                names.setdefault(_folded(name), code)
    return names


def region_code(value: str) -> str:
    """A country (:func:`country_code`) or a UN M49 code (``142``); :class:`CodeError` otherwise."""
    text = value.strip()
    if re.fullmatch(r"[0-9]{3}", text):
        if text in M49_REGIONS or pycountry.countries.get(numeric=text) is not None:
            return text
        raise CodeError(f"{shown(value)} is not a UN M49 region or country code (e.g. 150, 142)")
    try:
        return country_code(text)
    except CodeError as exc:
        raise CodeError(
            f"{shown(value)} is not an ISO 3166-1 alpha-2 country or UN M49 region code (e.g. DE, 142)",
            hint=exc.hint or (_territory_names().get(_folded(text)) if len(text) <= 80 else None),
        ) from None


# --- query parameters ----------------------------------------------------------------------


def parameter(read: Callable[[str], str], value: str, name: str) -> str:
    """``read(value)`` for the query parameter ``name``; a 422 problem naming the parameter
    (``parameter``) and the probable meaning (``hint``) when it refuses."""
    try:
        return read(value)
    except CodeError as exc:
        extra: dict[str, str] = {"parameter": name}
        if exc.hint:
            extra["hint"] = exc.hint
        message = str(exc)
        ending = "" if message.endswith("?") else "."
        raise Unprocessable(f"`{name}`: {message}{ending}", extra=extra) from None
