"""The README's quickstart runs as written (issue 16): the blocks marked
``<!-- quickstart: … -->`` are extracted and run with bash, each job in a fresh shell after
the setup block, against ``make run PORT=…`` on a free 127.0.0.1 port with a fresh database
(SQLite and PostgreSQL) that the server fills with the sample data, as a new user would."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.common import free_port

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"<!-- quickstart: (\w+) -->\n```sh\n(.*?)```", re.DOTALL)

#: What each job must print (its claims in the README), checked case-insensitively.
EXPECTED = {
    "standards": [
        "Training Standards and Ethical Guidelines",
        "Ausbildungsstandards und ethische Leitlinien",
        "content-language: de",
        "vary: accept, accept-encoding, accept-language",
        "_Version 2.0 · Veröffentlicht am 1. Juli 2021 · Gültig ab",
        "*Anforderung · Gilt für:",
        "content-language: en",
        '<article class="imi-standards" lang="de"',
        "Gilt für:",
    ],
    "verify": [
        "Zürcher Institut für Achtsamkeit",
        "True\naligned",
        "valid",
        "Amsterdamse Mindfulness Academie",
        "Erklärt Übereinstimmung mit den IMI Training Standards",  # the badge, by Accept-Language
    ],
    "webhook": [
        "draft\n",
        "(2.1)\n",
        "published\n",
        "delivery: succeeded",
        "2.1\n",
        "204",
    ],
}


def quickstart_blocks(readme: str) -> dict[str, str]:
    """``{name: shell text}`` of the marked blocks, in README order."""
    return {name: text for name, text in BLOCK.findall(readme)}


def test_the_readme_marks_every_job() -> None:
    blocks = quickstart_blocks((ROOT / "README.md").read_text())
    assert list(blocks) == ["setup", "standards", "verify", "webhook"]


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """``make run PORT=<free>`` on ``db_url``: the base URL and the environment the user's
    terminal has (the same database and keys)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMI_")}
    env.update(IMI_DATABASE_URL=db_url, IMI_KEYS_DIR=str(tmp_path / "keys"), IMI_LOG_LEVEL="WARNING")
    proc = subprocess.Popen(
        ["make", "-s", "-C", str(ROOT), "run", f"PORT={port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "server.log", "wb"),  # noqa: SIM115 - closed with the process
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.2)
        assert httpx.get(base + "/v1/standards/training-standards").json()["links"]["self"].startswith(base)
        yield base, env
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_the_quickstart_runs_as_written(server: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    base, env = server
    port = base.rsplit(":", 1)[1]
    receiver_port = str(free_port())
    blocks = quickstart_blocks((ROOT / "README.md").read_text())
    # A terminal in "the project folder" whose files (draft.json, receiver.log, …) land here.
    folder = tmp_path / "project"
    folder.mkdir()
    for name in (".venv", "examples"):
        (folder / name).symlink_to(ROOT / name)
    for job in ("standards", "verify", "webhook"):
        script = (blocks["setup"] + blocks[job]).replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        script = script.replace("8081", receiver_port)
        command = ["bash", "-c", script]
        done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=240)
        output = done.stdout.replace("\r\n", "\n")
        assert done.returncode == 0, (job, output, done.stderr)
        for needle in EXPECTED[job]:
            assert needle.lower() in output.lower(), (job, needle, output, done.stderr)
        for bad in ("Traceback", "command not found", "No such file"):
            assert bad not in done.stderr, (job, done.stderr)
    # The user ran these in the project folder: what they leave there (endpoint.json holds the
    # webhook secret) must not show up as files to commit.
    left = sorted(
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if path.is_file() and path.parts[len(folder.parts)] not in (".venv", "examples")
    )
    assert "endpoint.json" in left and "headers.txt" in left, left
    check = ["git", "-C", str(ROOT), "check-ignore", "--no-index", *left]
    ignored = subprocess.run(check, capture_output=True, text=True, check=False).stdout.split()
    assert sorted(ignored) == left, ("not in .gitignore", set(left) - set(ignored))


@pytest.mark.parametrize(
    ("answer", "path", "said"),
    [
        (
            '{"type":"/problems/unauthorized","status":401,"detail":"The access token is not valid."}',
            "access_token",
            'field: no .access_token in {"type":"/problems/unauthorized"',
        ),
        ('{"data": [], "next_cursor": null, "suggestions": []}', "data 0 id", "field: no .data.0.id in {"),
        ("", "data 0 name", "field: no .data.0.name in an empty answer (is the server running?)"),
        ("<html>502</html>", "title", "field: no .title in <html>502</html>"),
    ],
    ids=["problem", "empty-page", "no-server", "not-json"],
)
def test_the_field_helper_says_what_it_got_instead_of_a_traceback(answer: str, path: str, said: str) -> None:
    """The setup block's ``field`` met a problem document, an empty search page or a server that
    is not running with a Python traceback (KeyError, IndexError, JSONDecodeError): now one line
    with what came back, the first thing a new user needs to see."""
    setup = quickstart_blocks((ROOT / "README.md").read_text())["setup"]
    done = subprocess.run(
        ["bash", "-c", f'{setup}\nprintf %s "$ANSWER" | field {path}'],
        cwd=ROOT,
        env={**os.environ, "ANSWER": answer},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and done.stdout == "", (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith(said), done.stderr
    ok = subprocess.run(
        ["bash", "-c", f'{setup}\necho \'{{"data": [{{"id": "sch_1"}}]}}\' | field data 0 id'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.stdout == "sch_1\n", ok.stderr
