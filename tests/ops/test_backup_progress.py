"""``imi-api export`` / ``import`` draw a progress bar on a terminal, and nothing into a pipe.

The commands run as real processes: once with stderr on a pseudo-terminal (as an operator
sees them), once with stderr on a pipe (as a cron job or a log collector sees them).
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from service.core.db import make_engine
from service.sample.loader import load_sample

ROOT = Path(__file__).resolve().parents[2]
IMI_API = str(Path(sys.executable).parent / "imi-api")


def _run(args: list[str], env: dict[str, str], *, terminal: bool) -> tuple[int, str, str]:
    """Run ``imi-api args``; ``(exit status, stdout, stderr)`` with stderr on a terminal or a pipe."""
    if not terminal:
        done = subprocess.run(
            [IMI_API, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        return done.returncode, done.stdout, done.stderr
    controller, tty = pty.openpty()
    proc = subprocess.Popen([IMI_API, *args], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=tty)
    os.close(tty)
    seen = b""
    while True:
        ready, _, _ = select.select([controller], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the process ended
            break
        if not chunk:
            break
        seen += chunk
    out = proc.stdout.read().decode() if proc.stdout else ""
    os.close(controller)
    return proc.wait(timeout=60), out, seen.decode(errors="replace")


@pytest.fixture
def env(settings: Any, tmp_path: Path) -> dict[str, str]:
    engine = make_engine(settings.database_url)
    load_sample(engine=engine, settings=settings)
    engine.dispose()
    return {
        **os.environ,
        "IMI_DATABASE_URL": settings.database_url,
        "IMI_KEYS_DIR": str(settings.keys_dir),
        "COLUMNS": "120",
        "TERM": "xterm",
    }


def test_a_terminal_sees_a_progress_bar_and_a_pipe_does_not(
    env: dict[str, str], tmp_path: Path, second_db_url: str
) -> None:
    backup = tmp_path / "backup.jsonl"
    status, out, err = _run(["export", str(backup)], env, terminal=True)
    assert status == 0, err
    total = json.loads(out)["total"]
    assert total > 100
    assert "exporting to backup.jsonl" in err and "100%" in err
    assert f"{total:,}/{total:,} rows" in err

    status, out, err = _run(["export", str(tmp_path / "quiet.jsonl")], env, terminal=False)
    assert status == 0 and json.loads(out)["total"] == total
    assert "exporting" not in err and "\x1b[" not in err  # no bar, no escape codes in a pipe

    # Import into a second, empty database on the same backend.
    target = second_db_url
    size = backup.stat().st_size
    status, out, err = _run(["import", str(backup)], {**env, "IMI_DATABASE_URL": target}, terminal=True)
    assert status == 0, err
    assert json.loads(out)["total"] == total
    assert "importing backup.jsonl" in err and "100%" in err
    assert f"{size:,}/{size:,} bytes" in err
