"""Witnesses: registering them (``imi-api witnesses``), the reference witness of
``examples/witness`` cosigning through the API and refusing forked or rewritten histories,
and every way a posted cosignature is refused without changing anything."""

from __future__ import annotations

import base64
import json
import struct
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from service.core.db import transaction
from service.transparency import log
from tests.conftest import assert_problem
from tests.transparency import verifier

WITNESS_NAME = "witness.verband.example/imi"


def _vkey(witness_module: ModuleType, name: str, private: Ed25519PrivateKey) -> str:
    return str(witness_module.vkey(name, 0x04, witness_module.raw_public(private)))


@pytest.fixture
def register(
    cli: Callable[..., Any], witness_module: ModuleType
) -> Callable[..., tuple[Any, dict[str, Any]]]:
    """``register(name, region)`` -> (a reference witness, what ``witnesses add`` printed)."""
    counter = iter(range(1, 100))

    def run(name: str = "Verband Deutschland", region: str = "de") -> tuple[Any, dict[str, Any]]:
        private = Ed25519PrivateKey.generate()
        key_name = f"{WITNESS_NAME}{next(counter)}"
        result = cli(
            "witnesses",
            "add",
            "--name",
            name,
            "--region",
            region,
            "--key",
            _vkey(witness_module, key_name, private),
        )
        assert result.exit_code == 0, result.output
        return private, key_name, json.loads(result.stdout)

    return run  # type: ignore[return-value]


@pytest.fixture
def make_witness(
    witness_module: ModuleType, log_vkey: str, tmp_path: Path, register: Callable[..., Any]
) -> Callable[..., Any]:
    def make(name: str = "Verband Deutschland", region: str = "de") -> Any:
        private, key_name, described = register(name, region)
        state = tmp_path / f"{described['id']}.json"
        witness = witness_module.Witness(name=key_name, private=private, log_vkey=log_vkey, state=state)
        witness.described = described
        return witness

    return make


def test_witnesses_cosign_and_a_verifier_checks_an_event_offline(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    make_witness: Callable[..., Any],
    feed: Callable[[], list[dict[str, Any]]],
    log_vkey: str,
) -> None:
    de = make_witness("Mindfulness Verband (example)", "de")
    assert (de.described["region"], de.described["latest_cosigned_size"]) == ("DE", None)
    nl = make_witness("Vereniging Mindfulness (example)", "NL")
    for i in range(3):
        make_school(name=f"School {i}")
    assert de.run_once(client).size == 3
    assert nl.run_once(client).size == 3

    note = client.get("/v1/log/checkpoint").text
    assert verifier.log_signature_ok(note, log_vkey)
    stamps = [verifier.cosignatures_ok(note, w.vkey) for w in (de, nl)]
    assert all(s is not None and abs(s - time.time()) < 60 for s in stamps)
    listed = {w["id"]: w for w in client.get("/v1/log/key").json()["witnesses"]}
    assert {w["latest_cosigned_size"] for w in listed.values()} == {3}
    assert listed[de.described["id"]]["vkey"] == de.vkey

    # The log grows; the witnesses check consistency with what they cosigned, and cosign again.
    make_school(name="School 3")
    make_school(name="School 4")
    assert de.run_once(client).size == 5
    assert verifier.cosignatures_ok(client.get("/v1/log/checkpoint").text, de.vkey) is not None
    assert verifier.cosignatures_ok(client.get("/v1/log/checkpoint").text, nl.vkey) is None  # not yet
    old = client.get("/v1/log/checkpoint", params={"size": 3}).text
    assert verifier.cosignatures_ok(old, nl.vkey) is not None

    # Offline: "event 2 is in the log that 2 regional associations have seen".
    item = feed()[1]
    proof = client.get("/v1/log/proof/inclusion", params={"sequence": 2, "size": 3}).json()
    text, _ = verifier.split_note(old)
    _origin, size, root = verifier.checkpoint_fields(text)
    cosigners = [w for w in (de, nl) if verifier.cosignatures_ok(old, w.vkey) is not None]
    assert verifier.log_signature_ok(old, log_vkey) and len(cosigners) == 2
    leaf = verifier.sha(b"\x00" + verifier.leaf_of_feed_item(item))
    proof_hashes = [base64.b64decode(h) for h in proof["proof"]]
    assert verifier.verify_inclusion(item["log_index"], size, leaf, proof_hashes, root)


def _forge(keys_dir: Path, origin: str, size: int, root: bytes) -> str:
    """A checkpoint signed with the log's own key: what a compromised server could show."""
    return _signed(keys_dir, origin, f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n")


def _signed(keys_dir: Path, origin: str, body: str) -> str:
    """``body`` as a note signed with the log's own key, whatever it says."""
    private = serialization.load_pem_private_key((keys_dir / "log" / "ed25519.pem").read_bytes(), None)
    assert isinstance(private, Ed25519PrivateKey)
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    kid = verifier.sha(origin.encode() + b"\n\x01" + public)[:4]
    line = f"\u2014 {origin} {base64.b64encode(kid + private.sign(body.encode())).decode()}\n"
    return body + "\n" + line


def _serving(note: str) -> httpx.Client:
    """A client of a server that answers ``note`` as its checkpoint and records posts."""
    posted: list[bytes] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/log/checkpoint":
            return httpx.Response(200, text=note)
        posted.append(request.content)
        return httpx.Response(200, json={"accepted": []})

    client = httpx.Client(transport=httpx.MockTransport(handle), base_url="http://log.test")
    client.posted = posted  # type: ignore[attr-defined]
    return client


def test_the_witness_refuses_a_forked_or_rolled_back_history(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    make_witness: Callable[..., Any],
    witness_module: ModuleType,
    keys_dir: Path,
    log_vkey: str,
) -> None:
    witness = make_witness()
    for i in range(4):
        make_school(name=f"School {i}")
    honest = witness.run_once(client)
    state = witness.state_path.read_text()

    # Two different checkpoints of one size, both signed by the log: a fork.
    forked = _forge(keys_dir, honest.origin, 4, verifier.sha(b"another history"))
    with _serving(forked) as liar, pytest.raises(witness_module.Refused, match="forked"):
        witness.run_once(liar)
    assert liar.posted == []  # type: ignore[attr-defined]
    assert witness.state_path.read_text() == state
    # The evidence holds both checkpoints with the log's signatures, so anyone can check the fork.
    evidence = (witness.state_path.parent / "refused-4.txt").read_text()
    offered = evidence.split("now offered:\n", 1)[1].rstrip("\n") + "\n"
    assert offered == forked and verifier.log_signature_ok(offered, log_vkey)
    # A second, different fork of the same size adds to the evidence instead of replacing it.
    other_fork = _forge(keys_dir, honest.origin, 4, verifier.sha(b"a third history"))
    with _serving(other_fork) as liar, pytest.raises(witness_module.Refused, match="forked"):
        witness.run_once(liar)
    evidence = (witness.state_path.parent / "refused-4.txt").read_text()
    assert forked in evidence and other_fork in evidence

    # Back in time.
    with _serving(_forge(keys_dir, honest.origin, 2, verifier.sha(b"x"))) as liar:
        with pytest.raises(witness_module.Refused, match="went back"):
            witness.run_once(liar)
    # A checkpoint not signed by the pinned log key.
    other = Ed25519PrivateKey.generate()
    fake = witness_module.vkey(honest.origin, 0x01, witness_module.raw_public(other))
    stranger = witness_module.Witness(
        name=witness.name, private=witness.private, log_vkey=fake, state=witness.state_path
    )
    with pytest.raises(witness_module.Refused, match="not signed by the log key"):
        stranger.run_once(client)
    assert witness.state_path.read_text() == state


def test_the_witness_refuses_malformed_answers_instead_of_crashing(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    make_witness: Callable[..., Any],
    witness_module: ModuleType,
    keys_dir: Path,
) -> None:
    """A log answering garbage is refused like a lying one (``run --interval`` goes on), and
    nothing is cosigned or remembered."""
    witness = make_witness()
    for i in range(2):
        make_school(name=f"School {i}")
    honest = witness.run_once(client)
    state = witness.state_path.read_text()
    good = _forge(keys_dir, honest.origin, 3, verifier.sha(b"next"))
    text = good.split("\n\n")[0] + "\n"
    malformed = {
        "signature": text + "\n\u2014 " + honest.origin + " not*base64\n",
        "root hash": _signed(keys_dir, honest.origin, f"{honest.origin}\n3\nnot*base64\n"),
        "checkpoint": _signed(keys_dir, honest.origin, text.replace("\n3\n", "\n\u0663\n")),
    }
    for what, note in malformed.items():
        with _serving(note) as liar, pytest.raises(witness_module.Refused, match=what):
            witness.run_once(liar)
        assert liar.posted == []  # type: ignore[attr-defined]

    # A consistency proof that is not base64 hashes.
    for proof in ({"proof": ["not*base64"]}, {"proof": "AAAA"}, {"nothing": []}, "<html>"):

        def handle(request: httpx.Request, proof: Any = proof) -> httpx.Response:
            if request.url.path == "/v1/log/checkpoint":
                return httpx.Response(200, text=good)
            if request.url.path == "/v1/log/proof/consistency":
                return (
                    httpx.Response(200, json=proof)
                    if isinstance(proof, dict)
                    else httpx.Response(200, text=proof)
                )
            raise AssertionError("nothing is posted")

        with httpx.Client(transport=httpx.MockTransport(handle), base_url="http://log.test") as liar:
            with pytest.raises(witness_module.Refused, match="consistency proof"):
                witness.run_once(liar)
    assert witness.state_path.read_text() == state


def test_the_witness_refuses_a_rewritten_past(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    make_witness: Callable[..., Any],
    witness_module: ModuleType,
    engine: Any,
) -> None:
    witness = make_witness()
    for i in range(5):
        make_school(name=f"School {i}")
    witness.run_once(client)
    with transaction(engine) as session:  # rewrite event 3, rebuild every hash
        session.execute(sa.text("UPDATE events SET type = 'school.updated' WHERE sequence = 3"))
        session.execute(sa.text("DELETE FROM log_nodes"))
        log.catch_up(session)
    make_school(name="School 5")
    client.app.state.public_cache.clear()  # type: ignore[attr-defined]
    with pytest.raises(witness_module.Refused, match="not consistent"):
        witness.run_once(client)
    assert json.loads(witness.state_path.read_text())["size"] == 5


def _cosigned(note: str, name: str, private: Ed25519PrivateKey, *, timestamp: int | None = None) -> str:
    text, _ = verifier.split_note(note)
    ts = int(time.time()) if timestamp is None else timestamp
    signature = private.sign(f"cosignature/v1\ntime {ts}\n".encode() + text.encode())
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    kid = verifier.sha(name.encode() + b"\n\x04" + public)[:4]
    payload = kid + struct.pack(">Q", ts) + signature
    return note + f"\u2014 {name} {base64.b64encode(payload).decode()}\n"


def test_hostile_cosignatures_are_422s_that_store_nothing(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    make_witness: Callable[..., Any],
    cli: Callable[..., Any],
    keys_dir: Path,
) -> None:
    witness = make_witness()
    for i in range(3):
        make_school(name=f"School {i}")
    note = client.get("/v1/log/checkpoint").text
    origin = note.split("\n")[0]
    text, _ = verifier.split_note(note)
    root = verifier.checkpoint_fields(text)[2]

    def post(body: str | bytes) -> Any:
        return client.post(
            "/v1/log/cosignatures",
            content=body if isinstance(body, bytes) else body.encode(),
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )

    unknown = Ed25519PrivateKey.generate()
    tampered = _cosigned(note, witness.name, witness.private)
    line = tampered.rstrip("\n").rsplit("\n", 1)[1]
    raw = bytearray(base64.b64decode(line.split(" ")[2]))
    raw[-1] ^= 1
    hostile = {
        "unknown key": _cosigned(note, "witness.stranger.example/x", unknown),
        "known name, unknown key": _cosigned(note, witness.name, unknown),
        "another origin": _cosigned(
            _forge(keys_dir, "evil.example/log", 3, root), witness.name, witness.private
        ),
        "a size the log never had": _cosigned(
            _forge(keys_dir, origin, 9, root), witness.name, witness.private
        ),
        "a root the log never had": _cosigned(
            _forge(keys_dir, origin, 3, verifier.sha(b"x")), witness.name, witness.private
        ),
        "a bad signature": tampered.replace(
            line, f"{line.rsplit(' ', 1)[0]} {base64.b64encode(raw).decode()}"
        ),
        "dated in the future": _cosigned(
            note, witness.name, witness.private, timestamp=int(time.time()) + 3600
        ),
        "no signature lines": text,
        "not a note": "hello",
        "control characters": note.replace(origin, origin + "\x07"),
        "extension lines": _cosigned(
            _forge(keys_dir, origin, 3, root).replace("\n\n", "\nextension\n\n", 1),
            witness.name,
            witness.private,
        ),
        "leading zeros": _cosigned(note.replace("\n3\n", "\n03\n", 1), witness.name, witness.private),
        "a malformed signature line": note + "\u2014 a b c\n",
    }
    for case, body in hostile.items():
        assert_problem(post(body), 422), case
    assert_problem(post(b"\xff\xfe not utf-8"), 422)
    assert_problem(post("x" * (64 * 1024 + 1)), 413)
    assert client.get("/v1/log/checkpoint").text == note
    assert [w["latest_cosigned_size"] for w in client.get("/v1/log/key").json()["witnesses"]] == [None]

    # The genuine one is kept; posting it again (or an older one) changes nothing.
    first = post(_cosigned(note, witness.name, witness.private, timestamp=int(time.time()) - 10))
    assert first.status_code == 200, first.text
    assert first.json()["accepted"][0]["tree_size"] == 3
    kept = client.get("/v1/log/checkpoint").text
    assert (
        post(_cosigned(note, witness.name, witness.private, timestamp=int(time.time()) - 20)).status_code
        == 200
    )
    assert client.get("/v1/log/checkpoint").text == kept

    # A removed witness is no longer trusted, nor served.
    assert cli("witnesses", "remove", witness.described["id"]).exit_code == 0
    assert_problem(post(_cosigned(note, witness.name, witness.private)), 422)
    assert client.get("/v1/log/checkpoint").text == note


def test_a_cosignature_in_another_media_type_is_a_415_that_stores_nothing(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    make_witness: Callable[..., Any],
) -> None:
    """The note is text/plain in UTF-8; JSON, no media type, another charset or a look-alike
    media type is refused before the body is read, and the same note then posted as text
    is kept."""
    witness = make_witness()
    make_school(name="School 0")
    note = client.get("/v1/log/checkpoint").text
    body = _cosigned(note, witness.name, witness.private).encode()
    for content_type in (
        None,
        "application/json",
        "application/octet-stream",
        "text/plainx",
        "text/markdown",
        "text/plain; charset=latin-1",
        "multipart/form-data; boundary=x",
    ):
        headers = {} if content_type is None else {"Content-Type": content_type}
        problem = assert_problem(client.post("/v1/log/cosignatures", content=body, headers=headers), 415)
        assert problem["accepted"] == ["text/plain"], content_type
    assert client.get("/v1/log/checkpoint").text == note
    assert [w["latest_cosigned_size"] for w in client.get("/v1/log/key").json()["witnesses"]] == [None]

    for content_type in ("text/plain", 'TEXT/Plain ; Charset="UTF-8"', "text/plain;charset=utf8"):
        answer = client.post("/v1/log/cosignatures", content=body, headers={"Content-Type": content_type})
        assert answer.status_code == 200, (content_type, answer.text)
        assert answer.json()["accepted"][0]["witness"] == witness.described["id"]
    assert [w["latest_cosigned_size"] for w in client.get("/v1/log/key").json()["witnesses"]] == [1]


def test_witness_registration_refuses_bad_input(
    cli: Callable[..., Any],
    witness_module: ModuleType,
) -> None:
    private = Ed25519PrivateKey.generate()
    good = _vkey(witness_module, "witness.a.example/w", private)
    as_log_key = witness_module.vkey("witness.a.example/w", 0x01, witness_module.raw_public(private))
    name, key_id, material = good.split("+", 2)
    for region, key in [
        ("DE", "not a key"),
        ("DE", as_log_key),  # signature type 0x01 is a log key, not a cosigner's
        ("DE", f"{name}+00000000+{material}"),  # key ID does not match
        ("DE", f"with space+{key_id}+{material}"),
        ("XX", good),
        ("", good),
    ]:
        result = cli("witnesses", "add", "--name", "A", "--region", region, "--key", key)
        assert result.exit_code == 2 and result.stderr.startswith("error:"), (region, key)
    assert cli("witnesses", "add", "--name", "A", "--region", "150", "--key", good).exit_code == 0
    duplicate = cli("witnesses", "add", "--name", "B", "--region", "DE", "--key", good)
    assert duplicate.exit_code == 2 and "registered already" in duplicate.stderr
    listed = [json.loads(line) for line in cli("witnesses", "list").stdout.splitlines()]
    assert [(w["name"], w["region"], w["removed"]) for w in listed] == [("A", "150", False)]
    assert cli("witnesses", "remove", "wit_nope").exit_code == 2
