"""Escaping text for XML and HTML documents we write by hand (Atom feeds, the badge SVG, the
verification page).

Every piece of text that came from a user (a school's name, a version's title) goes
through :func:`text` or :func:`attr`: markup characters become references (``<`` ->
``&lt;``, so ``<script>`` and ``]]>`` are plain text), and characters that XML 1.0
cannot carry at all (C0 controls but tab and newlines, lone surrogates, U+FFFE, U+FFFF)
are dropped, so the document stays well-formed whatever the data holds.
"""

from __future__ import annotations

import re

# XML 1.0 §2.2 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF].
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_ATTR = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"})


def clean(value: str) -> str:
    """``value`` without the characters XML 1.0 cannot represent."""
    return _NOT_XML.sub("", value)


def text(value: object) -> str:
    """``value`` as XML/HTML character data."""
    return clean(str(value)).translate(_TEXT)


def attr(value: object) -> str:
    """``value`` for a double-quoted attribute (quotes escaped too)."""
    return clean(str(value)).translate(_ATTR)
