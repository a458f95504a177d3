"""The open review at scale (issue 10): 5,000 comments on a draft.

- ``GET …/versions/{version}/comments`` with 5,000 comments on the draft; target p99 ≤ 50 ms,
  both from the public-representation cache (16 connections cycling 24 filtered pages) and
  uncached (400 distinct queries, each asked once, one at a time: every one a build from
  the database).
- Publishing a draft whose review gathered 5,000 comments, every one disposed (or withdrawn):
  the time ``POST …/publish`` takes to answer, against publishing the same content without a
  review (today's publish), in the same run. Both are the median of :data:`ROUNDS` publishes of
  separate documents with the same content, interleaved; target ≤ 1.5 × (the bound the other
  ratio targets of this suite use for "as fast as without it" on this noisy machine).

``python -m bench review`` runs it; ``python -m bench.review populate`` (with the ``IMI_*``
environment) fills the database through the service's own functions.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx

from bench.common import PYTHON, ROOT, Row, prepare_sample_database, temp_dir, uvicorn_server, wrk
from bench.registry import _lua

COMMENTS = int(os.environ.get("BENCH_COMMENTS", "5000"))
ROUNDS = int(os.environ.get("BENCH_PUBLISH_ROUNDS", "3"))
UNCACHED = int(os.environ.get("BENCH_UNCACHED_QUERIES", "400"))
LIST_P99_MS = 50.0
PUBLISH_RATIO = 1.5
REGIONS = ["DE", "NL", "GB", "FR", "ES", "IT", "US", "CA", "AU", "JP", "ZA", "150", "142", "419"]
KINDS = ["association", "training_school", "individual", "other"]
OUTCOMES = ["accepted", "accepted_with_changes", "declined", "noted"]
WORDS = (
    "practice retreat supervision teaching pathway assessment ethics participants consent "
    "competence domains inquiry embodiment curriculum hours months trainers regional network"
).split()


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def populate(out: Path) -> None:
    """Documents ``bench-r1…`` (draft 1.0 under review with COMMENTS comments, all disposed or
    withdrawn, review closed) and ``bench-b1…`` (the same draft, no review); an editor client."""
    from service.core.config import get_settings
    from service.core.db import make_engine, transaction
    from service.sample import standards as sample
    from service.security import clients
    from service.security.clients import Principal
    from service.standards import comments, reviews
    from service.standards import service as standards
    from service.standards.review_schemas import CommentCreate, DispositionIn
    from service.standards.schemas import DocumentCreate, DraftReplace

    settings = get_settings()
    engine = make_engine(settings.database_url)
    rng = random.Random(10)
    entry = sample.read("standards_en.json")["versions"][1]
    body = DraftReplace.model_validate(
        {k: entry[k] for k in ("title", "summary", "sections", "regional_notes", "contributors")}
    )
    keys = [c["key"] for s in entry["sections"] for c in s["clauses"]]
    with transaction(engine) as session:
        editor, secret = clients.create_client(
            session=session, name="bench editor", scopes=["standards:write"]
        )
        commenters = []
        for n in range(60):
            c, _ = clients.create_client(
                session=session,
                name=f"bench commenter {n}",
                scopes=["review:comment"],
                organisation=f"Association {n}",
                region=REGIONS[n % len(REGIONS)],
                commenter_type=KINDS[n % len(KINDS)],
            )
            commenters.append(Principal(client_id=c.id, scopes=frozenset({"review:comment"})))
        out.write_text(json.dumps({"client_id": editor.id, "client_secret": secret}))
    slugs = [f"bench-b{n}" for n in range(1, ROUNDS + 1)] + [f"bench-r{n}" for n in range(1, ROUNDS + 1)]
    for slug in slugs:
        with transaction(engine) as session:
            draft = standards.create_draft(
                session=session,
                slug=slug,
                version="1.0",
                new_document=DocumentCreate(title=entry["title"], language="en"),
                actor="bench",
            )
            standards.replace_draft(
                session=session,
                slug=slug,
                version="1.0",
                body=body,
                if_match=draft.json_etag(),
                actor="bench",
            )
            if slug.startswith("bench-r"):
                closes = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
                reviews.open_review(
                    session=session,
                    slug=slug,
                    version="1.0",
                    closes_at=closes,
                    summary_text="",
                    actor="bench",
                    base_url=None,
                )
        if not slug.startswith("bench-r"):
            continue
        ids: list[str] = []
        for start in range(0, COMMENTS, 250):
            with transaction(engine) as session:
                for i in range(start, min(start + 250, COMMENTS)):
                    anchored = rng.random() < 0.85
                    comment = CommentCreate(
                        clause_key=rng.choice(keys) if anchored else None,
                        quote=_sentence(rng, 6) if rng.random() < 0.3 else None,
                        text=" ".join(_sentence(rng, rng.randint(8, 20)) for _ in range(rng.randint(1, 5))),
                        proposed_text=_sentence(rng, 15) if rng.random() < 0.2 else None,
                    )
                    made, _ = comments.create_comment(
                        session=session,
                        slug=slug,
                        version="1.0",
                        body=comment,
                        principal=commenters[i % len(commenters)],
                        base_url=None,
                    )
                    ids.append(made.id)
        withdrawn = set(rng.sample(ids, len(ids) // 50))
        with transaction(engine) as session:
            for cid in withdrawn:
                owner = next(p for p in commenters if p.client_id == _owner(session, cid))
                comments.withdraw_comment(
                    session=session, slug=slug, version="1.0", comment_id=cid, principal=owner
                )
            reviews.close_review(session=session, slug=slug, version="1.0", actor="bench", base_url=None)
        pending = [cid for cid in ids if cid not in withdrawn]
        for start in range(0, len(pending), 250):
            with transaction(engine) as session:
                for cid in pending[start : start + 250]:
                    comments.dispose(
                        session=session,
                        slug=slug,
                        version="1.0",
                        comment_id=cid,
                        body=DispositionIn(outcome=rng.choice(OUTCOMES), response=_sentence(rng, 12)),
                        actor="bench",
                        base_url=None,
                    )
        print(f"  {slug}: {len(ids)} comments, {len(withdrawn)} withdrawn", file=sys.stderr, flush=True)
    engine.dispose()


def _owner(session: object, comment_id: str) -> str:
    from service.standards.models import StandardsComment

    found = session.get(StandardsComment, comment_id)  # type: ignore[attr-defined]
    return str(found.client_id)


def _queries(count: int, keys: list[str]) -> list[str]:
    """``count`` distinct comment-list queries (each its own cache key), deterministic."""
    rng = random.Random(7)
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        params: list[tuple[str, object]] = []
        if rng.random() < 0.6:
            params.append(("clause", rng.choice(keys)))
        if rng.random() < 0.5:
            params.append(("region", rng.choice(REGIONS)))
        if rng.random() < 0.4:
            params.append(("state", rng.choice(["pending", "disposed", "withdrawn"])))
        params.append(("limit", rng.randint(10, 100)))
        query = urlencode(params)
        if query not in seen:
            seen.add(query)
            out.append(query)
    return out


def run() -> list[Row]:
    with temp_dir() as tmp:
        env = prepare_sample_database(tmp)
        began = time.monotonic()
        subprocess.run(
            [PYTHON, "-m", "bench.review", "populate", str(tmp / "editor.json")],
            cwd=ROOT,
            env={**os.environ, **env},
            check=True,
        )
        print(f"  populated in {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
        creds = json.loads((tmp / "editor.json").read_text())
        with uvicorn_server("service.main:app_from_env", env=env, ready_path="/healthz") as app:
            comments = "/v1/standards/bench-r1/versions/1.0/comments"
            first = httpx.get(app.base + comments + "?limit=50")
            first.raise_for_status()
            keys = [
                c["key"]
                for s in httpx.get(app.base + "/v1/standards/bench-r1/versions/1.0").json()["sections"]
                for c in s["clauses"]
            ]
            # uncached: distinct queries, each a build from the database
            times = []
            with httpx.Client(base_url=app.base) as client:
                for query in _queries(UNCACHED, keys):
                    start = time.perf_counter()
                    r = client.get(f"{comments}?{query}")
                    times.append((time.perf_counter() - start) * 1000)
                    r.raise_for_status()
            times.sort()
            # cached: a few pages read over and over
            cursor = first.json()["next_cursor"]
            pages = [
                f"{comments}?limit=50",
                f"{comments}?limit=50&cursor={cursor}",
                *(f"{comments}?clause={k}" for k in keys[:12]),
                *(f"{comments}?region={r}&limit=100" for r in REGIONS[:10]),
            ]
            for p in pages:
                httpx.get(app.base + p).raise_for_status()
            cached = wrk(app.base + "/", connections=16, script=_lua(tmp, pages))
            page_size = len(first.content)
            # publishes, interleaved: today's (no review) and with 5,000 disposed comments
            token = httpx.post(
                app.base + "/v1/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(creds["client_id"], creds["client_secret"]),
            ).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            plain: list[float] = []
            reviewed: list[float] = []
            for n in range(1, ROUNDS + 1):
                for slug, into in ((f"bench-b{n}", plain), (f"bench-r{n}", reviewed)):
                    start = time.perf_counter()
                    r = httpx.post(
                        f"{app.base}/v1/standards/{slug}/versions/1.0/publish", headers=auth, timeout=60
                    )
                    into.append((time.perf_counter() - start) * 1000)
                    r.raise_for_status()
            event = httpx.get(app.base + "/v1/events?type=standards.version.published").json()["data"][-1]
    plain_ms, reviewed_ms = statistics.median(plain), statistics.median(reviewed)
    uncached_p99 = times[int(len(times) * 0.99)]
    ratio = reviewed_ms / plain_ms
    return [
        Row(
            name=f"comments list p99, {COMMENTS:,} comments, cached (16 conns, {page_size // 1024} KB page)",
            value=cached.p99_ms,
            unit="ms",
            target=f"≤ {LIST_P99_MS:.0f}",
            ok=cached.p99_ms <= LIST_P99_MS and cached.non_2xx_3xx == 0,
        ),
        Row(name=f"comments list req/s, {COMMENTS:,} comments, cached", value=cached.rps, unit="req/s"),
        Row(
            name=f"comments list p99, {COMMENTS:,} comments, uncached ({len(times)} distinct q, 1 conn)",
            value=uncached_p99,
            unit="ms",
            target=f"≤ {LIST_P99_MS:.0f}",
            ok=uncached_p99 <= LIST_P99_MS,
        ),
        Row(name="comments list median, uncached", value=statistics.median(times), unit="ms"),
        Row(
            name=f"publish with {COMMENTS:,} disposed comments (median of {ROUNDS})",
            value=reviewed_ms,
            unit="ms",
            baseline=plain_ms,
            ratio=ratio,
            target=f"≤ {PUBLISH_RATIO} × without review",
            ok=ratio <= PUBLISH_RATIO,
        ),
        Row(
            name=f"published event with its change notes ({len(json.dumps(event)) // 1024} KB)",
            value=len(event["data"]["changes"].get("change_notes", {})),
            unit="clauses",
        ),
    ]


if __name__ == "__main__":
    if sys.argv[1:2] == ["populate"]:
        populate(Path(sys.argv[2]))
    else:
        raise SystemExit("usage: python -m bench.review populate EDITOR_JSON  (or: python -m bench review)")
