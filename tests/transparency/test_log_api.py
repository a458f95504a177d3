"""The transparency log through its HTTP API, checked by the independent verifier: every
event is a leaf, every tree size up to 64 has the right root, every inclusion and
consistency proof verifies; hostile requests are clear 4xx answers that change nothing."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from service.core.db import transaction
from service.core.jsonutil import dumps
from service.ops import retention
from service.transparency import log, service
from tests.conftest import assert_problem
from tests.transparency import verifier


def _b64(items: list[str]) -> list[bytes]:
    return [base64.b64decode(h, validate=True) for h in items]


def test_every_size_up_to_64_verifies_independently(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    checkpoint: Callable[..., tuple[int, bytes, str]],
    feed: Callable[[], list[dict[str, Any]]],
    engine: Any,
) -> None:
    for i in range(64):
        make_school(name=f"Escuela {i} Ñandú", country="AR")
    items = feed()
    assert [e["sequence"] for e in items] == list(range(1, 65))
    assert [e["log_index"] for e in items] == list(range(64))
    inputs = [verifier.leaf_of_feed_item(e) for e in items]

    # The leaves are exactly the feed items (without log_index), canonicalised.
    page = client.get("/v1/log/leaves", params={"start": 0, "end": 64})
    assert page.status_code == 200
    data = page.json()["data"]
    assert [d["index"] for d in data] == list(range(64))
    metrics = client.get("/metrics").text
    assert "imi_log_tree_size 64.0" in metrics and "imi_events_last_sequence 64.0" in metrics
    assert [base64.b64decode(d["leaf"]) for d in data] == inputs
    assert [base64.b64decode(d["leaf_hash"]) for d in data] == [verifier.sha(b"\x00" + x) for x in inputs]

    roots = [verifier.mth(inputs[:n]) for n in range(65)]
    size, root, _ = checkpoint()
    assert (size, root) == (64, roots[64])

    def check_inclusion(body: dict[str, Any], sequence: int, size: int) -> None:
        assert (body["index"], body["tree_size"]) == (sequence - 1, size)
        leaf = base64.b64decode(body["leaf_hash"])
        assert leaf == verifier.sha(b"\x00" + inputs[sequence - 1])
        assert verifier.verify_inclusion(sequence - 1, size, leaf, _b64(body["proof"]), roots[size])

    def check_consistency(body: dict[str, Any], first: int, size: int) -> None:
        assert (body["from"], body["to"]) == (first, size)
        assert verifier.verify_consistency(first, size, roots[first], roots[size], _b64(body["proof"]))

    # Every pair, through the functions the routes call (one read transaction: fast) ...
    with transaction(engine, readonly=True) as session:
        for size in range(1, 65):
            for sequence in range(1, size + 1):
                check_inclusion(
                    service.inclusion(session=session, sequence=sequence, size=size), sequence, size
                )
                body = service.consistency(session=session, first=sequence, second=size)
                check_consistency(json.loads(dumps(body)), sequence, size)
    # ... and every size over HTTP: its checkpoint, the first, middle and last leaves, and
    # consistency from the smallest, middle and previous sizes.
    for size in range(1, 65):
        assert checkpoint(size)[:2] == (size, roots[size])
        for sequence in sorted({1, (size + 1) // 2, size}):
            r = client.get("/v1/log/proof/inclusion", params={"sequence": sequence, "size": size})
            assert r.status_code == 200, r.text
            check_inclusion(r.json(), sequence, size)
        for first in sorted({1, size // 2 or 1, max(size - 1, 1)}):
            r = client.get("/v1/log/proof/consistency", params={"from": first, "to": size})
            assert r.status_code == 200, r.text
            check_consistency(r.json(), first, size)


def test_checkpoint_format_key_and_caching(
    client: TestClient, make_school: Callable[..., dict[str, Any]], log_vkey: str
) -> None:
    empty = client.get("/v1/log/checkpoint")
    assert empty.status_code == 200
    origin = "testserver/v1/log"
    lines = empty.text.split("\n")
    # C2SP tlog-checkpoint: origin, size, base64 root, a blank line, signature lines.
    assert lines[:4] == [origin, "0", base64.b64encode(verifier.sha(b"")).decode(), ""]
    assert lines[4].startswith(f"\u2014 {origin} ") and lines[5:] == [""]
    assert empty.headers["cache-control"] == "public, no-cache"
    again = client.get("/v1/log/checkpoint", headers={"If-None-Match": empty.headers["etag"]})
    assert again.status_code == 304

    key = client.get("/v1/log/key").json()
    assert key["origin"] == key["key_name"] == origin and key["algorithm"] == "Ed25519"
    name, key_id, sig_type, public = verifier.parse_vkey(key["vkey"])
    assert (name, sig_type, base64.b64encode(public).decode()) == (origin, 0x01, key["public_key"])
    assert key_id.hex() == key["key_id"] and key["witnesses"] == []

    make_school(name="Kaiako")  # a new event: a new checkpoint, at once
    grown = client.get("/v1/log/checkpoint", headers={"If-None-Match": empty.headers["etag"]})
    assert grown.status_code == 200
    assert grown.text.split("\n")[1] == "1" and verifier.log_signature_ok(grown.text, log_vkey)
    # The checkpoint of a size is the same whenever asked (Ed25519 signatures are deterministic).
    assert client.get("/v1/log/checkpoint", params={"size": 0}).text == empty.text


def test_feed_items_and_webhook_bodies_carry_their_leaf(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    engine: Any,
    auth: Callable[..., dict[str, str]],
) -> None:
    endpoint = {"url": "http://127.0.0.1:9/imi-webhook", "description": "a receiver"}
    assert (
        client.post("/v1/webhooks/endpoints", json=endpoint, headers=auth("webhooks:manage")).status_code
        == 201
    )
    school = make_school(name="Ōtautahi Mindfulness", country="NZ")
    item = client.get("/v1/events").json()["data"][0]
    assert item["log_index"] == 0 and item["data"]["id"] == school["id"]
    with transaction(engine, readonly=True) as session:
        assert session.execute(sa.text("SELECT count(*) FROM log_nodes WHERE level = 0")).scalar() == 1
        stored = session.execute(sa.text("SELECT hash FROM log_nodes WHERE level = 0")).scalar()
        body = session.execute(sa.text("SELECT body FROM webhook_messages")).scalar()
    assert bytes(stored) == verifier.sha(b"\x00" + verifier.leaf_of_feed_item(item))
    assert json.loads(body) == item  # the webhook body is the feed item, log_index included


BAD_REQUESTS = [
    ("/v1/log/proof/inclusion", {"sequence": 0, "size": 3}),
    ("/v1/log/proof/inclusion", {"sequence": 4, "size": 3}),
    ("/v1/log/proof/inclusion", {"sequence": 1, "size": 4}),
    ("/v1/log/proof/inclusion", {"sequence": 1, "size": 10**30}),
    ("/v1/log/proof/inclusion", {"sequence": "x", "size": 1}),
    ("/v1/log/proof/inclusion", {"size": 1}),
    ("/v1/log/proof/consistency", {"from": 0, "to": 3}),
    ("/v1/log/proof/consistency", {"from": 3, "to": 2}),
    ("/v1/log/proof/consistency", {"from": 1, "to": 9_223_372_036_854_775_807}),
    ("/v1/log/proof/consistency", {"from": -1, "to": 2}),
    ("/v1/log/leaves", {"start": 0, "end": 0}),
    ("/v1/log/leaves", {"start": 2, "end": 1}),
    ("/v1/log/leaves", {"start": 0, "end": 4}),
    ("/v1/log/leaves", {"start": 0, "end": 100_000}),
    ("/v1/log/leaves", {"start": 0, "end": 10**25}),
    ("/v1/log/checkpoint", {"size": 4}),
    ("/v1/log/checkpoint", {"size": -1}),
    # Numbers written loosely are not guessed at: "1_0" would otherwise read as 10.
    ("/v1/log/proof/inclusion", {"sequence": "1_0", "size": 3}),
    ("/v1/log/proof/inclusion", {"sequence": "1.0", "size": 3}),
    ("/v1/log/proof/inclusion", {"sequence": " 1", "size": 3}),
    ("/v1/log/proof/inclusion", {"sequence": "+1", "size": 3}),
    ("/v1/log/proof/inclusion", {"sequence": "1", "size": "\u0663"}),  # Arabic-Indic 3
    ("/v1/log/proof/consistency", {"from": "1", "to": "2e0"}),
    ("/v1/log/leaves", {"start": "0_0", "end": 2}),
    ("/v1/log/checkpoint", {"size": "2.0"}),
]


def test_hostile_reads_are_clear_422s_that_change_nothing(
    client: TestClient, make_school: Callable[..., dict[str, Any]]
) -> None:
    for i in range(3):
        make_school(name=f"School {i}")
    before = client.get("/v1/log/checkpoint").text
    for path, params in BAD_REQUESTS:
        assert_problem(client.get(path, params=params), 422)
    huge = client.get("/v1/log/leaves", params={"start": 0, "end": 257})
    assert assert_problem(huge, 422)["max_leaves"] == 256
    assert assert_problem(client.get("/v1/log/checkpoint", params={"size": 4}), 422)["tree_size"] == 3
    assert client.get("/v1/log/checkpoint").text == before
    # A proof asked for too early works once the log has grown.
    make_school(name="School 3")
    assert client.get("/v1/log/proof/inclusion", params={"sequence": 1, "size": 4}).status_code == 200


def test_retention_prunes_events_never_leaves(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    checkpoint: Callable[..., tuple[int, bytes, str]],
    engine: Any,
) -> None:
    for i in range(5):
        make_school(name=f"School {i}")
    size, root, _ = checkpoint()
    with transaction(engine) as session:
        session.execute(
            sa.text("UPDATE events SET timestamp = :old WHERE sequence <= 3"), {"old": "2000-01-01"}
        )
    with transaction(engine) as session:
        from service.core.db import utcnow

        assert retention.prune_events(session, now=utcnow(), retention_days=400) == 3
    assert client.get("/v1/events").status_code == 410
    assert checkpoint()[:2] == (size, root)
    client.app.state.public_cache.clear()  # type: ignore[attr-defined]
    data = client.get("/v1/log/leaves", params={"start": 0, "end": 5}).json()["data"]
    assert [d["leaf"] is None for d in data] == [True, True, True, False, False]
    r = client.get("/v1/log/proof/inclusion", params={"sequence": 2, "size": 5}).json()
    leaf = base64.b64decode(data[1]["leaf_hash"])
    assert verifier.verify_inclusion(1, 5, leaf, _b64(r["proof"]), root)


def test_a_log_behind_the_events_catches_up(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    feed: Callable[[], list[dict[str, Any]]],
    checkpoint: Callable[..., tuple[int, bytes, str]],
    engine: Any,
) -> None:
    """Events written while the log was off (a database from before the log, a benchmark) are
    appended by the next append or by the backfill ``imi-api migrate`` runs."""
    log.configure(enabled=False)
    try:
        for i in range(5):
            make_school(name=f"Before the log {i}")
    finally:
        log.configure(enabled=True)
    assert checkpoint()[0] == 0
    with transaction(engine) as session:
        assert log.catch_up(session, through=3) == 3
    assert checkpoint()[0] == 3
    make_school(name="After")  # its append fills in events 4 and 5 first
    inputs = [verifier.leaf_of_feed_item(e) for e in feed()]
    assert checkpoint()[:2] == (6, verifier.mth(inputs))
    with transaction(engine) as session:
        assert log.catch_up(session) == 0


def test_a_rewritten_past_breaks_consistency(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    checkpoint: Callable[..., tuple[int, bytes, str]],
    engine: Any,
) -> None:
    """Someone who rewrites an event and rebuilds the tree cannot prove the new tree extends a
    checkpoint a verifier kept."""
    for i in range(6):
        make_school(name=f"School {i}")
    old_size, old_root, _ = checkpoint()
    with transaction(engine) as session:
        row = session.execute(sa.text("SELECT id, data FROM events WHERE sequence = 2")).first()
        data = row[1] if isinstance(row[1], dict) else json.loads(row[1])
        data["name"] = "A rewritten past"
        session.execute(
            sa.text("UPDATE events SET data = :d WHERE sequence = 2"),
            {"d": json.dumps(data, ensure_ascii=False)},
        )
        session.execute(sa.text("DELETE FROM log_nodes"))
        assert log.catch_up(session) == 6  # the forger rebuilds every hash
    make_school(name="School 6")
    client.app.state.public_cache.clear()  # type: ignore[attr-defined]
    new_size, new_root, _ = checkpoint()
    assert checkpoint(old_size)[1] != old_root
    r = client.get("/v1/log/proof/consistency", params={"from": old_size, "to": new_size}).json()
    assert not verifier.verify_consistency(old_size, new_size, old_root, new_root, _b64(r["proof"]))


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/v1/log/checkpoint", ""),
        ("/v1/log/key", ""),
        ("/v1/log/proof/inclusion", "?sequence=1&size=2"),
        ("/v1/log/proof/consistency", "?from=1&to=2"),
        ("/v1/log/leaves", "?start=0&end=2"),
        ("/v1/status-lists/{list_id}", ""),
    ],
)
def test_log_reads_answer_head_and_conditional_requests(
    client: TestClient, make_school: Callable[..., dict[str, Any]], path: str, query: str
) -> None:
    make_school(name="School 0")
    make_school(name="School 1")
    url = path.replace("{list_id}", "1") + query
    first = client.get(url)
    assert first.status_code == 200, first.text
    assert client.head(url).headers["etag"] == first.headers["etag"]
    assert client.get(url, headers={"If-None-Match": first.headers["etag"]}).status_code == 304
    # ... and the OpenAPI document says so, with what a 200 holds.
    responses = client.get("/openapi.json").json()["paths"][path]["get"]["responses"]
    assert "If-None-Match" in responses["304"]["description"]
    assert responses["200"]["description"] != "Successful Response"


def test_upgrading_a_database_from_before_the_log(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    feed: Callable[[], list[dict[str, Any]]],
    cli: Callable[..., Any],
    engine: Any,
    db_url: str,
) -> None:
    """``imi-api migrate`` on a database at the previous revision creates the tables, appends
    every event to the log and places every school in a status list."""
    from alembic import command

    from service.core.db import alembic_config

    for i in range(5):
        make_school(name=f"School {i}")
    items = feed()
    engine.dispose()
    command.downgrade(alembic_config(db_url), "0007_sync")
    result = cli("migrate")
    assert result.exit_code == 0, result.output
    assert "5 event(s) appended; status lists: 5 school(s) placed" in result.stderr
    with transaction(engine, readonly=True) as session:
        assert log.tree_size(session) == 5
        assert log.root_at(session, 5) == verifier.mth([verifier.leaf_of_feed_item(e) for e in items])
        assert session.execute(sa.text("SELECT count(*) FROM status_list_entries")).scalar() == 5
    assert "appended" not in cli("migrate").stderr  # nothing more to do


def test_a_separate_process_loading_the_sample_data_appends_every_event(
    db_url: str, keys_dir: Any, engine: Any
) -> None:
    """Listeners register by import: a CLI process that writes events must import the log."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "IMI_DATABASE_URL": db_url, "IMI_KEYS_DIR": str(keys_dir)}
    subprocess.run(
        [sys.executable, "-m", "service.cli", "load-sample"], env=env, check=True, capture_output=True
    )
    with transaction(engine, readonly=True) as session:
        last = session.execute(sa.text("SELECT value FROM event_counter")).scalar()
        assert last and log.tree_size(session) == last


def test_node_reads_search_the_primary_key(engine: Any) -> None:
    """No proof reads the whole table: on SQLite every term of the node query is an index search
    (a row-value IN list was a full scan: 200 ms a proof at a million leaves)."""
    from service.transparency import merkle

    ranges = merkle.consistency_ranges(777_777, 1_000_000)
    query = log.nodes_query(merkle.nodes_of(ranges) | {(0, 5)})
    assert query is not None
    with transaction(engine, readonly=True) as session:
        if engine.dialect.name != "sqlite":
            pytest.skip("the planner of an empty PostgreSQL table says nothing about a large one")
        sql = str(query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
        plan = " ".join(str(row[-1]) for row in session.execute(sa.text("EXPLAIN QUERY PLAN " + sql)))
    assert "SCAN" not in plan and "SEARCH log_nodes USING PRIMARY KEY" in plan, plan


def test_keys_generate_prepares_the_log_key(cli: Callable[..., Any], log_vkey: str, tmp_path: Any) -> None:
    """A read-only mounted keys folder is prepared ahead: the log key is made with the others,
    and a folder without it that cannot be written says what to do."""
    result = cli("keys", "generate")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["log_vkey"] == log_vkey
    from service.core.config import Settings
    from service.transparency.signer import load_signer

    unwritable = tmp_path / "a-file"  # (the tests run as root: no mode bit stops them)
    unwritable.write_text("")
    with pytest.raises(RuntimeError, match="imi-api keys generate"):
        load_signer(Settings(keys_dir=unwritable))
