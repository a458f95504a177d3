"""The worker's HTTP sender against raw TCP servers on 127.0.0.1 that answer with crafted bytes.

Each test runs one attempt (``attempt.attempt``, what the worker calls) and
checks the outcome and what went over the wire: framing the parser must
handle (chunked, close-delimited, interim 1xx), hostile answers (garbage, a
header flood, silence), and connection reuse (keep-alive, a connection the
receiver closed while idle).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from standardwebhooks import Webhook

from service.webhooks import attempt as attempt_module
from service.webhooks import sender as sender_module
from service.webhooks import signing
from service.webhooks.sender import MAX_HEAD_BYTES, Sender

SECRET = signing.new_secret()
BODY = '{"type":"standards.version.published","title":"Zürich 🧘"}'.encode()

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Server"], Awaitable[None]]


@dataclass
class Server:
    """A TCP server on 127.0.0.1; ``requests`` holds each request's raw head and body."""

    port: int = 0
    connections: int = 0
    requests: list[tuple[bytes, bytes]] = field(default_factory=list)


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    fields = (line.partition(b":") for line in head.split(b"\r\n"))
    length = next(int(value) for name, _, value in fields if name.lower() == b"content-length")
    return head, await reader.readexactly(length)


async def attempt(
    sender: Sender, url: str, msg_id: str = "evt_1", timeout_s: float = 2.0
) -> attempt_module.Outcome:
    """One attempt, as the worker makes it: BODY signed with SECRET, loopback allowed."""
    return await attempt_module.attempt(
        sender,
        url=url,
        msg_id=msg_id,
        body=BODY,
        keys=[signing.secret_key(SECRET)],
        timeout_s=timeout_s,
        allowed=["loopback"],
    )


def run(
    handler: Handler,
    attempts: int = 1,
    timeout_s: float = 2.0,
    *,
    server_ssl: ssl.SSLContext | None = None,
    client_ssl: ssl.SSLContext | None = None,
    url_host: str = "127.0.0.1",
) -> tuple[list[attempt_module.Outcome], Server]:
    """Serve ``handler`` on 127.0.0.1 (over TLS with ``server_ssl``) and make ``attempts``
    attempts to ``url_host``, one after the other, with one sender."""

    async def main() -> tuple[list[attempt_module.Outcome], Server]:
        server = Server()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            server.connections += 1
            try:
                await handler(reader, writer, server)
            except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                pass
            finally:
                writer.close()

        tcp = await asyncio.start_server(on_connect, "127.0.0.1", 0, ssl=server_ssl)
        server.port = tcp.sockets[0].getsockname()[1]
        scheme = "https" if server_ssl else "http"
        sender = Sender(ssl_context=client_ssl)
        outcomes = []
        try:
            for n in range(attempts):
                outcomes.append(
                    await attempt(
                        sender, f"{scheme}://{url_host}:{server.port}/hook?x=1", f"evt_{n}", timeout_s
                    )
                )
                await asyncio.sleep(0.05)  # let a closing server's FIN arrive before the next attempt
        finally:
            await sender.aclose()
            tcp.close()
        return outcomes, server

    return asyncio.run(main())


def answering(*answers: bytes, keep_open: bool = True) -> Handler:
    """Read one request per answer and write the answer; then keep the connection or close it."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        for answer in answers:
            server.requests.append(await read_request(reader))
            writer.write(answer)
            await writer.drain()
        if keep_open:
            while server.requests.append(await read_request(reader)) is None:
                writer.write(answers[-1])
                await writer.drain()

    return handler


def test_the_request_is_one_exact_signed_post() -> None:
    [outcome], server = run(answering(b"HTTP/1.1 204 No Content\r\n\r\n"))
    assert outcome.kind == "success" and outcome.status_code == 204
    [(head, body)] = server.requests
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /hook?x=1 HTTP/1.1"
    names = [line.split(":", 1)[0].lower() for line in lines[1:] if line]
    assert names.count("host") == 1 and names.count("content-length") == 1
    headers = dict(line.split(": ", 1) for line in lines[1:] if line)
    assert headers["Host"] == f"127.0.0.1:{server.port}"
    assert body == BODY
    assert Webhook(SECRET).verify(body, {k.lower(): v for k, v in headers.items()})


def test_keep_alive_sends_every_attempt_over_one_connection() -> None:
    # Found by this test: keep-alive was read from the parser after the message completed, when
    # llhttp has reset it, so every attempt opened a new connection.
    outcomes, server = run(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), attempts=3)
    assert [o.kind for o in outcomes] == ["success"] * 3
    assert server.connections == 1 and len(server.requests) == 3


def test_chunked_answer_is_read_and_the_connection_reused() -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    outcomes, server = run(answering(chunked), attempts=3)
    assert [o.kind for o in outcomes] == ["success"] * 3
    assert outcomes[0].excerpt == "hello world"
    assert server.connections == 1  # kept alive


def test_close_delimited_answer_is_read_and_not_reused() -> None:
    answer = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it"
    outcomes, server = run(answering(answer, keep_open=False), attempts=2)
    assert [(o.kind, o.excerpt) for o in outcomes] == [("success", "all of it")] * 2
    assert server.connections == 2


def test_interim_answers_are_skipped() -> None:
    interim = b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
    answer = interim + b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
    [outcome], _ = run(answering(answer))
    assert (outcome.kind, outcome.status_code, outcome.excerpt) == ("success", 201, "ok")


def test_retry_after_is_passed_back_on_503() -> None:
    [outcome], _ = run(answering(b"HTTP/1.1 503 Busy\r\nRetry-After: 120\r\nContent-Length: 0\r\n\r\n"))
    assert (outcome.kind, outcome.status_code, outcome.retry_after) == ("failure", 503, 120.0)


def test_garbage_is_a_failure_not_a_crash() -> None:
    [outcome], _ = run(answering(b"HELLO THERE\r\n\r\n", keep_open=False))
    assert outcome.kind == "failure" and outcome.status_code is None
    assert outcome.error is not None and "malformed HTTP answer" in outcome.error


def test_a_header_flood_is_cut_off() -> None:
    flood = b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * (MAX_HEAD_BYTES + 10) + b"\r\n\r\n"
    [outcome], _ = run(answering(flood, keep_open=False))
    assert outcome.kind == "failure"
    assert outcome.error is not None and "headers exceed" in outcome.error


def test_a_huge_body_is_read_up_to_the_limit_and_the_connection_dropped() -> None:
    size = attempt_module.READ_LIMIT * 4
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + b"b" * size
    outcomes, server = run(answering(answer), attempts=2)
    assert [o.kind for o in outcomes] == ["success"] * 2
    assert outcomes[0].excerpt == "b" * attempt_module.EXCERPT_BYTES
    assert server.connections == 2  # the rest was never read: that connection could not be reused


def test_closing_without_an_answer_is_a_failure() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        server.requests.append(await read_request(reader))

    [outcome], _ = run(hang_up)
    assert outcome.kind == "failure"
    assert outcome.error == "the receiver closed the connection without answering"


def test_an_idle_connection_the_receiver_closed_is_replaced() -> None:
    # Keep-alive is not announced as ending, but the receiver closes after each answer (as
    # servers with a short idle timeout do): the next attempt must not fail on the stale socket.
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    outcomes, server = run(answering(answer, keep_open=False), attempts=3)
    assert [o.kind for o in outcomes] == ["success"] * 3
    assert server.connections == 3 and len(server.requests) == 3


def test_silence_ends_at_the_deadline_and_the_connection_is_dropped() -> None:
    closed = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        server.requests.append(await read_request(reader))
        await reader.read()  # returns when the sender gives up and closes
        closed.set()

    [outcome], server = run(silent, timeout_s=0.5)
    assert outcome.kind == "failure" and outcome.status_code is None
    assert outcome.error == "no complete answer within 0.5 s"
    assert 450 <= outcome.duration_ms < 1500
    assert closed.is_set()


def test_connection_refused_is_a_failure() -> None:
    async def main() -> attempt_module.Outcome:
        tcp = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = tcp.sockets[0].getsockname()[1]
        tcp.close()
        await tcp.wait_closed()
        return await attempt(Sender(), f"http://127.0.0.1:{port}/")

    outcome = asyncio.run(main())
    assert outcome.kind == "failure" and outcome.status_code is None
    assert outcome.error is not None and outcome.error.startswith("ConnectError:")


# --- TLS -------------------------------------------------------------------------------------


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for ``localhost`` (and its key), valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def run_tls(
    tmp_path: Path, *, url_host: str, trust: bool, attempts: int = 1
) -> tuple[list[attempt_module.Outcome], Server, list[str | None]]:
    """Attempts over TLS to a server on 127.0.0.1 with a certificate for ``localhost``; also
    returns the server names (SNI) the server was asked for."""
    cert_path, key_path = _certificate(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_path, key_path)
    server_names: list[str | None] = []
    server_context.sni_callback = lambda sock, name, ctx: server_names.append(name)  # type: ignore[assignment,misc]
    client_context: ssl.SSLContext | None = None
    if trust:
        client_context = ssl.create_default_context(cafile=str(cert_path))
        client_context.set_alpn_protocols(["http/1.1"])
    outcomes, server = run(
        answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        attempts,
        3.0,
        server_ssl=server_context,
        client_ssl=client_context,
        url_host=url_host,
    )
    return outcomes, server, server_names


def test_tls_checks_the_certificate_sends_sni_and_keeps_the_connection(tmp_path: Path) -> None:
    outcomes, server, names = run_tls(tmp_path, url_host="localhost", trust=True, attempts=2)
    assert [(o.kind, o.excerpt) for o in outcomes] == [("success", "ok")] * 2
    assert server.connections == 1 and len(server.requests) == 2
    assert names == ["localhost"]  # SNI is the URL's name, though the connection went to 127.0.0.1
    [(head, _body)] = server.requests[:1]
    assert f"Host: localhost:{server.port}".encode() in head


def test_tls_refuses_an_untrusted_certificate(tmp_path: Path) -> None:
    # The default context trusts the public CA bundle only: a self-signed receiver is refused.
    [outcome], server, _ = run_tls(tmp_path, url_host="localhost", trust=False)
    assert outcome.kind == "failure" and outcome.status_code is None
    assert outcome.error is not None and "CERTIFICATE_VERIFY_FAILED" in outcome.error
    assert server.requests == []  # nothing was sent


def test_tls_refuses_a_certificate_for_another_name(tmp_path: Path) -> None:
    [outcome], server, _ = run_tls(tmp_path, url_host="127.0.0.1", trust=True)
    assert outcome.kind == "failure"
    assert outcome.error is not None and "CERTIFICATE_VERIFY_FAILED" in outcome.error
    assert server.requests == []


def test_idle_connections_are_bounded_and_expired_ones_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sender_module, "MAX_IDLE_TOTAL", 2)
    monkeypatch.setattr(sender_module, "KEEPALIVE_S", 0.3)
    closed: list[int] = []

    async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await read_request(reader)
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
        except asyncio.IncompleteReadError:
            closed.append(1)  # the sender closed its idle connection
        finally:
            writer.close()

    async def main() -> list[int]:
        servers = [await asyncio.start_server(keep_alive, "127.0.0.1", 0) for _ in range(3)]
        sender = Sender()
        counts = []
        for tcp in servers:  # three origins (ports): only two connections are kept
            port = tcp.sockets[0].getsockname()[1]
            outcome = await attempt(sender, f"http://127.0.0.1:{port}/")
            assert outcome.kind == "success"
            counts.append(sender.idle_connections())
        await asyncio.sleep(0.5)  # all expired; the next use of the sender sweeps them
        sender._take_idle(("http", "127.0.0.1", 1))
        counts.append(sender.idle_connections())
        await asyncio.sleep(0.1)
        for tcp in servers:
            tcp.close()
        return counts

    assert asyncio.run(main()) == [1, 2, 2, 0]
    assert len(closed) == 3  # the one over the cap at once, the two kept ones by the sweep


def test_the_first_complete_answer_counts_and_a_second_one_is_ignored() -> None:
    # Found in review: "500 firs" immediately followed by "200 second" was recorded as a success.
    first = b"HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\nfirs"
    outcomes, server = run(
        answering(first + b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond"), attempts=2
    )
    assert [(o.kind, o.status_code, o.excerpt) for o in outcomes] == [("failure", 500, "firs")] * 2
    assert server.connections == 2  # the connection that carried the extra answer was dropped
    outcomes, _ = run(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + first))
    assert [(o.kind, o.status_code, o.excerpt) for o in outcomes] == [("success", 200, "ok")]


def test_nul_bytes_in_an_answer_are_replaced() -> None:
    # PostgreSQL text cannot hold U+0000: the attempt must still be recordable.
    [outcome], _ = run(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok\x00\x00!"))
    assert (outcome.kind, outcome.excerpt) == ("success", "ok\ufffd\ufffd!")
