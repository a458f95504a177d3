"""The words of ours around published content, in the reader's language.

Markdown and HTML representations (and later feeds, badges and review reports) wrap
content that editors wrote — titles, clause texts, translations — in words that *we*
write: status names, labels such as "Effective from", "Applies to", "Regional notes",
dates. Those come from one gettext message catalogue (Babel), so that a German page
carries no English word of ours::

    words = messages.words("de-CH")            # the catalogue that fits: de
    words.gettext("Effective from %(date)s") % {"date": words.date(moment)}
    # 'Gültig ab 1. Juli 2021'

- Catalogues are the ``.po`` files in ``service/locale/<lang>/LC_MESSAGES/messages.po``
  (English is the source: its msgids). They are compiled in memory on first use (Babel
  reads the ``.po`` and writes the ``.mo`` into a buffer), so a fresh clone and an
  installed wheel work without a build step and no binary file can drift from its
  source; ``pyproject.toml`` ships the ``.po`` files as package data.
- :func:`words` picks the catalogue by RFC 4647 lookup of the served language
  (``de-CH`` → ``de``); without one it is English. Dates are formatted for that
  locale by Babel (CLDR ``long`` dates: ``1. Juli 2021``, ``July 1, 2021``), in UTC.
- Adding a language: ``pybabel init -i messages.pot -d service/locale -l nl`` (or copy a
  ``.po``), translate every message; ``tests/core/test_messages.py`` fails while any
  message of the code is untranslated in any catalogue.
"""

from __future__ import annotations

import datetime as dt
import gettext
import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

#: Where the catalogues live: ``<lang>/LC_MESSAGES/messages.po``.
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "messages"
#: The language of the msgids.
SOURCE = "en"


@dataclass(frozen=True)
class Words:
    """One language's words: ``gettext(message)`` and locale-formatted dates.

    ``language`` is the catalogue's language (``en`` when no catalogue fits); put it
    in ``lang`` attributes of the elements that carry these words.
    """

    language: str
    translations: gettext.NullTranslations

    def gettext(self, message: str) -> str:
        """``message`` (an English msgid) in this language."""
        return self.translations.gettext(message)

    def date(self, value: dt.datetime) -> str:
        """The UTC calendar date of ``value`` as this locale writes it (CLDR ``long``)."""
        from babel.dates import format_date

        return str(format_date(value.astimezone(dt.UTC).date(), format="long", locale=self.language))


def N_(message: str) -> str:  # noqa: N802 - the gettext convention extractors know
    """Mark ``message`` as a msgid where it is not translated yet (a table of names); returns it."""
    return message


def extract(root: Path | None = None) -> set[str]:
    """Every msgid the code under ``root`` (default: the ``service`` package) passes to
    ``gettext(...)`` or ``N_(...)`` as a literal: what each catalogue must translate."""
    from babel.messages.extract import extract_from_dir

    folder = root or LOCALE_DIR.parent
    keywords: dict[str, None] = {"gettext": None, "N_": None}
    found = extract_from_dir(str(folder), method_map=[("**.py", "python")], keywords=keywords)
    return {message for _file, _line, message, _comments, _context in found if isinstance(message, str)}


def catalogues() -> tuple[str, ...]:
    """The languages that have a catalogue (``("de", "es", "fr", "nl")``), sorted."""
    return tuple(sorted(p.parent.parent.name for p in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po")))


@lru_cache(maxsize=64)
def words(language: str) -> Words:
    """The words for a page served in ``language`` (a BCP 47 tag), by RFC 4647 lookup among
    :func:`catalogues` (``de-CH`` → ``de``), else English."""
    available = {tag.lower(): tag for tag in catalogues()}
    parts = language.lower().split("-") if language else []
    while parts:
        found = available.get("-".join(parts))
        if found is not None:
            return Words(language=found, translations=compiled(found))
        parts.pop()
        if parts and len(parts[-1]) == 1:  # never end on a singleton (RFC 4647 §3.4)
            parts.pop()
    return Words(language=SOURCE, translations=gettext.NullTranslations())


@lru_cache(maxsize=16)
def compiled(language: str) -> gettext.GNUTranslations:
    """The catalogue of ``language`` compiled from its ``.po`` (in memory, once per process)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as source:
        catalog = read_po(source, locale=language.replace("-", "_"))
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)
