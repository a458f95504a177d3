"""Editing a draft in Markdown: the form reads back exactly what it wrote (property tests over
generated documents), edits arrive as edits, and what does not fit is a 422 naming the line."""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from service.standards import mdform
from service.standards.content import content_from_draft, content_hash
from service.standards.schemas import DraftReplace
from tests.conftest import assert_problem
from tests.standards.conftest import DEMO_V2, Api, translation_of

DOC = "/v1/standards/demo"
V21 = f"{DOC}/versions/2.1"
MD = "text/markdown"

# --- generated documents --------------------------------------------------------------------------

#: Pieces that stress the form: Markdown syntax, its own structure, line breaks, escapes, scripts.
_TRICKY = [
    "#",
    "## A heading {#X}",
    "### {#Z .guidance applies_to=teacher}",
    "#### Change note {.change-note}",
    "{.regional-note region=DE target=S0}",
    "```",
    "~~~",
    '```imi-json\n"x"\n```',
    "> ",
    "- ",
    "1. ",
    "*",
    "_",
    "`",
    "\\",
    "{",
    "}",
    "|",
    "\n",
    "\n\n",
    "    ",
    "\t",
    "\r",
    "\r\n",
    "&amp;",
    "&#10;",
    "<b>",
    "<!--",
    "---",
    "===",
    "[x]: /url",
    " ",
    "é",
    "中文",
    "عربى",
    "\u2028",
    "\x0b",
    "\x0c",
    "\x7f",
    "\x85",
    "\ufeff",
    "🙂",
]
_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")


def _text(min_size: int = 1, max_size: int = 300) -> st.SearchStrategy[str]:
    """Texts the JSON representation accepts (trimmed, within the field's bounds)."""
    return (
        st.lists(st.one_of(_CHARS, st.sampled_from(_TRICKY)), min_size=min_size, max_size=14)
        .map(lambda parts: "".join(parts).strip())
        .filter(lambda value: min_size <= len(value) <= max_size)
    )


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """A draft body as a JSON PUT takes it: sections, clauses, change notes, notes, contributors."""
    sections = []
    for i in range(draw(st.integers(0, 3))):
        clauses = []
        for j in range(draw(st.integers(0, 3))):
            clause = {
                "key": f"S{i}.{j}",
                "kind": draw(st.sampled_from(["requirement", "recommendation", "guidance"])),
                "applies_to": draw(st.sampled_from(["teacher", "trainer", "training_organisation"])),
                "text": draw(_text()),
            }
            if draw(st.booleans()):
                clause["change_note"] = draw(_text())
            clauses.append(clause)
        sections.append(
            {"key": f"S{i}", "title": draw(_text()), "intro": draw(st.none() | _text()), "clauses": clauses}
        )
    keys = [s["key"] for s in sections] + [c["key"] for s in sections for c in s["clauses"]]
    notes = [
        {
            "region": draw(st.sampled_from(["DE", "NL", "142", "150"])),
            "target": draw(st.sampled_from(keys)),
            "text": draw(_text()),
        }
        for _ in range(draw(st.integers(0, 3) if keys else st.just(0)))
    ]
    people = [
        {"name": draw(_text(max_size=200)), "affiliation": draw(_text(0)), "region": draw(_text(0, 100))}
        for _ in range(draw(st.integers(0, 2)))
    ]
    return {
        "title": draw(_text()),
        "summary": draw(_text(0)),
        "sections": sections,
        "regional_notes": notes,
        "contributors": people,
    }


def _content(body: dict[str, Any]) -> dict[str, Any]:
    return content_from_draft(DraftReplace.model_validate(body))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_the_form_reads_back_what_it_wrote(body: dict[str, Any]) -> None:
    content = _content(body)
    text = mdform.render(content)
    back = _content(mdform.parse(text).body())
    assert content_hash(back, language="en") == content_hash(content, language="en"), text


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=documents())
def test_get_then_put_keeps_the_content_hash(draft: Api, body: dict[str, Any]) -> None:
    """Through HTTP on both databases: a draft with generated content, GET as Markdown, PUT back."""
    c, h = draft.client, draft.headers
    current = c.get(V21, headers=h)
    put = c.put(V21, json={**current.json(), **body}, headers={**h, "If-Match": current.headers["etag"]})
    assert put.status_code == 200, put.text
    before = put.json()["content_hash"]
    md = c.get(V21, headers={**h, "Accept": MD})
    assert md.status_code == 200 and md.headers["content-type"] == "text/markdown; charset=utf-8"
    again = c.put(V21, content=md.content, headers={**h, "Content-Type": MD, "If-Match": md.headers["etag"]})
    assert again.status_code == 200, (again.text, md.text)
    assert again.json()["content_hash"] == before, md.text


@pytest.fixture
def draft(demo: Api) -> Api:
    demo.draft("2.1", based_on="2.0")
    return demo


# --- edits arrive as edits -------------------------------------------------------------------------


def _form(draft: Api) -> tuple[str, str]:
    r = draft.client.get(V21, headers={**draft.headers, "Accept": MD})
    assert r.status_code == 200
    return r.text, r.headers["etag"]


def _put(draft: Api, text: str, etag: str, **headers: str) -> Any:
    return draft.client.put(
        V21, content=text.encode(), headers={**draft.headers, "Content-Type": MD, "If-Match": etag, **headers}
    )


def test_the_documented_form(draft: Api) -> None:
    text, _ = _form(draft)
    assert text.startswith("# Demo standards\n\nThe second edition.\n\n## Practice {#S1}\n\nWhat teachers do")
    assert "\n### {#S1.1 .requirement applies_to=teacher}\n\nKeep a daily practice.\n" in text
    assert "\n## Regional notes {.regional-notes}\n\n### {.regional-note region=142 target=S2}\n\n" in text
    assert text.endswith(
        "## Contributors {.contributors}\n\n| Name | Affiliation | Region |\n| --- | --- | --- |\n"
        "| Ada Example | Example Institute | Germany |\n"
    )
    # published versions keep their reading form
    published = draft.client.get(f"{DOC}/versions/2.0", headers={"Accept": MD}).text
    assert published.startswith("# Demo standards\n\n_Version 2.0 · Published ")


def test_edits_in_a_text_editor_arrive_as_those_edits(draft: Api) -> None:
    text, etag = _form(draft)
    effective = draft.client.get(V21, headers=draft.headers).json()["effective_from"]
    edited = (
        text.replace("Keep a daily practice.", "Keep a daily practice of *at least* 30 minutes.")
        .replace(
            "### {#S1.4 .requirement applies_to=teacher}",
            "### {#S1.5 .guidance applies_to=trainer}\n\nA new clause.\n\n"
            "#### Change note {.change-note}\n\nAdded after the review.\n\n"
            "### {#S1.4 .requirement applies_to=teacher}",
        )
        .replace(
            "Asia Pacific chapters adapt the wording.", "Asia Pacific chapters adapt the wording freely."
        )
    )
    # move section S3 before S2
    head, s2 = edited.split("## Ethics {#S2}", 1)
    s2, s3 = s2.split("## Organisation {#S3}", 1)
    s3, tail = s3.split("## Regional notes", 1)
    edited = f"{head}## Organisation {{#S3}}{s3}## Ethics {{#S2}}{s2}## Regional notes{tail}"
    r = _put(draft, edited, etag, Accept=MD)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(MD)
    assert r.text == edited  # what was PUT is the form of the new content
    body = draft.client.get(V21, headers=draft.headers).json()
    assert [s["key"] for s in body["sections"]] == ["S1", "S3", "S2"]
    s1 = body["sections"][0]["clauses"]
    assert s1[0]["text"] == "Keep a daily practice of *at least* 30 minutes."
    assert (s1[1]["key"], s1[1]["kind"], s1[1]["applies_to"], s1[1]["change_note"]) == (
        "S1.5",
        "guidance",
        "trainer",
        "Added after the review.",
    )
    assert body["regional_notes"] == [
        {"region": "142", "target": "S2", "text": "Asia Pacific chapters adapt the wording freely."}
    ]
    assert body["effective_from"] == effective  # not part of the form: kept
    # the next PUT can use the ETag of the Markdown answer, or of the JSON representation
    again = _put(draft, edited.replace("30 minutes", "20 minutes"), r.headers["etag"])
    assert again.status_code == 200, again.text
    json_etag = draft.client.get(V21, headers=draft.headers).headers["etag"]
    assert _put(draft, edited, json_etag).status_code == 200


def test_preconditions_and_media_types(draft: Api) -> None:
    c, h = draft.client, draft.headers
    text, etag = _form(draft)
    assert_problem(c.put(V21, content=text.encode(), headers={**h, "Content-Type": MD}), 428)
    stale = _put(draft, text.replace("Keep a daily", "Keep an hourly"), etag)
    assert stale.status_code == 200
    assert_problem(_put(draft, text, etag), 412)
    assert c.put(f"{V21}/translations/de", json=translation_of(DEMO_V2, "DE"), headers=h).status_code == 201
    de_form = c.get(f"{V21}?lang=de", headers={**h, "Accept": MD})
    assert de_form.headers["content-language"] == "de" and "DE Keep a daily practice." in de_form.text
    text, etag = _form(draft)
    assert_problem(_put(draft, text, de_form.headers["etag"]), 412)  # only the source form is put
    assert_problem(_put(draft, text, etag, **{"Content-Type": "text/plain"}), 415)
    assert_problem(_put(draft, text, etag, **{"Content-Type": "text/markdown; charset=latin-1"}), 415)
    bad_bytes = c.put(V21, content=b"# T\xff\n", headers={**h, "Content-Type": MD, "If-Match": etag})
    assert_problem(bad_bytes, 422)
    assert _put(draft, "\ufeff" + text.replace("\n", "\r\n"), etag).status_code == 200  # BOM, CRLF
    published = c.get(f"{DOC}/versions/2.0", headers={**h, "Accept": MD})
    r = c.put(
        f"{DOC}/versions/2.0",
        content=published.content,
        headers={**h, "Content-Type": MD, "If-Match": published.headers["etag"]},
    )
    assert_problem(r, 409)
    assert_problem(c.put(V21, content=text.encode(), headers={"Content-Type": MD, "If-Match": etag}), 401)


BASE = (
    "# Title\n\nSummary.\n\n## Section {#A}\n\n### {#A.1 .requirement applies_to=teacher}\n\nText.\n\n"
    "## Regional notes {.regional-notes}\n\n### {.regional-note region=DE target=A.1}\n\nNote.\n"
)


_TABLE = "\n## Contributors {.contributors}\n\n| Name | Affiliation | Region |\n| --- | --- | --- |\n"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("Not a title\n", 1, "starts with the title"),
        ("\n\n## Section {#A}\n", 3, "starts with the title"),
        ("# Title {#T}\n", 1, "title takes no attributes"),
        (BASE.replace(".requirement", ".must"), 7, "kind is one of"),
        (BASE.replace("applies_to=teacher", "applies_to=everyone"), 7, "`applies_to` is one of"),
        (BASE.replace("applies_to=teacher}", "applies_to = teacher}"), 7, "cannot read"),
        (BASE.replace("{#A.1 .requirement", "{#A.1!x .requirement"), 7, "is not a key"),
        (BASE.replace("## Section {#A}\n\n", ""), 5, "belongs to a section"),
        (BASE.replace("### {#A.1", "### Title {#A.1"), 7, "has no title"),
        (BASE.replace("{#A.1 .requirement", "{#A .requirement"), 7, "used twice (first on line 5)"),
        (BASE.replace("target=A.1", "target=B"), 13, "not a key of this draft"),
        (BASE.replace("### {.regional-note", "#### {.regional-note"), 13, "fit no element"),
        (BASE + "\n## Section B {#B}\n", 17, "come before the regional notes"),
        (BASE.replace("Note.\n", "Note.\n\n## Contributors {.contributors}\n\n- Ada\n"), 19, "one table"),
        (BASE.replace("Text.", "```imi-json\n[1]\n```"), 9, "holds one JSON string"),
        (BASE.replace("## Section {#A}", "## Se*ct*ion {#A}"), 5, "plain text"),
        (BASE.replace("Text.", "x" * 20_001), 9, "at most 20000 characters"),
        (BASE.replace("Text.", ""), 7, "at least 1 character"),  # no text: the clause's line
        (BASE.replace("region=DE", "region=XX"), 13, "ISO 3166-1"),
        ("# Title\n\n## S {#S}\n\n#### Change note {.change-note}\n\nWhy.\n", 5, "belongs to the clause"),
        # GFM pads a short row and drops the cells past the header's: neither may pass quietly
        (BASE + _TABLE + "| Ada | Example Institute | Germany | extra |\n", 21, "three cells"),
        (BASE + _TABLE + "| Ada | Germany |\n", 21, "three cells"),
        (BASE + _TABLE + "| Ada \\| Bo | Example Institute | Germany |\n| Cy |\n", 22, "three cells"),
        (BASE + _TABLE.replace("Name | Affiliation", "Affiliation | Name") + "| A | B | C |\n", 19, "header"),
        (BASE + _TABLE.replace("| Name |", "| name |") + "| A | B | C |\n| D |\n", 22, "three cells"),
    ],
)
def test_a_body_that_does_not_fit_names_the_line(draft: Api, text: str, line: int, words: str) -> None:
    _, etag = _form(draft)
    problem = assert_problem(_put(draft, text, etag), 422)
    assert problem["line"] == line, problem
    assert problem["detail"].startswith(f"line {line}: "), problem
    assert words in problem["detail"], problem
    assert problem["errors"][0]["line"] == line


def test_json_representation_and_markdown_form_describe_one_draft(draft: Api) -> None:
    """A draft edited through JSON shows the edit in its Markdown form, and the other way round."""
    c, h = draft.client, draft.headers
    content = {**DEMO_V2, "summary": "A *draft* with `code` and a | pipe."}
    draft.replace("2.1", content)
    text, _ = _form(draft)
    assert "A *draft* with `code` and a | pipe." in text
    assert c.get(V21, headers=h).json()["summary"] == "A *draft* with `code` and a | pipe."
