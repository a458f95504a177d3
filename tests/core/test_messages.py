"""The message catalogues (``service/core/messages.py``): complete for the code, compiled from
the ``.po`` files alone, picked by RFC 4647 lookup; and the codes module's one set of rules."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from service.core import codes, messages


def test_every_catalogue_translates_every_message_of_the_code() -> None:
    wanted = messages.extract()
    assert {"Effective from %(date)s", "Applies to: %(audience)s", "Regional notes", "Published"} <= wanted
    assert set(messages.catalogues()) >= {"de"}  # the sample's translation languages, and more
    for language in messages.catalogues():
        compiled = messages.compiled(language)
        # gettext() answers the msgid itself for a message the catalogue lacks (or marks fuzzy,
        # which the compiled catalogue leaves out): ask the .po whether it holds a translation.
        with (messages.LOCALE_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as source:
            catalogue = read_po(source, locale=language)
        for message in wanted:
            entry = catalogue.get(message)
            assert entry is not None and entry.string and not entry.fuzzy, (language, message)
            translated = compiled.gettext(message)
            assert translated == entry.string, (language, message)
            placeholders = re.findall(r"%\(\w+\)s", message)
            assert re.findall(r"%\(\w+\)s", translated) == placeholders, (language, message)
        assert messages.words(language).date is not None


def test_every_catalogue_translates_every_plural_of_the_code() -> None:
    plurals = messages.extract_plurals()
    assert ("%(count)s comment", "%(count)s comments") in plurals
    for language in messages.catalogues():
        compiled = messages.compiled(language)
        for singular, plural in plurals:
            forms = {compiled.ngettext(singular, plural, n) for n in (1, 2, 5)}
            assert len(forms) == 2 and not forms & {singular, plural}, (language, singular, forms)
            for form in forms:
                assert re.findall(r"%\(\w+\)s", form) == re.findall(r"%\(\w+\)s", singular), (language, form)
    german = messages.words("de")
    assert german.ngettext("%(count)s comment", "%(count)s comments", 1) % {"count": 1} == "1 Kommentar"
    assert german.ngettext("%(count)s comment", "%(count)s comments", 6) % {"count": 6} == "6 Kommentare"
    french = messages.words("fr")  # French takes the singular for 0 and 1
    assert french.ngettext("%(count)s comment", "%(count)s comments", 0) % {"count": 0} == "0 commentaire"


def test_extraction_sees_messages_inside_f_strings(tmp_path: Path) -> None:
    """A message used inside an f-string is extracted too (Babel's extractor misses those on 3.11)."""
    (tmp_path / "m.py").write_text(
        "def f(w, n, dynamic):\n"
        "    a = f\"{w.gettext('Inside an f-string')}:\"\n"
        "    b = w.ngettext('%(count)s thing', '%(count)s things', n)\n"
        "    c = N_('Marked')\n"
        "    d = w.gettext(dynamic)  # not a literal: the table that holds it marks it with N_\n"
        "    return a, b, c, d\n",
        encoding="utf-8",
    )
    assert messages.extract(tmp_path) == {"Inside an f-string", "Marked"}
    assert messages.extract_plurals(tmp_path) == {("%(count)s thing", "%(count)s things")}
    assert "Change note" in messages.extract()  # used inside an f-string in standards/render.py


def test_moments_and_language_names_follow_the_locale() -> None:
    moment = dt.datetime(2026, 7, 1, 14, 3, tzinfo=dt.UTC)
    assert messages.words("en").moment(moment) == "July 1, 2026 at 2:03\u202fPM UTC"
    assert messages.words("de").moment(moment) == "1. Juli 2026 um 14:03 UTC"
    assert messages.words("en").language_name("de") == "German (de)"
    assert messages.words("de").language_name("pt-BR") == "Portugiesisch (pt-BR)"
    assert messages.words("fr").language_name("qqq") == "qqq"  # no name in CLDR: the tag
    assert messages.languages() == ("en", "de", "es", "fr", "nl")


def test_words_are_picked_by_lookup_and_dates_follow_the_locale() -> None:
    assert messages.words("de-CH").language == "de"
    assert messages.words("pt-BR").language == "en"  # no catalogue: English
    day = dt.datetime(2021, 7, 1, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-2)))  # July 2 in UTC
    assert messages.words("de").date(day) == "2. Juli 2021"
    assert messages.words("en").date(day) == "July 2, 2021"
    assert messages.words("fr").gettext("Effective from %(date)s") == "En vigueur à partir du %(date)s"
    assert messages.words("xx").gettext("Regional notes") == "Regional notes"


@pytest.mark.parametrize(
    ("value", "expected", "hint"),
    [
        ("de-ch", "de-CH", None),
        ("PT-br", "pt-BR", None),
        ("iw", "he", None),
        ("de_CH", None, "de-CH"),
        ("en_US", None, "en-US"),
        ("German", None, "de"),
        ("Deutsch", None, "de"),
        ("x", None, None),
        ("", None, None),
        ("a" * 10_000, None, None),
    ],
)
def test_language_tags(value: str, expected: str | None, hint: str | None) -> None:
    if expected is not None:
        assert codes.language_tag(value) == expected
        return
    with pytest.raises(codes.CodeError) as caught:
        codes.language_tag(value)
    assert caught.value.hint == hint
    assert len(str(caught.value)) < 200
    if hint:
        assert str(caught.value).endswith(f"did you mean {hint}?")


@pytest.mark.parametrize(
    ("value", "expected", "hint"),
    [
        ("ch", "CH", None),
        (" de ", "DE", None),
        ("Germany", None, "DE"),
        ("DEU", None, "DE"),
        ("276", None, "DE"),
        ("Deutschland", None, "DE"),
        ("Allemagne", None, "DE"),
        ("Schweiz", None, "CH"),
        ("ZZ", None, None),
        ("x" * 10_000, None, None),
    ],
)
def test_country_codes(value: str, expected: str | None, hint: str | None) -> None:
    if expected is not None:
        assert codes.country_code(value) == expected
        return
    with pytest.raises(codes.CodeError) as caught:
        codes.country_code(value)
    assert caught.value.hint == hint
    assert len(str(caught.value)) < 200


def test_regions_take_countries_and_m49() -> None:
    assert [codes.region_code(v) for v in ("de", "142", "419", "276")] == ["DE", "142", "419", "276"]
    for value, hint in (("Asia", "142"), ("Europe", "150"), ("Germany", "DE"), ("999", None)):
        with pytest.raises(codes.CodeError) as caught:
            codes.region_code(value)
        assert caught.value.hint == hint
