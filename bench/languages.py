"""Issue 16's negotiation on issue 11's reads: what ``Accept-Language`` costs a cached read.

The badge, the schools feed and the current standards (for comparison: negotiated since
issue 16) are read from the real service on the sample data (SQLite) three ways, side by
side in the same run, every request with a query string of its own (``?n=1``, ``?n=2``, …)
so that none is answered by the front's memo of request signatures and each one is routed,
its language chosen and its key made (then it is a hit of the public-representation cache):

- ``?lang=de`` — the language in the URL: nothing to negotiate (the baseline);
- ``Accept-Language: de-CH,de;q=0.9,en;q=0.8`` — a browser's header, negotiated;
- a different spelling of German in every request — the header parsed afresh each time.

wrk alternates between the forms :data:`RUNS` times; each figure is the median requests/s.
Target: a negotiated read at ≥ 0.9 × the ``?lang=`` read.
"""

from __future__ import annotations

import os
import statistics
import subprocess
from pathlib import Path

import httpx

from bench.common import PYTHON, ROOT, Row, prepare_sample_database, temp_dir, uvicorn_server, wrk

RUNS = int(os.environ.get("BENCH_LANGUAGES_RUNS", "3"))
SECONDS = int(os.environ.get("BENCH_LANGUAGES_SECONDS", "3"))
TARGET = 0.9
BROWSER = "de-CH,de;q=0.9,en;q=0.8"
#: wrk scripts: a query string of its own per request, and the form's Accept-Language.
SCRIPT = """
local n = 0
request = function()
  n = n + 1
  local path = wrk.path .. SEPARATOR .. "n=" .. n
  return wrk.format("GET", path, HEADERS(n))
end
"""
FORMS = {
    "lang": ("lang=de&", "function(n) return {} end"),
    "header": ("", f'function(n) return {{["Accept-Language"] = "{BROWSER}"}} end'),
    "unique": (
        "",
        'function(n) return {["Accept-Language"] = "de-CH;q=0.9, zz-" .. n .. ";q=0.5, en;q=0.1"} end',
    ),
}


def _script(folder: Path, form: str, path: str) -> str:
    """A wrk script for ``form`` reading ``path``; returns its file name."""
    prefix, headers = FORMS[form]
    separator = "&" if "?" in path else "?"
    text = SCRIPT.replace("SEPARATOR", f'"{separator}{prefix}"').replace("HEADERS(n)", f"({headers})(n)")
    file = folder / f"{form}-{abs(hash(path))}.lua"
    file.write_text(text)
    return str(file)


def _school_id(env: dict[str, str]) -> str:
    code = """
import sqlalchemy as sa
from service.core.config import get_settings
from service.core.db import make_engine
e = make_engine(get_settings().database_url)
q = "SELECT id FROM schools WHERE alignment_status = 'aligned' ORDER BY id LIMIT 1"
with e.connect() as c:
    print(c.execute(sa.text(q)).scalar_one())
"""
    out = subprocess.run(
        [PYTHON, "-c", code], cwd=ROOT, env={**os.environ, **env}, check=True, capture_output=True, text=True
    ).stdout
    return out.strip().splitlines()[-1]


def run() -> list[Row]:
    rows: list[Row] = []
    with temp_dir() as tmp:
        env = prepare_sample_database(tmp)
        school = _school_id(env)
        reads = {
            "badge": f"/v1/schools/{school}/badge.svg",
            "schools feed": "/v1/feeds/schools.atom",
            "standards current": "/v1/standards/training-standards/current",
        }
        with uvicorn_server("service.main:app_from_env", env=env, ready_path="/healthz", quiet=True) as app:
            for name, path in reads.items():
                check = httpx.get(app.base + path, headers={"Accept-Language": BROWSER})
                assert check.status_code == 200 and check.headers["content-language"] == "de", check.headers
                scripts = {form: _script(tmp, form, path) for form in FORMS}
                wrk(app.base + path, seconds=1, script=scripts["lang"])  # warm-up: the entries are built
                found: dict[str, list[float]] = {form: [] for form in FORMS}
                for _ in range(RUNS):
                    for form, script in scripts.items():
                        found[form].append(wrk(app.base + path, seconds=SECONDS, script=script).rps)
                base = statistics.median(found["lang"])
                rows.append(Row(name=f"{name}, ?lang=de, req/s (median)", value=base, unit="req/s"))
                for form, label in (
                    ("header", "a browser's Accept-Language"),
                    ("unique", "a new spelling each"),
                ):
                    value = statistics.median(found[form])
                    rows.append(
                        Row(
                            name=f"{name}, {label}, req/s (median)",
                            value=value,
                            unit="req/s",
                            baseline=base,
                            ratio=value / base,
                            target=f"≥ {TARGET}",
                            ok=value / base >= TARGET,
                        )
                    )
    return rows
