"""Two replicas on one database and concurrent writes (schools, alignment, publishes): the
tree always equals the event sequence, leaf for leaf, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.core.config import Settings
from service.main import create_app
from tests.conftest import BASE_URL
from tests.helpers import SLUG, publish_version, wait_for
from tests.registry.conftest import EVIDENCE
from tests.transparency import verifier


@pytest.fixture
def replica_b(settings: Settings) -> Iterator[TestClient]:
    """A second replica: its own app, cache and engine on the same database and keys."""
    with TestClient(create_app(settings), base_url=BASE_URL, raise_server_exceptions=False) as c:
        yield c


def test_two_replicas_and_concurrent_writes_keep_the_tree_equal_to_the_sequence(
    client: TestClient,
    replica_b: TestClient,
    steward: dict[str, str],
    editor: dict[str, str],
    feed: Callable[[], list[dict[str, Any]]],
) -> None:
    replicas = [client, replica_b]
    publish_version(client, f"/v1/standards/{SLUG}/versions", editor, "1.0", new_document=True)
    for version in ("1.1", "2.0"):  # drafts to publish while schools are written
        r = client.post(
            f"/v1/standards/{SLUG}/versions", json={"version": version, "based_on": "1.0"}, headers=editor
        )
        assert r.status_code == 201, r.text
    for http in replicas:
        # First requests build FastAPI's per-route state lazily, which is not thread-safe when a
        # new app's first requests come from several threads at once (uvicorn serves them on one
        # event loop): warm each route on each replica first.
        school = http.post("/v1/schools", json={"name": "Warm-up", "country": "DE"}, headers=steward).json()
        http.post(f"/v1/schools/{school['id']}/alignment", json={}, headers=steward)
        http.post(f"/v1/standards/{SLUG}/versions/9.9/publish", headers=editor)
        http.get("/v1/log/checkpoint")
    barrier = threading.Barrier(5)
    halfway = [threading.Event() for _ in range(4)]

    def schools(worker: int) -> int:
        http = replicas[worker % 2]
        barrier.wait()
        done = 0
        for i in range(8):
            if i == 4:
                halfway[worker].set()  # the publishes start now, beside the remaining writes
            r = http.post(
                "/v1/schools", json={"name": f"W{worker} school {i}", "country": "DE"}, headers=steward
            )
            assert r.status_code == 201, r.text
            statement = {"version": "1.0", "evidence_url": EVIDENCE, "stated_by": "Director"}
            state = http.post(f"/v1/schools/{r.json()['id']}/alignment", json=statement, headers=steward)
            done += 1 + (state.status_code == 200)  # 422 once 2.0 is out: then no event
        return done

    def publishes(_: int) -> int:
        barrier.wait()
        for event in halfway:
            assert event.wait(60)
        codes = [
            replicas[n % 2].post(f"/v1/standards/{SLUG}/versions/{v}/publish", headers=editor).status_code
            for n, v in enumerate(("1.1", "2.0"))
        ]
        assert codes == [200, 200]
        return 2

    with ThreadPoolExecutor(5) as pool:
        futures = [pool.submit(schools, w) for w in range(4)] + [pool.submit(publishes, 4)]
        for f in futures:
            f.result()

    items = feed()
    n = len(items)
    assert [e["sequence"] for e in items] == list(range(1, n + 1))  # gap-free
    assert n >= 1 + 2 + 4 * 8 + 4 * 4 + 2  # publish, warm-ups, schools, statements before 2.0, publishes
    inputs = [verifier.leaf_of_feed_item(e) for e in items]
    root = verifier.mth(inputs)
    for http in replicas:  # the other replica sees it within its poll interval
        note = wait_for(
            lambda http=http: (t := http.get("/v1/log/checkpoint").text).split("\n")[1] == str(n) and t,
            timeout=5.0,
            what="the checkpoint on both replicas",
        )
        assert verifier.checkpoint_fields(verifier.split_note(note)[0])[1:] == (n, root)
    for start in range(0, n, 256):
        data = client.get("/v1/log/leaves", params={"start": start, "end": min(n, start + 256)}).json()[
            "data"
        ]
        for d in data:
            assert base64.b64decode(d["leaf"]) == inputs[d["index"]]
            assert base64.b64decode(d["leaf_hash"]) == verifier.sha(b"\x00" + inputs[d["index"]])
    for first in (1, n // 3, n // 2, n - 1):
        proof = replica_b.get("/v1/log/proof/consistency", params={"from": first, "to": n}).json()["proof"]
        hashes = [base64.b64decode(h) for h in proof]
        assert verifier.verify_consistency(first, n, verifier.mth(inputs[:first]), root, hashes)
