"""Text folding for registry search and matching: one place decides when two
spellings of a name are "the same word".

``fold("ZÜRICH") == fold("Zu\\u0308rich") == fold("ｚｕｒｉｃｈ") == "zurich"``.

Steps (Unicode TR #15 normalisation, TR #21 case folding):

1. NFKC: compatibility forms and full-width letters become their plain forms
   (``ｚ`` → ``z``, ``ﬁ`` → ``fi``, ``①`` → ``1``).
2. The Turkish dotted capital ``İ`` and dotless ``ı`` become ``i`` (default
   case folding would turn ``İ`` into ``i`` + combining dot and leave ``ı``).
3. Case folding (``ß`` → ``ss``, ``Σ``/``ς`` → ``σ``).
4. NFD, then the diacritics are dropped: Latin/Greek/Cyrillic combining marks
   (U+0300–036F and the extension blocks), Hebrew points and Arabic harakat
   (optional vowel marks). Other marks stay — the Japanese voicing marks
   (``が`` ≠ ``か``) and Indic vowel signs change the word.
5. A few letters without a decomposition get their usual Latin stand-ins
   (``ø`` → ``o``, ``ł`` → ``l``, ``æ`` → ``ae``, ``đ`` → ``d``, ``þ`` → ``th``).
6. NFC again, so what remains is compared in composed form.

Words are maximal runs of letters, digits and the marks that belong to them;
everything else (spaces, punctuation, symbols, emoji, control characters)
separates words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

#: Longest indexed word (characters); longer words are cut, so a query word of
#: this length or longer still finds them by prefix.
MAX_TERM_LENGTH = 64
#: Most words taken from one query (the rest are ignored).
MAX_QUERY_WORDS = 12

_PRE_FOLD = str.maketrans({"İ": "i", "ı": "i"})
_LETTERS = str.maketrans(
    {
        "ø": "o",
        "ł": "l",
        "đ": "d",
        "ð": "d",
        "ħ": "h",
        "ŧ": "t",
        "ŀ": "l",
        "ı": "i",
        "æ": "ae",
        "œ": "oe",
        "þ": "th",
        "ĸ": "k",
    }
)


def _is_diacritic(ch: str) -> bool:
    cp = ord(ch)
    return (
        0x0300 <= cp <= 0x036F  # combining diacritical marks
        or 0x1AB0 <= cp <= 0x1AFF  # … extended
        or 0x1DC0 <= cp <= 0x1DFF  # … supplement
        or 0x20D0 <= cp <= 0x20FF  # … for symbols
        or 0xFE20 <= cp <= 0xFE2F  # combining half marks
        or 0x0591 <= cp <= 0x05C7  # Hebrew cantillation and vowel points
        or 0x0610 <= cp <= 0x061A  # Arabic signs
        or 0x064B <= cp <= 0x065F  # Arabic harakat
        or cp == 0x0670  # Arabic superscript alef
    )


class _Separators(dict[int, int]):
    """``str.translate`` table that turns every character outside a word (not a letter,
    digit or mark: Unicode categories L, N, M) into a space; each code point's category is
    looked up once (C-speed translate instead of a Python loop per character)."""

    def __missing__(self, cp: int) -> int:
        value = cp if unicodedata.category(chr(cp))[0] in "LNM" else 0x20
        if len(self) < _MAX_REMEMBERED:  # a hostile text cannot grow the table without bound
            self[cp] = value
        return value


#: Most code points whose class :data:`_SEPARATORS` remembers.
_MAX_REMEMBERED = 1 << 16
_SEPARATORS = _Separators()
#: The diacritics of :func:`_is_diacritic`, as one character class.
_DIACRITICS = re.compile(
    "[" + "".join(re.escape(chr(cp)) for cp in range(0x0300, 0x10000) if _is_diacritic(chr(cp))) + "]"
)
#: Words of an ASCII folded text (folded ASCII has no capitals).
_ASCII_WORD = re.compile("[0-9a-z]+")


def fold(text: str) -> str:
    """``text`` folded for comparison (see the module docstring); never raises."""
    if text.isascii():  # every step below is the identity on ASCII, but casefolding
        return text.lower()
    value = unicodedata.normalize("NFKC", text).translate(_PRE_FOLD).casefold()
    value = _DIACRITICS.sub("", unicodedata.normalize("NFD", value))
    return unicodedata.normalize("NFC", value.translate(_LETTERS))


def words(text: str) -> list[str]:
    """The folded words of ``text`` in order (duplicates kept), each cut to ``MAX_TERM_LENGTH``."""
    folded = fold(text)
    if folded.isascii():
        found = _ASCII_WORD.findall(folded)
    else:
        # No letter, digit or mark is white space to str.split, so splitting after the
        # separators became spaces yields exactly the maximal runs of word characters.
        found = folded.translate(_SEPARATORS).split()
    return [word[:MAX_TERM_LENGTH] for word in found]


def sort_key(text: str) -> str:
    """A stable ordering key for a name: its folded words joined by single spaces."""
    return " ".join(words(text))[:300]


def _unspaced(ch: str) -> bool:
    """Scripts written without spaces between words (Han, kana, Hangul syllables, Thai)."""
    cp = ord(ch)
    return (
        0x3040 <= cp <= 0x30FF
        or 0x3400 <= cp <= 0x4DBF
        or 0x4E00 <= cp <= 0x9FFF
        or 0xF900 <= cp <= 0xFAFF
        or 0xAC00 <= cp <= 0xD7AF
        or 0x0E00 <= cp <= 0x0E7F
    )


def terms(texts: Iterable[str | None]) -> set[str]:
    """The distinct folded words of every text (name, alternate names, city) for the index.

    A word in a script written without spaces (``東京マインドフルネス``) also
    contributes its suffixes, so a query for an inner word (``マインドフルネス``)
    finds it by prefix.
    """
    found: set[str] = set()
    for text in texts:
        if not text:
            continue
        for word in words(text):
            found.add(word)
            if any(_unspaced(ch) for ch in word):
                found.update(word[i:] for i in range(1, min(len(word), 32)) if _unspaced(word[i]))
    return found


def query_words(query: str) -> list[str]:
    """Distinct folded words of a search query, in order, at most ``MAX_QUERY_WORDS``.

    A word that is a prefix of another query word adds nothing (the longer
    word implies it), so it is dropped.
    """
    distinct = list(dict.fromkeys(words(query)))
    kept = [w for w in distinct if not any(o != w and o.startswith(w) for o in distinct)]
    return kept[:MAX_QUERY_WORDS]
