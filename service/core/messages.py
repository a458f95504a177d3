"""The words of ours around published content, in the reader's language.

Markdown and HTML representations (and later feeds, badges and review reports) wrap
content that editors wrote — titles, clause texts, translations — in words that *we*
write: status names, labels such as "Effective from", "Applies to", "Regional notes",
dates. Those come from one gettext message catalogue (Babel), so that a German page
carries no English word of ours::

    words = messages.words("de-CH")            # the catalogue that fits: de
    words.gettext("Effective from %(date)s") % {"date": words.date(moment)}
    # 'Gültig ab 1. Juli 2021'
    words.ngettext("%(count)s comment", "%(count)s comments", 5) % {"count": 5}
    # '5 Kommentare'

- Catalogues are the ``.po`` files in ``service/locale/<lang>/LC_MESSAGES/messages.po``
  (English is the source: its msgids). They are compiled in memory on first use (Babel
  reads the ``.po`` and writes the ``.mo`` into a buffer), so a fresh clone and an
  installed wheel work without a build step and no binary file can drift from its
  source; ``pyproject.toml`` ships the ``.po`` files as package data.
- :func:`words` picks the catalogue by RFC 4647 lookup of the served language
  (``de-CH`` → ``de``); without one it is English. Dates are formatted for that
  locale by Babel (CLDR ``long`` dates: ``1. Juli 2021``, ``July 1, 2021``), in UTC;
  :meth:`Words.moment` adds the time (``1. Juli 2021 um 14:03 UTC``), and
  :meth:`Words.language_name` names a language in this one (``Deutsch (de)``).
- Plurals are ``ngettext`` entries (``msgid_plural``, ``msgstr[n]``); each ``.po`` names
  its ``Plural-Forms``.
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

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        """The form of ``singular``/``plural`` (English msgids) for ``count`` in this language."""
        return self.translations.ngettext(singular, plural, count)

    def date(self, value: dt.datetime) -> str:
        """The UTC calendar date of ``value`` as this locale writes it (CLDR ``long``)."""
        from babel.dates import format_date

        return str(format_date(value.astimezone(dt.UTC).date(), format="long", locale=self.language))

    def moment(self, value: dt.datetime) -> str:
        """The UTC date and time (minutes) of ``value``: ``July 1, 2021 at 2:03 PM UTC``,
        ``1. Juli 2021 um 14:03 UTC``."""
        from babel.dates import format_time

        time = format_time(value.astimezone(dt.UTC), format="short", tzinfo=dt.UTC, locale=self.language)
        return self.gettext(_MOMENT) % {"date": self.date(value), "time": time}

    def language_name(self, tag: str) -> str:
        """The language of the BCP 47 ``tag`` named in this language, with the tag:
        ``German (de)``, ``Deutsch (de)``, ``Portugiesisch (pt-BR)``; the bare tag when
        CLDR has no name for it."""
        return _language_name(self.language, tag)


@lru_cache(maxsize=512)
def _language_name(language: str, tag: str) -> str:
    from babel import Locale, UnknownLocaleError

    primary = tag.split("-", 1)[0].lower()
    try:
        name = Locale.parse(language).languages.get(primary)
    except (ValueError, UnknownLocaleError):
        name = None
    return f"{name} ({tag})" if name else tag


def N_(message: str) -> str:  # noqa: N802 - the gettext convention extractors know
    """Mark ``message`` as a msgid where it is not translated yet (a table of names); returns it."""
    return message


#: The date-time pattern of :meth:`Words.moment`.
_MOMENT = N_("%(date)s at %(time)s UTC")


def extract(root: Path | None = None) -> set[str]:
    """Every msgid the code under ``root`` (default: the ``service`` package) passes to
    ``gettext(...)`` or ``N_(...)`` as a literal: what each catalogue must translate
    (plurals: :func:`extract_plurals`)."""
    return {message for message in _extracted(root) if isinstance(message, str)}


def extract_plurals(root: Path | None = None) -> set[tuple[str, str]]:
    """Every ``(singular, plural)`` msgid pair the code passes to ``ngettext(...)`` as literals."""
    return {message for message in _extracted(root) if isinstance(message, tuple)}


#: The calls whose literal arguments are msgids, and how many of them (``ngettext``: two).
_KEYWORDS = {"gettext": 1, "N_": 1, "ngettext": 2}


def _extracted(root: Path | None) -> list[str | tuple[str, str]]:
    """The literal msgids of every ``gettext``/``N_``/``ngettext`` call (a name or an attribute,
    ``w.gettext``) in the ``.py`` files under ``root``, f-strings included: read from the syntax
    tree, because Babel's token-based extractor does not look into f-strings on Python 3.11
    (``f"{w.gettext('Change note')}:"`` would go unchecked)."""
    import ast

    found: list[str | tuple[str, str]] = []
    for path in sorted((root or LOCALE_DIR.parent).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            count = _KEYWORDS.get(name, 0)
            literals = [a.value for a in node.args[:count] if isinstance(a, ast.Constant)]
            texts = [v for v in literals if isinstance(v, str)]
            if count and len(texts) == count:
                found.append(texts[0] if count == 1 else (texts[0], texts[1]))
    return found


def catalogues() -> tuple[str, ...]:
    """The languages that have a catalogue (``("de", "es", "fr", "nl")``), sorted."""
    return tuple(sorted(p.parent.parent.name for p in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po")))


@lru_cache(maxsize=1)
def languages() -> tuple[str, ...]:
    """The languages our words come in: English (the msgids) and every catalogue's, what a read
    whose only words are ours (a badge, a feed) negotiates among."""
    return (SOURCE, *catalogues())


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
