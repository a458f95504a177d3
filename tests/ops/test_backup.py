"""``imi-api export`` / ``import``: a lossless round trip on both databases, mode 0600,
``--public`` without private data, and refusals (public file, truncated file, other
schema revision, non-empty database)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from bench.bulk import insert_schools
from service.core import audit
from service.core.config import get_settings
from service.core.db import make_engine, session_scope, utcnow
from service.events.service import emit
from service.main import backfill, create_app
from service.models import metadata
from service.ops.backup import BackupError, export_to_file, import_from_file
from service.ops.backup.format import BATCH_ROWS
from service.sample.loader import load_sample
from service.web.idempotency import IdempotencyKey
from tests.conftest import BASE_URL

CONTACT_EMAIL = "office@zen-zuerich.example"
CONTACT_PHONE = "+41 44 555 01 02"


#: Per backend: a backup of the populated database and what was made, so that only
#: the first test pays for populating through the API (the others import it).
_SEEDED: dict[str, tuple[Path, dict[str, Any]]] = {}


@pytest.fixture
def populated(
    client: TestClient,
    engine: Any,
    settings: Any,
    auth: Callable[..., dict[str, str]],
    session_factory: Any,
    db_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """The sample guidelines, schools (one with contact details, one delisted), a draft,
    clients, audit entries, an idempotency record with a binary body."""
    backend = db_url.split(":", 1)[0]
    if backend in _SEEDED:
        path, made = _SEEDED[backend]
        import_from_file(engine, path)
        return made
    made = _seed(client, engine, settings, auth, session_factory)
    path = tmp_path_factory.mktemp("seed") / f"{backend}.jsonl"
    export_to_file(engine, path)
    _SEEDED[backend] = (path, made)
    return made


def _seed(
    client: TestClient, engine: Any, settings: Any, auth: Callable[..., dict[str, str]], session_factory: Any
) -> dict[str, Any]:
    assert load_sample(engine=engine, settings=settings)
    with engine.connect() as conn:
        sample_schools = conn.execute(sa.text("SELECT count(*) FROM schools")).scalar_one()
    made: dict[str, Any] = {"sample_schools": int(sample_schools)}
    steward = auth("registry:write")
    editor = auth("standards:write")
    for name, country in (("Zen Zürich", "CH"), ("Māori Mindfulness", "NZ"), ("東京マインドフルネス", "JP")):
        r = client.post(
            "/v1/schools",
            json={
                "name": name,
                "country": country,
                "contact": {"email": CONTACT_EMAIL, "phone": CONTACT_PHONE},
            },
            headers=steward,
        )
        assert r.status_code == 201, r.text
        made[name] = r.json()["id"]
    r = client.post(f"/v1/schools/{made['Māori Mindfulness']}/delist", headers=steward)
    assert r.status_code == 200, r.text
    r = client.post("/v1/standards/training-standards/versions", json={"version": "2.1"}, headers=editor)
    assert r.status_code == 201, r.text
    with session_factory() as s:
        audit.record(s, actor="cli", action="test.backup", target="x", details={"n": 1, "ü": "ß"})
        emit(s, "school.updated", {"id": made["Zen Zürich"]})
        s.add(
            IdempotencyKey(
                client_id="cli_x",
                key="k1",
                request_hash="0" * 64,
                status=201,
                headers=[["content-type", "application/json"]],
                body=b"\x00\xffbinary",
                created_at=utcnow(),
            )
        )
    return made


def _rows(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    assert header["format"] == "imi-backup" and header["version"] == 1
    return lines[1:]


def _count(url: str, table: str) -> int:
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def test_round_trip_loses_nothing(
    populated: dict[str, Any],
    engine: Any,
    second_db_url: str,
    tmp_path: Path,
    settings: Any,
    session_factory: Any,
) -> None:
    first = tmp_path / "first.jsonl"
    summary = export_to_file(engine, first)
    assert summary.rows["schools"] == populated["sample_schools"] + 3
    assert summary.rows["api_clients"] == 2
    assert summary.rows["idempotency_keys"] == 1
    assert summary.rows["standards_versions"] == 3
    header = json.loads(first.read_text(encoding="utf-8").splitlines()[0])
    assert header["public"] is False and header["schema_revision"]
    assert set(header["tables"]) == {t.name for t in metadata.sorted_tables}

    target = make_engine(second_db_url)
    try:
        restored = import_from_file(target, first)
        assert restored.rows == {k: v for k, v in summary.rows.items() if v}
        second = tmp_path / "second.jsonl"
        export_to_file(target, second)
        assert _rows(second) == _rows(first)  # every row, every column, byte for byte
        # Counters and sequences carry on where the original stopped.
        last = max(json.loads(line)["row"]["sequence"] for line in _rows(first) if '"table":"events"' in line)
        for s in session_scope(target):
            assert emit(s, "school.updated", {"id": "sch_x"}).sequence == last + 1
            entry = audit.record(s, actor="cli", action="after.import")
            s.flush()
            assert entry.id is not None and entry.id > summary.rows["audit_log"]
    finally:
        target.dispose()

    # The restored database serves the same data through the API.
    app = create_app(settings.model_copy(update={"database_url": second_db_url}))
    with TestClient(app, base_url=BASE_URL) as c:
        school = c.get(f"/v1/schools/{populated['Zen Zürich']}")
        assert school.status_code == 200 and school.json()["name"] == "Zen Zürich"
        assert c.get("/v1/standards/training-standards/current").json()["version"] == "2.0"


def test_export_file_is_readable_by_its_owner_only(
    populated: dict[str, Any], engine: Any, tmp_path: Path
) -> None:
    path = tmp_path / "backup.jsonl"
    path.write_text("old")
    os.chmod(path, 0o644)
    export_to_file(engine, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".backup")] == []  # no temp file left
    public = tmp_path / "public.jsonl"
    export_to_file(engine, public, public=True)
    assert stat.S_IMODE(public.stat().st_mode) == 0o600


def test_public_export_has_no_private_data(populated: dict[str, Any], engine: Any, tmp_path: Path) -> None:
    path = tmp_path / "public.jsonl"
    export_to_file(engine, path, public=True)
    text = path.read_text(encoding="utf-8")
    header = json.loads(text.splitlines()[0])
    assert header["public"] is True
    rows = [json.loads(line) for line in text.splitlines()[1:-1]]
    tables = {r["table"] for r in rows}
    assert not tables & {"api_clients", "audit_log", "idempotency_keys"}
    assert not [t for t in tables if t.startswith("webhook")]
    for secret in (CONTACT_EMAIL, CONTACT_PHONE, "secret_hash", "argon2", "cli_x"):
        assert secret not in text
    schools = [r["row"] for r in rows if r["table"] == "schools"]
    names = {s["name"] for s in schools}
    assert {"Zen Zürich", "東京マインドフルネス"} <= names
    assert "Māori Mindfulness" not in names  # delisted: left out
    assert all(s["listing"] == "listed" for s in schools)
    assert all("contact" not in s for s in schools)
    versions = [r["row"] for r in rows if r["table"] == "standards_versions"]
    assert sorted(v["version"] for v in versions) == ["1.0", "2.0"]  # the draft left out
    version_ids = {v["id"] for v in versions}
    for r in rows:  # nothing that belongs to the draft either
        if "version_id" in r["row"]:
            assert r["row"]["version_id"] in version_ids
    delisted = populated["Māori Mindfulness"]
    assert not [r for r in rows if r["row"].get("school_id") == delisted]
    assert any(r["table"] == "events" for r in rows)


def test_import_refusals(
    populated: dict[str, Any], engine: Any, second_db_url: str, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    full = tmp_path / "full.jsonl"
    export_to_file(engine, full)
    target = make_engine(second_db_url)
    try:
        public = tmp_path / "public.jsonl"
        export_to_file(engine, public, public=True)
        with pytest.raises(BackupError, match="public export"):
            import_from_file(target, public)
        cut = tmp_path / "cut.jsonl"
        cut.write_text("\n".join(full.read_text(encoding="utf-8").splitlines()[:-1]) + "\n", encoding="utf-8")
        with pytest.raises(BackupError, match="cut short"):
            import_from_file(target, cut)
        lines = full.read_text(encoding="utf-8").splitlines()
        header = json.loads(lines[0])
        header["schema_revision"] = "1999_01_01_0000_other"
        other = tmp_path / "other.jsonl"
        other.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n", encoding="utf-8")
        with pytest.raises(BackupError, match="schema revision"):
            import_from_file(target, other)
        not_ours = tmp_path / "x.jsonl"
        not_ours.write_text('{"hello": 1}\n')
        with pytest.raises(BackupError, match="not an imi-backup"):
            import_from_file(target, not_ours)
        assert _count(second_db_url, "schools") == 0  # every refusal changed nothing
    finally:
        target.dispose()
    # The source database is not empty: the CLI refuses unless told to replace.
    refused = cli("import", str(full))
    assert refused.exit_code == 2
    assert "not empty" in refused.stderr
    replaced = cli("import", "--replace", str(full))
    assert replaced.exit_code == 0, replaced.output
    assert json.loads(replaced.stdout)["rows"]["schools"] == populated["sample_schools"] + 3
    exported = cli("export", str(tmp_path / "cli.jsonl"))
    assert exported.exit_code == 0, exported.output
    # The same rows, but every change generation moved past what a running process may have read.
    generations = [r for r in _rows(full) if r.startswith('{"table":"change_generations"')]
    assert generations
    assert [
        r for r in _rows(tmp_path / "cli.jsonl") if not r.startswith('{"table":"change_generations"')
    ] == [r for r in _rows(full) if r not in generations]
    moved = {
        row["row"]["domain"]: row["row"]["generation"]
        for row in map(json.loads, _rows(tmp_path / "cli.jsonl"))
        if row.get("table") == "change_generations"
    }
    for row in map(json.loads, generations):
        assert moved[row["row"]["domain"]] > row["row"]["generation"]


def test_cli_round_trip_of_thousands_of_schools(
    engine: Any,
    settings: Any,
    second_db_url: str,
    tmp_path: Path,
    cli: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``imi-api export`` then ``imi-api import`` of 1,200 schools (the issue 14 round trip at a
    ``make test`` size; ``bench scale`` runs it at 100,000): several export cursor batches and
    import insert batches per table, and the restored database holds the same rows."""
    schools = 1_200  # > 2 × BATCH_ROWS: batch boundaries on both sides, in every per-school table
    assert schools > 2 * BATCH_ROWS
    insert_schools(engine, schools, base_url=BASE_URL)
    leaves, entries = backfill(settings)  # the log's leaves and status list entries travel too
    assert leaves >= schools and entries == schools

    first = tmp_path / "first.jsonl"
    exported = cli("export", str(first))
    assert exported.exit_code == 0, exported.output
    counts = json.loads(exported.stdout)["rows"]
    assert counts["schools"] == schools and counts["events"] >= schools
    assert counts["school_terms"] > BATCH_ROWS and counts["log_nodes"] > BATCH_ROWS

    monkeypatch.setenv("IMI_DATABASE_URL", second_db_url)
    get_settings.cache_clear()
    imported = cli("import", str(first))
    assert imported.exit_code == 0, imported.output
    assert json.loads(imported.stdout)["rows"] == {k: v for k, v in counts.items() if v}
    for table, count in counts.items():
        assert _count(second_db_url, table) == count, table
    second = tmp_path / "second.jsonl"
    again = cli("export", str(second))
    assert again.exit_code == 0, again.output
    assert _rows(second) == _rows(first)  # every row, every column, byte for byte

    app = create_app(settings.model_copy(update={"database_url": second_db_url}))
    with TestClient(app, base_url=BASE_URL) as c:
        listed = c.get("/v1/schools", params={"limit": 1})
        assert listed.status_code == 200, listed.text
        school = listed.json()["data"][0]
        assert c.get(f"/v1/schools/{school['id']}").json()["name"] == school["name"]


def test_a_restore_under_a_running_service_is_served_within_the_poll(
    populated: dict[str, Any],
    client: TestClient,
    engine: Any,
    auth: Callable[..., dict[str, str]],
    tmp_path: Path,
    cli: Callable[..., Any],
) -> None:
    """``imi-api import --replace`` under a serving API: the restore moves every change domain
    past what the process read, so its cached reads (search page, snapshot, the name index of
    ``/v1/verify``) follow within the 0.5 s poll. Restored counters could equal the ones the
    process last read, and it kept serving the replaced data (the snapshot for an hour)."""
    from tests.helpers import wait_for

    full = tmp_path / "full.jsonl"
    export_to_file(engine, full)
    school = populated["Zen Zürich"]
    before = client.get("/v1/snapshot").json()["sequence"]
    r = client.patch(
        f"/v1/schools/{school}",
        json={"name": "Stiller Zen Garten"},
        headers={**auth("registry:write"), "If-Match": client.get(f"/v1/schools/{school}").headers["etag"]},
    )
    assert r.status_code == 200, r.text

    def names(q: str) -> list[str]:
        return [s["name"] for s in client.get("/v1/schools", params={"q": q}).json()["data"]]

    def verified(name: str) -> list[str]:
        return [m["school"]["name"] for m in client.get("/v1/verify", params={"name": name}).json()["data"]]

    assert (
        names("stiller") == ["Stiller Zen Garten"]
        and verified("Stiller Zen Garten")[0] == "Stiller Zen Garten"
    )
    assert client.get("/v1/snapshot").json()["sequence"] == before + 1
    replaced = cli("import", "--replace", str(full))
    assert replaced.exit_code == 0, replaced.output
    wait_for(lambda: client.get("/v1/snapshot").json()["sequence"] == before, timeout=5.0, what="snapshot")
    assert names("stiller") == [] and names("zen zurich") == ["Zen Zürich"]
    assert "Stiller Zen Garten" not in verified("Stiller Zen Garten")
    assert verified("Zen Zürich")[0] == "Zen Zürich"


def test_import_of_a_damaged_or_unreadable_file_says_what_and_where_in_one_line(
    populated: dict[str, Any], engine: Any, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    """Raw decoder messages ("Expecting value: line 1 column 1", a utf-8 codec error, errno
    text) named neither the file's line nor what to do; each case is now one line, exit 2."""
    import gzip

    full = tmp_path / "full.jsonl"
    export_to_file(engine, full)
    lines = full.read_text(encoding="utf-8").splitlines()
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join([*lines[:40], lines[40][:25], *lines[41:]]) + "\n", encoding="utf-8")
    zipped = tmp_path / "full.jsonl.gz"
    zipped.write_bytes(gzip.compress(full.read_bytes()))
    cases = {
        cut: "line 41, column ",
        zipped: "not a text file",
        tmp_path: "is a folder",
        tmp_path / "missing.jsonl": "cannot be read (No such file or directory)",
    }
    for path, said in cases.items():
        refused = cli("import", "--replace", str(path))
        assert refused.exit_code == 2, (path, refused.output)
        assert said in refused.stderr and "Traceback" not in refused.output, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
