"""The Markdown form of a draft: what ``GET`` with ``Accept: text/markdown`` answers for a draft,
and what ``PUT`` with ``Content-Type: text/markdown`` reads back.

One form, round-trip exact (``parse(render(content))`` is ``content``), parsed with
markdown-it-py (CommonMark plus GFM tables)::

    # Title of the version

    The summary (any text, up to the first section).

    ## Title of the section {#A1}

    The section's intro.

    ### {#A1.1 .requirement applies_to=teacher}

    The clause text, in Markdown.

    #### Change note {.change-note}

    Why the clause changed in this version, in Markdown.

    ## Regional notes {.regional-notes}

    ### {.regional-note region=DE target=A1.1}

    The note's text.

    ## Contributors {.contributors}

    | Name | Affiliation | Region |
    | --- | --- | --- |
    | Ada Example | Example Institute | Germany |

Structure is carried by headings whose line ends with an attribute block
``{…}``: ``#key``, ``.class`` and ``name=value`` items separated by spaces. A
section is a level-2 heading ``{#key}`` after its title; a clause a level-3
heading with its key, its kind as a class and ``applies_to``; a change note a
level-4 ``.change-note`` heading inside a clause; regional notes and
contributors come last, in that order; the contributors are one table with the
header ``| Name | Affiliation | Region |`` and three cells in every row. The
words before the braces of the ``.change-note``, ``.regional-notes`` and
``.contributors`` headings are labels.
Everything between two such headings is the text of the element above, exactly
as written (headings without braces included). Titles and table cells are plain
text: Markdown punctuation in them is written with a backslash (``\\*``), line
breaks and other control characters as character references (``&#10;``). A
text the form cannot hold as written (it would read as structure, or holds a
carriage return) is written as a JSON string in a fenced block whose info string
is ``imi-json``. Regional notes keep their order.

:func:`parse` raises :class:`MarkdownFormError` (a 422) naming the line of the
first problem. The draft's ``effective_from`` and translations are not part of
the form: a ``PUT`` keeps them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.common.utils import mdTrim
from markdown_it.rules_block.table import escapedSplit
from markdown_it.token import Token

from service.core.errors import Unprocessable
from service.standards.models import APPLIES_TO, CLAUSE_KINDS
from service.standards.schemas import KEY_PATTERN

#: Block and inline rules: CommonMark without raw HTML, plus GFM tables (the contributors).
_MD = MarkdownIt("commonmark", {"html": False}).enable("table")
#: The info string of a fenced block holding a text as a JSON string.
JSON_FENCE = "imi-json"
_KEY = re.compile(KEY_PATTERN)
_LABELLED = {"change-note", "regional-notes", "contributors"}
_CONTRIBUTOR_COLUMNS = ("Name", "Affiliation", "Region")


class MarkdownFormError(Unprocessable):
    """A Markdown body that does not fit the form: a 422 naming the (1-based) ``line``."""

    def __init__(self, line: int, message: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(
            f"line {line}: {message}",
            extra={"line": line, "errors": errors or [{"line": line, "msg": message}]},
        )
        self.line = line


# --- writing -----------------------------------------------------------------------------------


#: Characters a title or table cell cannot hold as they are, written as character references
#: (CommonMark decodes these; it turns references to other control characters into U+FFFD,
#: while those stay as they are when written raw).
_REFERENCED = frozenset("\t\n\r\x0c")


def inline(value: str) -> str:
    """Plain text as Markdown inline content that reads back as exactly ``value``."""
    out = []
    for ch in value:
        if ch.isascii() and not ch.isalnum() and ch.isprintable() and ch != " ":
            out.append("\\" + ch)
        elif ch in _REFERENCED:
            out.append(f"&#{ord(ch)};")
        else:
            out.append(ch)
    return "".join(out)


def _fenced(text: str) -> str:
    return f"```{JSON_FENCE}\n{json.dumps(text, ensure_ascii=False)}\n```"


def region(text: str) -> str:
    """A text as written when the form reads it back unchanged, else as a JSON-string fence."""
    probe = (
        "# T\n\n## S {#S}\n\n### {#C .guidance applies_to=teacher}\n\n"
        f"{text}\n\n### {{#D .guidance applies_to=teacher}}\n\nx\n"
    )
    try:
        back = _read(probe).sections[0]["clauses"][0]["text"]
    except (MarkdownFormError, IndexError, KeyError):
        back = None
    return text if back == text else _fenced(text)


def render(rep: dict[str, Any]) -> str:
    """The Markdown form of a version representation (``views.build_view``)."""
    out = [f"# {inline(rep['title'])}", ""]
    if rep.get("summary"):
        out += [region(rep["summary"]), ""]
    for section in rep["sections"]:
        out += [f"## {inline(section['title'])} {{#{section['key']}}}", ""]
        if section.get("intro"):
            out += [region(section["intro"]), ""]
        for clause in section["clauses"]:
            out += [f"### {{#{clause['key']} .{clause['kind']} applies_to={clause['applies_to']}}}", ""]
            out += [region(clause["text"]), ""]
            if clause.get("change_note"):
                out += ["#### Change note {.change-note}", "", region(clause["change_note"]), ""]
    if rep.get("regional_notes"):
        out += ["## Regional notes {.regional-notes}", ""]
        for note in rep["regional_notes"]:
            out += [f"### {{.regional-note region={note['region']} target={note['target']}}}", ""]
            out += [region(note["text"]), ""]
    if rep.get("contributors"):
        out += ["## Contributors {.contributors}", ""]
        out += ["| " + " | ".join(_CONTRIBUTOR_COLUMNS) + " |", "| --- | --- | --- |"]
        for p in rep["contributors"]:
            cells = (inline(p["name"]), inline(p.get("affiliation") or ""), inline(p.get("region") or ""))
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


# --- reading -----------------------------------------------------------------------------------


@dataclass
class Parsed:
    """What :func:`parse` read: the draft's fields, and the line each element starts on.

    ``lines`` maps a path in the draft (``("sections", 0, "clauses", 2, "text")``)
    to a 1-based line, so that validation errors can name lines too.
    """

    title: str = ""
    summary: str = ""
    sections: list[dict[str, Any]] = field(default_factory=list)
    regional_notes: list[dict[str, Any]] = field(default_factory=list)
    contributors: list[dict[str, Any]] = field(default_factory=list)
    lines: dict[tuple[Any, ...], int] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        """The draft's fields as a replace body (``DraftReplace``) takes them."""
        return {
            "title": self.title,
            "summary": self.summary,
            "sections": self.sections,
            "regional_notes": self.regional_notes,
            "contributors": self.contributors,
        }

    def line_of(self, loc: tuple[Any, ...]) -> int:
        """The line of the deepest element ``loc`` (a validation error's location) is in."""
        for end in range(len(loc), 0, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return 1


@dataclass
class _Heading:
    """A structural heading: its level, 1-based line, label text, attributes, and the lines of its region."""

    level: int
    line: int
    text: str
    key: str | None
    classes: list[str]
    values: dict[str, str]
    start: int  # first line (0-based) after the heading
    end: int = 0  # first line (0-based) of the next structural heading


def parse(text: str) -> Parsed:
    """Read the Markdown form of a draft; :class:`MarkdownFormError` names the first bad line."""
    if "\x00" in text:
        raise MarkdownFormError(
            1 + text[: text.index("\x00")].count("\n"), "the NUL character is not allowed"
        )
    return _read(text.removeprefix("\ufeff"))


def _read(text: str) -> Parsed:
    src = text.replace("\r\n", "\n").replace("\r", "\n")
    tokens = _MD.parse(src)
    lines = src.split("\n")
    top = [t for t in tokens if t.level == 0 and t.nesting >= 0 and t.map is not None]
    if not top or top[0].type != "heading_open" or top[0].tag != "h1":
        first = top[0].map[0] + 1 if top and top[0].map else 1
        raise MarkdownFormError(first, "the form starts with the title, a level-1 heading (`# Title`)")
    title_at = tokens.index(top[0])
    title_line = (top[0].map or [0, 1])[0] + 1
    title_source = tokens[title_at + 1].content
    if _split_attributes(title_source) is not None:
        raise MarkdownFormError(title_line, "the title takes no attributes (write a literal brace as \\{)")
    headings = _structural(tokens, title_at, len(lines))
    parsed = Parsed(title=_plain(title_source, title_line))
    parsed.lines[("title",)] = title_line
    summary_start = (top[0].map or [0, 1])[1]
    parsed.summary = _region(tokens, lines, summary_start, headings[0].line - 1 if headings else len(lines))
    parsed.lines[("summary",)] = _first_line(lines, summary_start, len(lines), title_line)
    _assemble(parsed, headings, tokens, lines)
    return parsed


def _structural(tokens: list[Token], title_at: int, line_count: int) -> list[_Heading]:
    """Every top-level heading after the title whose line ends with an attribute block, in order."""
    found: list[_Heading] = []
    for i, token in enumerate(tokens):
        if i <= title_at or token.type != "heading_open" or token.level != 0 or token.map is None:
            continue
        split = _split_attributes(tokens[i + 1].content)
        if split is None:
            continue
        label, inner = split
        line = token.map[0] + 1
        key, classes, values = _attributes(inner, line)
        heading = _Heading(int(token.tag[1]), line, label, key, classes, values, start=token.map[1])
        found.append(heading)
    for n, heading in enumerate(found):
        heading.end = found[n + 1].line - 1 if n + 1 < len(found) else line_count
    return found


def _escaped(value: str, index: int) -> bool:
    slashes = 0
    while index - slashes - 1 >= 0 and value[index - slashes - 1] == "\\":
        slashes += 1
    return slashes % 2 == 1


def _split_attributes(content: str) -> tuple[str, str] | None:
    """``(label, inside)`` when a heading's source ends with an unescaped ``{…}``, else ``None``."""
    raw = content.rstrip()
    if not raw.endswith("}") or _escaped(raw, len(raw) - 1):
        return None
    start = raw.rfind("{")
    while start != -1 and _escaped(raw, start):
        start = raw.rfind("{", 0, start)
    if start == -1:
        return None
    return raw[:start].rstrip(), raw[start + 1 : -1]


def _attributes(inner: str, line: int) -> tuple[str | None, list[str], dict[str, str]]:
    key: str | None = None
    classes: list[str] = []
    values: dict[str, str] = {}
    for item in inner.split():
        name, eq, value = item.partition("=")
        if item.startswith("#") and len(item) > 1 and key is None:
            key = item[1:]
        elif item.startswith(".") and len(item) > 1:
            classes.append(item[1:])
        elif eq and name and value and name not in values:
            values[name] = value
        else:
            raise MarkdownFormError(
                line,
                f"cannot read {item!r} in the attribute block {{{inner}}} (items: #key, .class, name=value)",
            )
    if key is not None and not _KEY.fullmatch(key):
        raise MarkdownFormError(line, f"{key!r} is not a key (letters, digits, '.', '_', '-')")
    return key, classes, values


def _plain(source: str, line: int) -> str:
    """The plain text of a title or table cell written as inline Markdown."""
    out = []
    for child in _MD.parseInline(source)[0].children or []:
        if child.type not in ("text", "text_special"):
            raise MarkdownFormError(
                line,
                "titles and table cells are plain text: write Markdown punctuation with a backslash (\\*)",
            )
        out.append(child.content)
    return "".join(out)


def _region(tokens: list[Token], lines: list[str], start: int, end: int) -> str:
    """The text between two structural headings (lines ``start`` to ``end``, 0-based, exclusive)."""
    inside = [t for t in tokens if t.level == 0 and t.map is not None and start <= t.map[0] < end]
    if len(inside) == 1 and inside[0].type == "fence" and inside[0].info.strip() == JSON_FENCE:
        line = (inside[0].map or [start])[0] + 1
        try:
            value = json.loads(inside[0].content)
        except ValueError:
            value = None
        if not isinstance(value, str):
            raise MarkdownFormError(line, f"an {JSON_FENCE} block holds one JSON string")
        return value
    chunk = lines[start:end]
    while chunk and not chunk[0].strip():
        chunk.pop(0)
    while chunk and not chunk[-1].strip():
        chunk.pop()
    return "\n".join(chunk)


def _first_line(lines: list[str], start: int, end: int, default: int) -> int:
    """The 1-based number of the first non-blank line in ``lines[start:end]`` (else ``default``)."""
    return next((n + 1 for n in range(start, min(end, len(lines))) if lines[n].strip()), default)


def _kind_of(h: _Heading) -> str:
    """Which element a structural heading opens (``MarkdownFormError`` when none fits)."""
    if h.level == 2 and h.key and not h.classes and not h.values:
        return "section"
    if h.level == 3 and h.key and len(h.classes) == 1 and set(h.values) == {"applies_to"}:
        if h.classes[0] not in CLAUSE_KINDS:
            raise MarkdownFormError(h.line, f"a clause's kind is one of {', '.join(CLAUSE_KINDS)}")
        if h.values["applies_to"] not in APPLIES_TO:
            raise MarkdownFormError(h.line, f"`applies_to` is one of {', '.join(APPLIES_TO)}")
        if h.text:
            raise MarkdownFormError(h.line, "a clause has no title: write `### {#key .kind applies_to=…}`")
        return "clause"
    single = h.classes[0] if len(h.classes) == 1 and h.key is None else None
    if h.level == 4 and single == "change-note" and not h.values:
        return "change-note"
    if h.level == 2 and single in ("regional-notes", "contributors") and not h.values:
        return str(single)
    if h.level == 3 and single == "regional-note" and set(h.values) == {"region", "target"}:
        if h.text:
            raise MarkdownFormError(h.line, "a regional note has no title: write `### {.regional-note …}`")
        return "regional-note"
    raise MarkdownFormError(
        h.line,
        "this heading's attributes fit no element of the form (a section `## Title {#key}`, a clause "
        "`### {#key .kind applies_to=…}`, `#### Change note {.change-note}`, `## Regional notes "
        "{.regional-notes}`, `### {.regional-note region=… target=…}`, `## Contributors {.contributors}`); "
        "write a literal brace as \\{",
    )


def _assemble(parsed: Parsed, headings: list[_Heading], tokens: list[Token], lines: list[str]) -> None:
    """Fill ``parsed`` from the structural headings, checking their order and keys."""
    part = "sections"  # then "regional-notes", then "contributors"
    seen: dict[str, int] = {}
    clause: dict[str, Any] | None = None
    for h in headings:
        kind = _kind_of(h)
        text = _region(tokens, lines, h.start, h.end)
        text_line = _first_line(lines, h.start, h.end, h.line)
        if kind in ("section", "clause"):
            if part != "sections":
                raise MarkdownFormError(
                    h.line, "sections and clauses come before the regional notes and contributors"
                )
            assert h.key is not None
            if h.key in seen:
                raise MarkdownFormError(
                    h.line, f"the key {h.key!r} is used twice (first on line {seen[h.key]})"
                )
            seen[h.key] = h.line
        if kind == "section":
            i = len(parsed.sections)
            parsed.sections.append(
                {"key": h.key, "title": _plain(h.text, h.line), "intro": text or None, "clauses": []}
            )
            parsed.lines[("sections", i)] = h.line
            parsed.lines[("sections", i, "intro")] = text_line
            clause = None
        elif kind == "clause":
            if not parsed.sections:
                raise MarkdownFormError(
                    h.line, "a clause belongs to a section: put a `## Title {#key}` above it"
                )
            i, j = len(parsed.sections) - 1, len(parsed.sections[-1]["clauses"])
            clause = {"key": h.key, "kind": h.classes[0], "applies_to": h.values["applies_to"], "text": text}
            parsed.sections[-1]["clauses"].append(clause)
            parsed.lines[("sections", i, "clauses", j)] = h.line
            parsed.lines[("sections", i, "clauses", j, "text")] = text_line
        elif kind == "change-note":
            if clause is None or part != "sections":
                raise MarkdownFormError(h.line, "a change note belongs to the clause above it")
            if "change_note" in clause:
                raise MarkdownFormError(h.line, f"clause {clause['key']} has a change note already")
            clause["change_note"] = text or None
            i, j = len(parsed.sections) - 1, len(parsed.sections[-1]["clauses"]) - 1
            parsed.lines[("sections", i, "clauses", j, "change_note")] = text_line
        elif kind == "regional-notes" or kind == "contributors":
            order = ["sections", "regional-notes", "contributors"]
            if order.index(kind) <= order.index(part):
                raise MarkdownFormError(
                    h.line, "the regional notes come once, after the sections; the contributors last"
                )
            part, clause = kind, None
            if kind == "regional-notes" and text:
                raise MarkdownFormError(text_line, "text under `Regional notes` belongs to no note")
            if kind == "contributors":
                _contributors(parsed, tokens, lines, h)
        else:  # a regional note
            if part != "regional-notes":
                raise MarkdownFormError(
                    h.line, "regional notes go under `## Regional notes {.regional-notes}`"
                )
            k = len(parsed.regional_notes)
            parsed.regional_notes.append(
                {"region": h.values["region"], "target": h.values["target"], "text": text}
            )
            parsed.lines[("regional_notes", k)] = h.line
            parsed.lines[("regional_notes", k, "text")] = text_line
    for k, note in enumerate(parsed.regional_notes):
        if note["target"] not in seen:
            raise MarkdownFormError(
                parsed.lines[("regional_notes", k)],
                f"the note's target {note['target']!r} is not a key of this draft",
            )


def _contributors(parsed: Parsed, tokens: list[Token], lines: list[str], h: _Heading) -> None:
    """The rows of the contributors table (the only thing allowed under its heading)."""
    inside = [t for t in tokens if t.level == 0 and t.map is not None and h.start <= t.map[0] < h.end]
    if not inside:
        return
    if len(inside) != 1 or inside[0].type != "table_open":
        line = (inside[0].map or [h.start])[0] + 1
        raise MarkdownFormError(line, "under `Contributors` comes one table: | Name | Affiliation | Region |")
    begin = tokens.index(inside[0])
    row: list[str] = []
    row_line = 0
    header = True
    for token in tokens[begin:]:
        if token.type == "table_close":
            break
        if token.type == "tbody_open":
            header = False
        elif token.type == "tr_open":
            row, row_line = [], (token.map or [0])[0] + 1
        elif token.type == "inline":
            row.append(_plain(token.content, row_line))
        elif token.type == "tr_close" and header:
            if tuple(cell.casefold() for cell in row) != tuple(c.casefold() for c in _CONTRIBUTOR_COLUMNS):
                header_row = " | ".join(_CONTRIBUTOR_COLUMNS)
                raise MarkdownFormError(row_line, f"the contributors table's header is | {header_row} |")
        elif token.type == "tr_close":
            # A GFM table pads a short row with empty cells and drops the cells past the
            # header's count: count the row's cells as the table rule split them, so that a
            # missing or extra pipe is a 422 instead of a contributor quietly changed.
            if len(_cells(lines[row_line - 1])) != len(_CONTRIBUTOR_COLUMNS):
                raise MarkdownFormError(
                    row_line, "a contributor row has three cells: name, affiliation, region"
                )
            m = len(parsed.contributors)
            parsed.contributors.append({"name": row[0], "affiliation": row[1], "region": row[2]})
            parsed.lines[("contributors", m)] = row_line


def _cells(source: str) -> list[str]:
    """The cells of a table row's source line, split as markdown-it's GFM table rule splits them
    (escaped pipes stay in their cell; the pipes at either end enclose the row)."""
    cells = escapedSplit(mdTrim(source))
    if cells and cells[0] == "":
        cells.pop(0)
    if cells and cells[-1] == "":
        cells.pop()
    return cells
