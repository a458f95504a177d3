"""The command line fails safe (issue 16), tested through the real ``imi-api`` command in a
subprocess: no command but ``serve`` and ``migrate`` creates a database; a missing or
unmigrated database, or an unreachable PostgreSQL, is one line naming the database,
``IMI_DATABASE_URL`` and ``imi-api migrate``, exit status 2, no traceback (``--debug``
shows one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

IMI_API = str(Path(sys.executable).parent / "imi-api")

#: Every command that needs a database but must never create one.
COMMANDS = [
    ["clients", "create", "--name", "Editor", "--scope", "standards:write"],
    ["clients", "list"],
    ["clients", "revoke", "cli_x"],
    ["clients", "rotate-secret", "cli_x"],
    ["load-sample"],
    ["export", "backup.jsonl"],
    ["import", "backup.jsonl"],
    ["worker"],
]


def _run(
    cwd: Path, *args: str, url: str | None = None, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMI_")}
    env["IMI_KEYS_DIR"] = str(cwd / "keys")
    if url is not None:
        env["IMI_DATABASE_URL"] = url
    env.update(extra or {})
    return subprocess.run(
        [IMI_API, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _one_line(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in ("IMI_DATABASE_URL", "imi-api migrate", *needles):
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_missing_database_is_one_line_and_nothing_is_created(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "backup.jsonl").write_text("")
    line = _one_line(_run(tmp_path, *command), str(tmp_path / "var" / "imi.db"), "sqlite:///./var/imi.db")
    assert line.startswith("error: there is no database at ")
    assert not (tmp_path / "var").exists()  # nothing created, not even the folder


def test_an_unmigrated_database_is_one_line_then_migrate_makes_it_work(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    db.touch()
    url = f"sqlite:///{db}"
    create = ["clients", "create", "--name", "Editor", "--scope", "standards:write"]
    line = _one_line(_run(tmp_path, *create, url=url), url)
    assert "not migrated" in line
    assert db.stat().st_size == 0  # untouched

    debug = _run(tmp_path, "--debug", *create, url=url)
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "DatabaseNotReady" in debug.stderr

    migrated = _run(tmp_path, "migrate", url=url)
    assert migrated.returncode == 0, migrated.stderr
    created = _run(tmp_path, *create, url=url)
    assert created.returncode == 0, created.stderr
    assert set(json.loads(created.stdout)) == {"client_id", "client_secret"}


def test_an_unreachable_postgresql_is_one_line(tmp_path: Path) -> None:
    url = "postgresql+psycopg://imi:s3cret@127.0.0.1:1/imi"
    line = _one_line(
        _run(tmp_path, "clients", "list", url=url), "postgresql+psycopg://imi:***@127.0.0.1:1/imi"
    )
    assert "s3cret" not in line and "cannot use the database" in line


def test_a_missing_or_unmigrated_postgresql_database_is_one_line(tmp_path: Path, pg_admin_url: str) -> None:
    base = pg_admin_url.rpartition("/")[0]
    missing = f"{base}/imi_missing_{uuid.uuid4().hex[:8]}"
    _one_line(_run(tmp_path, "clients", "list", url=missing), missing.rpartition("/")[2], "does not exist")

    name = f"imi_empty_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        line = _one_line(_run(tmp_path, "load-sample", url=f"{base}/{name}"), name)
        assert "not migrated" in line
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("garbage", None),
        ("mysql://127.0.0.1/imi", "mysql://127.0.0.1/imi"),
        ("postgres://imi:s3cret@127.0.0.1:1/imi", "postgres://imi:***@127.0.0.1:1/imi"),
    ],
    ids=["unparsable", "other-database", "postgres-scheme"],
)
@pytest.mark.parametrize(
    "command", [["migrate"], ["serve", "--port", "1"], ["clients", "list"]], ids=" ".join
)
def test_a_url_that_is_no_database_of_ours_is_one_line(
    tmp_path: Path, url: str, shown: str | None, command: list[str]
) -> None:
    """A malformed or foreign IMI_DATABASE_URL (once a SQLAlchemy ArgumentError or a missing
    driver module, 80 lines of traceback) names the setting and the two accepted forms."""
    line = _one_line(_run(tmp_path, *command, url=url), "sqlite:///", "postgresql+psycopg://")
    assert "s3cret" not in line
    if shown is not None:
        assert shown in line
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("command", [["migrate"], ["serve", "--port", "1"]], ids=" ".join)
def test_migrate_and_serve_against_an_unreachable_postgresql_are_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    """The two commands that may create a database (and so skip the readiness check) still say
    in one line that the server does not answer, instead of a 450-line traceback out of Alembic."""
    url = "postgresql+psycopg://imi:s3cret@127.0.0.1:1/imi"
    line = _one_line(_run(tmp_path, *command, url=url), "postgresql+psycopg://imi:***@127.0.0.1:1/imi")
    assert "s3cret" not in line and "cannot use the database" in line and "Connection refused" in line


def test_a_bad_setting_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    """A value the settings cannot take is an operator's mistake too: every bad variable by name,
    its value not echoed (some hold secrets), exit status 2; ``--debug`` shows the traceback."""
    env = {"IMI_TOKEN_TTL_S": "s3cret-abc", "IMI_WEBHOOK_TARGETS": "everywhere"}
    for command in (["clients", "list"], ["migrate"], ["keys", "list"]):
        result = _run(tmp_path, *command, extra=env)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert "IMI_TOKEN_TTL_S: Input should be a valid integer" in lines[0]
        assert "IMI_WEBHOOK_TARGETS" in lines[0] and "s3cret" not in lines[0]
    debug = _run(tmp_path, "--debug", "clients", "list", extra=env)
    assert debug.returncode == 1 and "ValidationError" in debug.stderr
    assert not any(p.name != "keys" for p in tmp_path.iterdir())


def test_serve_refuses_a_port_out_of_range(tmp_path: Path) -> None:
    """``--port 99999`` used to migrate, print the banner and hang in uvicorn's bind."""
    result = _run(tmp_path, "serve", "--port", "99999")
    assert result.returncode == 2 and "1<=x<=65535" in result.stderr
    assert not (tmp_path / "var").exists()


def test_export_into_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    """``imi-api export /no/such/folder/backup.jsonl`` was a FileNotFoundError traceback."""
    url = f"sqlite:///{tmp_path / 'imi.db'}"
    assert _run(tmp_path, "migrate", url=url).returncode == 0
    target = tmp_path / "missing" / "backup.jsonl"
    result = _run(tmp_path, "export", str(target), url=url)
    assert result.returncode == 2 and result.stdout == "", result.stderr
    assert result.stderr.strip().splitlines() == [f"error: cannot write {target}: No such file or directory"]
    written = _run(tmp_path, "export", str(tmp_path / "backup.jsonl"), url=url)
    assert written.returncode == 0 and json.loads(written.stdout)["rows"], written.stderr


def test_keys_rotate_and_list_outside_the_keys_folder_are_one_line_and_create_nothing(tmp_path: Path) -> None:
    """Run where IMI_KEYS_DIR holds no key (another folder than the server's), ``keys rotate``
    made a fresh key set nobody reads and ``keys list`` printed nothing with status 0."""
    for command in (["keys", "rotate"], ["keys", "list"]):
        result = _run(tmp_path, *command)
        assert result.returncode == 2 and result.stdout == "", result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr
        assert f"no signing keys in {tmp_path / 'keys'}" in lines[0]
        assert "IMI_KEYS_DIR" in lines[0] and "imi-api keys generate" in lines[0]
        assert not (tmp_path / "keys").exists()
    assert _run(tmp_path, "keys", "generate").returncode == 0
    first = json.loads(_run(tmp_path, "keys", "list").stdout)
    rotated = _run(tmp_path, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    listed = [json.loads(line) for line in _run(tmp_path, "keys", "list").stdout.splitlines()]
    assert [k["state"] for k in listed] == ["active", "retired"]
    assert listed[1]["kid"] == first["kid"] and listed[0]["kid"] == json.loads(rotated.stdout)["kid"]


def test_serve_no_migrate_needs_a_migrated_database(tmp_path: Path) -> None:
    """``serve --no-migrate`` made an empty SQLite file and served it: every periodic job failed
    with a traceback and every read was a 500. Nothing migrates it, so it must be ready."""
    from bench.common import free_port

    port = str(free_port())
    result = _run(tmp_path, "serve", "--no-migrate", "--port", port)
    line = _one_line(result, str(tmp_path / "var" / "imi.db"))
    assert line.startswith("error: there is no database at ")
    assert not (tmp_path / "var").exists()
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    (tmp_path / "empty.db").touch()
    assert "not migrated" in _one_line(_run(tmp_path, "serve", "--no-migrate", "--port", port, url=url), url)
