"""Reference webhook receiver for associations: keeps a folder in sync with the IMI Standards API.

Run it next to your website::

    pip install standardwebhooks httpx cryptography
    python receiver.py --api https://api.example.org --secret whsec_... \\
        --folder ./imi --port 8081

(or ``--public-key whpk_...`` for an endpoint registered with
``"signature_scheme": "ed25519"``) and register ``http(s)://<your host>:8081/imi-webhook``
as a webhook endpoint (``POST /v1/webhooks/endpoints``). What it does:

- verifies every delivery: ``v1`` (HMAC) signatures with the stock
  ``standardwebhooks`` library, ``v1a`` (Ed25519) signatures with
  ``cryptography`` against the endpoint's public key (401 when the signature or
  timestamp is wrong, so the API retries and logs it);
- de-duplicates by ``webhook-id`` (deliveries are at-least-once);
- on a standards event, fetches the current version as JSON and as an HTML
  fragment with ``If-None-Match`` and writes ``guidelines/<slug>.json|.html``;
- on a school event, pages through ``GET /v1/schools`` and writes ``schools.json``
  (with ``--country``, the schools of those countries only: a school that moves away
  leaves the file, one that moves in joins it);
- on start, and whenever a ``sequence`` jumps, catches up from the change feed
  (``GET /v1/events?after=<last seen>&type=<its types>``, with the same
  ``country``/``document``/``language`` filter as its endpoint when given one:
  a filtered endpoint sees jumps for every event the filter leaves out);
- keeps its state (last sequence, recent ids, ETags) in ``state.json``.

Files are replaced atomically, so your site never reads half a file.
Only the standard library, ``httpx``, ``standardwebhooks`` and (for Ed25519) ``cryptography``
are needed.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from standardwebhooks import Webhook, WebhookVerificationError

log = logging.getLogger("imi-receiver")

STANDARDS_TYPES = (
    "standards.version.published",
    "standards.version.withdrawn",
    "standards.translation.published",
)
SCHOOL_TYPES = ("school.listed", "school.updated", "school.delisted", "school.alignment.changed")
MAX_BODY = 1024 * 1024
REMEMBERED_IDS = 2000
#: How far a delivery's ``webhook-timestamp`` may be from now (Standard Webhooks: 5 minutes).
TOLERANCE_S = 300


class PublicKeyVerifier:
    """Verifies Standard Webhooks ``v1a`` (Ed25519) signatures with a ``whpk_…`` public key,
    like ``standardwebhooks.Webhook.verify`` does ``v1`` ones: required headers, a timestamp
    within 5 minutes, one matching signature among the space-separated ones."""

    def __init__(self, public_key: str) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        raw = base64.b64decode(public_key.removeprefix("whpk_"))
        self.key = Ed25519PublicKey.from_public_bytes(raw)

    def verify(self, body: bytes, headers: dict[str, str]) -> Any:
        from cryptography.exceptions import InvalidSignature

        lowered = {k.lower(): v for k, v in headers.items()}
        msg_id, stamp = lowered.get("webhook-id"), lowered.get("webhook-timestamp")
        signatures = lowered.get("webhook-signature")
        if not (msg_id and stamp and signatures):
            raise WebhookVerificationError("Missing required headers")
        try:
            moment = int(stamp)
        except ValueError:
            raise WebhookVerificationError("Invalid Signature Headers") from None
        if abs(time.time() - moment) > TOLERANCE_S:
            raise WebhookVerificationError("Message timestamp out of tolerance")
        content = f"{msg_id}.{moment}.".encode() + body
        for signature in signatures.split(" "):
            version, _, value = signature.partition(",")
            if version != "v1a":
                continue
            try:
                self.key.verify(base64.b64decode(value), content)
            except (InvalidSignature, ValueError):
                continue
            return json.loads(body)
        raise WebhookVerificationError("No matching signature found")


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class Sync:
    """The folder, its state, and the API client; every method holds one lock."""

    def __init__(
        self,
        *,
        api: str,
        folder: Path,
        types: list[str],
        client: httpx.Client | None = None,
        filters: list[tuple[str, str]] | None = None,
    ) -> None:
        self.api = api.rstrip("/")
        self.folder = folder
        self.types = types
        #: The endpoint's filter as feed parameters: ``[("country", "NL"), …]``.
        self.filters = filters or []
        self.http = client or httpx.Client(timeout=30.0, headers={"user-agent": "imi-reference-receiver/1.0"})
        self.lock = threading.RLock()
        self.state_path = folder / "state.json"
        self.state: dict[str, Any] = {"last_sequence": 0, "seen": [], "etags": {}, "log": []}
        if self.state_path.exists():
            self.state.update(json.loads(self.state_path.read_text()))

    def save(self) -> None:
        self.state["seen"] = self.state["seen"][-REMEMBERED_IDS:]
        self.state["log"] = self.state["log"][-REMEMBERED_IDS:]
        write_atomic(self.state_path, json.dumps(self.state, indent=1, ensure_ascii=False).encode())

    # --- fetching ------------------------------------------------------------------

    def _fetch(self, path: str, *, accept: str, name: str) -> bytes | None:
        """GET with If-None-Match; the body when it changed, ``None`` on 304 or 404."""
        key = f"{accept} {path}"
        headers = {"accept": accept}
        if key in self.state["etags"]:
            headers["if-none-match"] = self.state["etags"][key]
        r = self.http.get(self.api + path, headers=headers)
        if r.status_code in (304, 404):
            return None
        r.raise_for_status()
        if "etag" in r.headers:
            self.state["etags"][key] = r.headers["etag"]
        return r.content

    def refresh_guidelines(self, slug: str) -> None:
        """Write the current version of ``slug`` as JSON and as an HTML fragment."""
        path = f"/v1/standards/{slug}/current"
        body = self._fetch(path, accept="application/json", name=slug)
        if body is not None:
            write_atomic(self.folder / "guidelines" / f"{slug}.json", body)
        html = self._fetch(path, accept="text/html", name=slug)
        if html is not None:
            write_atomic(self.folder / "guidelines" / f"{slug}.html", html)

    def refresh_all_guidelines(self) -> None:
        r = self.http.get(self.api + "/v1/standards")
        r.raise_for_status()
        for doc in r.json()["data"]:
            self.refresh_guidelines(doc.get("slug") or doc["id"])

    def refresh_schools(self) -> None:
        """Page through the public registry (the filter's countries only, when it has some:
        ``GET /v1/schools`` takes one ``country`` a query) and write ``schools.json``."""
        schools: list[Any] = []
        countries = [v for name, v in self.filters if name == "country"] or [None]
        for country in countries:
            base: dict[str, Any] = {"limit": 200} if country is None else {"limit": 200, "country": country}
            params = dict(base)
            while True:
                r = self.http.get(self.api + "/v1/schools", params=params)
                r.raise_for_status()
                page = r.json()
                schools.extend(page["data"])
                if not page.get("next_cursor"):
                    break
                params = {**base, "cursor": page["next_cursor"]}
        write_atomic(self.folder / "schools.json", json.dumps(schools, ensure_ascii=False, indent=1).encode())

    # --- events --------------------------------------------------------------------------

    def apply(self, event: dict[str, Any], *, via: str) -> None:
        """Act on one event (idempotent) and remember it."""
        if event["id"] in self.state["seen"]:
            return
        kind = event["type"]
        if kind in STANDARDS_TYPES:
            self.refresh_guidelines(event["data"]["document"])
        elif kind in SCHOOL_TYPES:
            self.refresh_schools()
        self.state["seen"].append(event["id"])
        self.state["log"].append(
            {"id": event["id"], "type": kind, "sequence": event.get("sequence"), "via": via}
        )
        if event.get("sequence"):
            self.state["last_sequence"] = max(self.state["last_sequence"], int(event["sequence"]))

    def catch_up(self) -> int:
        """Apply every event of our types after the last sequence we saw; returns how many."""
        applied = 0
        after = self.state["last_sequence"]
        fresh = after == 0
        if fresh:  # first start: take the current state, then follow the feed from its end
            self.refresh_all_guidelines()
            self.refresh_schools()
        while True:
            r = self.http.get(
                self.api + "/v1/events",
                params=[("after", after), ("limit", 200)] + [("type", t) for t in self.types] + self.filters,
            )
            if r.status_code == 410:  # our position left the retained window: start over
                self.state["last_sequence"] = int(r.json().get("oldest_available_after", 0))
                self.refresh_all_guidelines()
                self.refresh_schools()
                after = self.state["last_sequence"]
                fresh = True
                continue
            r.raise_for_status()
            page = r.json()
            for event in page["data"]:
                if fresh:
                    self.state["seen"].append(event["id"])  # already reflected in the fresh copy
                else:
                    self.apply(event, via="feed")
                    applied += 1
                after = event["sequence"]
            if not page.get("next_cursor"):
                break
        self.state["last_sequence"] = max(self.state["last_sequence"], after)
        self.save()
        return applied

    def receive(self, event: dict[str, Any]) -> None:
        """A verified webhook: catch up first when its sequence jumped, then apply it."""
        with self.lock:
            seq = event.get("sequence")
            if seq and seq > self.state["last_sequence"] + 1:
                self.catch_up()
            if event["type"] != "webhook.ping":
                self.apply(event, via="webhook")
            self.save()


def make_handler(
    sync: Sync, path: str, *, secret: str | None = None, public_key: str | None = None
) -> type[BaseHTTPRequestHandler]:
    """The HTTP handler: verifies with ``public_key`` (``v1a``) when given, else ``secret`` (``v1``)."""
    verifier: Any = PublicKeyVerifier(public_key) if public_key else Webhook(secret or "")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            if self.path != path:
                self.send_error(404)
                return
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY:
                self.send_error(413)
                return
            body = self.rfile.read(length)
            try:
                event = verifier.verify(body, {k: v for k, v in self.headers.items()})
            except WebhookVerificationError as exc:
                log.warning("rejected a delivery: %s", exc)
                self.send_error(401)
                return
            try:
                sync.receive(event)
            except Exception:  # noqa: BLE001 - answer 500 so the API retries later
                log.exception("could not apply %s", event.get("id"))
                self.send_error(500)
                return
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.debug(format, *args)

    return Handler


def _first_line(exc: Exception) -> str:
    """httpx's message without its second line (a link to MDN's page on the status)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _check_key(secret: str | None, public_key: str | None) -> str | None:
    """Why ``secret`` (``whsec_`` + base64 of the HMAC key) or ``public_key`` (``whpk_`` + base64
    of 32 Ed25519 bytes) cannot be the endpoint's, else ``None``: a mistyped one would otherwise
    start listening and answer every delivery 401."""
    import binascii

    if public_key:
        prefix, value, size = "whpk_", public_key, 32
    else:
        prefix, value, size = "whsec_", secret or "", 0
    if not value.startswith(prefix):
        return f"the key must start with {prefix} (as the API showed it when the endpoint was created)"
    try:
        raw = base64.b64decode(value.removeprefix(prefix), validate=True)
    except (binascii.Error, ValueError):
        return f"the key is {prefix} followed by base64; this one is not"
    if not raw:
        return f"the key is {prefix} followed by base64; this one is empty after {prefix}"
    if size and len(raw) != size:
        return f"the key is {prefix} followed by base64 of {size} bytes; this one decodes to {len(raw)}"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description="Keep a folder in sync with the IMI Standards API.")
    parser.add_argument("--api", required=True, help="the API's base URL")
    parser.add_argument(
        "--secret", default=os.environ.get("IMI_WEBHOOK_SECRET"), help="whsec_… (or IMI_WEBHOOK_SECRET)"
    )
    parser.add_argument(
        "--public-key",
        default=os.environ.get("IMI_WEBHOOK_PUBLIC_KEY"),
        help="whpk_… of an ed25519 endpoint (or IMI_WEBHOOK_PUBLIC_KEY); replaces --secret",
    )
    for name in ("country", "document", "language"):
        parser.add_argument(f"--{name}", action="append", default=[], help=f"the endpoint's {name} filter")
    parser.add_argument("--folder", type=Path, default=Path("./imi"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--path", default="/imi-webhook")
    parser.add_argument("--types", default=",".join(STANDARDS_TYPES + SCHOOL_TYPES))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not args.secret and not args.public_key:
        parser.error("--secret (IMI_WEBHOOK_SECRET) or --public-key (IMI_WEBHOOK_PUBLIC_KEY) is required")
    problem = _check_key(args.secret, args.public_key)
    if problem:
        parser.error(problem)
    filters = [(name, v) for name in ("country", "document", "language") for v in getattr(args, name)]
    sync = Sync(
        api=args.api, folder=args.folder, types=[t for t in args.types.split(",") if t], filters=filters
    )
    # An operator's mistake (the API not running, a wrong --api, a port in use) is one line and
    # exit status 2, not a traceback.
    try:
        with sync.lock:
            caught = sync.catch_up()
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        parser.exit(
            2,
            f"{parser.prog}: error: cannot catch up from the API at {args.api} (--api): {_first_line(exc)}\n",
        )
    log.info("caught up (%d events); last sequence %d", caught, sync.state["last_sequence"])
    handler = make_handler(sync, args.path, secret=args.secret, public_key=args.public_key)
    try:
        server = ThreadingHTTPServer((args.host, args.port), handler)
    except OSError as exc:
        parser.exit(
            2, f"{parser.prog}: error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}\n"
        )
    log.info("listening on http://%s:%d%s", args.host, args.port, args.path)
    server.serve_forever()


if __name__ == "__main__":
    main()
