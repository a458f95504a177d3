"""Markdown and HTML renderings credit the version's contributors, as the JSON does."""

from __future__ import annotations

from tests.standards.conftest import DEMO_V1, Api

DOC = "/v1/standards/demo"


def test_contributors_close_markdown_and_html(api: Api) -> None:
    content = {
        **DEMO_V1,
        "contributors": [
            {"name": "Ada Example", "affiliation": "Example Institute", "region": "Germany"},
            {"name": "Eve <b>Bold</b> & Co", "affiliation": "", "region": "Asia *Pacific*"},
            {"name": "Solo Person", "affiliation": "", "region": ""},
        ],
    }
    api.release("1.0", content)
    md = api.client.get(f"{DOC}/current", headers={"Accept": "text/markdown"})
    assert md.status_code == 200
    assert md.text.endswith(
        "## Contributors\n"
        "\n"
        "- Ada Example (Example Institute, Germany)\n"
        "- Eve \\<b\\>Bold\\</b\\> \\& Co (Asia \\*Pacific\\*)\n"
        "- Solo Person\n"
    )
    html = api.client.get(f"{DOC}/current", headers={"Accept": "text/html"})
    assert html.status_code == 200
    assert html.text.endswith(
        '<footer class="imi-contributors"><h2 lang="en">Contributors</h2>\n'
        "<ul>\n"
        "<li>Ada Example (Example Institute, Germany)</li>\n"
        "<li>Eve &lt;b&gt;Bold&lt;/b&gt; &amp; Co (Asia *Pacific*)</li>\n"
        "<li>Solo Person</li>\n"
        "</ul></footer>\n"
        "</article>\n"
    )
    assert "<b>" not in html.text
    # the JSON carries the same people, unchanged
    assert api.client.get(f"{DOC}/current").json()["contributors"] == content["contributors"]


def test_no_contributors_no_list(api: Api) -> None:
    api.release("1.0", {**DEMO_V1, "contributors": []})
    md = api.client.get(f"{DOC}/current", headers={"Accept": "text/markdown"}).text
    html = api.client.get(f"{DOC}/current", headers={"Accept": "text/html"}).text
    assert "Contributors" not in md and "Contributors" not in html
    assert html.endswith("</section>\n</article>\n")
