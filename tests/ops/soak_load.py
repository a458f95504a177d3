"""The load of the soak test (``test_soak.py``): editors, stewards, a school and readers, each
a thread calling random replicas and tallying every answer against the statuses the API
documents for the situation."""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.helpers import SLUG

MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
CITIES = ["Zürich", "São Paulo", "İstanbul", "Kraków", "Ōsaka", "Utrecht", "Montréal"]


@dataclass
class Tally:
    """What the load saw: statuses per operation, and anything that must not happen."""

    calls: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, message: str) -> None:
        with self.lock:
            self.failures.append(message)

    def successes(self, op: str) -> int:
        return sum(n for (o, status), n in self.calls.items() if o == op and status < 300)


class Actor:
    """One load thread's HTTP client: each request goes to a random replica and is tallied."""

    def __init__(self, bases: list[str], tally: Tally, seed: int) -> None:
        self.bases = bases
        self.tally = tally
        self.rng = random.Random(seed)
        self.http = httpx.Client(timeout=30)

    def call(
        self, op: str, method: str, path: str, allowed: set[int], **kwargs: Any
    ) -> httpx.Response | None:
        """``method path`` on a random replica; ``None`` unless the status is in ``allowed``."""
        base = self.rng.choice(self.bases)
        try:
            r = self.http.request(method, base + path, **kwargs)
        except httpx.TransportError as exc:
            self.tally.fail(f"{op}: {method} {path}: {exc!r}")
            return None
        with self.tally.lock:
            self.tally.calls[(op, r.status_code)] += 1
        if r.status_code not in allowed:
            self.tally.fail(f"{op}: {method} {base}{path} -> {r.status_code} {r.text[:300]}")
            return None
        return r

    def close(self) -> None:
        self.http.close()


def number(version: str) -> tuple[int, int]:
    major, minor = version.split(".")
    return int(major), int(minor)


def editor_loop(actor: Actor, editor: dict[str, str], stop: threading.Event, *, withdraws: bool) -> None:
    """Draft the next version from the current one, edit it, publish it; withdraw now and then."""
    versions = f"/v1/standards/{SLUG}/versions"
    highest = "1.0"
    turn = 0
    while not stop.is_set():
        turn += 1
        r = actor.call("current", "GET", f"/v1/standards/{SLUG}/current", {200})
        if r is None:
            continue
        current = r.json()["version"]
        highest = max(highest, current, key=number)
        major, minor = number(highest)
        big = actor.rng.random() < 0.25
        version = f"{major + 1}.0" if big else f"{major}.{minor + 1}"
        # 409 when another editor drafted a higher number first: take the next one after it.
        r = actor.call(
            "draft.create",
            "POST",
            versions,
            {201, 409},
            json={"version": version, "based_on": current},
            headers=editor,
        )
        if r is None:
            continue
        if r.status_code == 409:
            highest = r.json()["highest_version"]
            if number(highest) < number(version):
                actor.tally.fail(f"draft {version}: 409 although the highest version is {highest}")
            continue
        highest = version
        r = actor.call("draft.read", "GET", f"{versions}/{version}", {200}, headers=editor)
        if r is None:
            continue
        draft = r.json()
        draft["title"] = f"Training Standards {version}"
        clauses = draft["sections"][0]["clauses"]
        clauses[0]["text"] = f"Keep a daily practice (edited for {version})."
        if big and len(clauses) < 8:
            clauses.append(
                {
                    "key": f"A{major + 1}",
                    "kind": "recommendation",
                    "applies_to": "trainer",
                    "text": "Supervise.",
                }
            )
        r = actor.call(
            "draft.replace",
            "PUT",
            f"{versions}/{version}",
            {200},
            json=draft,
            headers={**editor, "If-Match": r.headers["ETag"]},
        )
        if r is None:
            continue
        # 409 when a higher version was published meanwhile: this draft can never be published.
        r = actor.call(
            "publish",
            "POST",
            f"{versions}/{version}/publish",
            {200, 409},
            json={"summary": f"Soak {version}."},
            headers=editor,
        )
        if r is not None and r.status_code == 409 and number(r.json()["highest_version"]) <= number(version):
            actor.tally.fail(f"publish {version}: 409 although the highest published is lower: {r.text}")
        if withdraws and turn % 5 == 0:
            withdraw_current(actor, editor)


def withdraw_current(actor: Actor, editor: dict[str, str]) -> None:
    """Withdraw the current version when another released one would remain. Only one thread
    withdraws, and publishing only adds, so a document is never left without a current version."""
    r = actor.call("versions", "GET", f"/v1/standards/{SLUG}/versions", {200}, params={"limit": 200})
    if r is None:
        return
    page = r.json()
    while page["next_cursor"]:
        more = actor.call(
            "versions",
            "GET",
            f"/v1/standards/{SLUG}/versions",
            {200},
            params={"limit": 200, "cursor": page["next_cursor"]},
        )
        if more is None:
            return
        page = {"data": page["data"] + more.json()["data"], "next_cursor": more.json()["next_cursor"]}
    live = [v for v in page["data"] if v["status"] in ("published", "superseded")]
    current = [v["version"] for v in live if v["status"] == "published"]
    if len(live) >= 2 and current:
        actor.call(
            "withdraw", "POST", f"/v1/standards/{SLUG}/versions/{current[0]}/withdraw", {200}, headers=editor
        )


def steward_loop(
    actor: Actor,
    steward: dict[str, str],
    stop: threading.Event,
    known: list[str],
    name: str,
    own: tuple[str, dict[str, str]] | None,
) -> None:
    """List schools, then patch, align, withdraw alignment or delist one of this thread's."""
    mine: list[str] = []
    turn = 0
    while not stop.is_set():
        turn += 1
        r = actor.call(
            "school.create",
            "POST",
            "/v1/schools",
            {201},
            json={
                "name": f"Soak {name} School {turn}",
                "country": actor.rng.choice(["CH", "BR", "TR", "PL", "JP", "NL", "CA"]),
                "city": actor.rng.choice(CITIES),
                "programmes": ["MBSR"] if turn % 2 else ["MBCT", "MSC"],
                "languages": ["en", "de-CH"],
                "contact": {"email": f"office{turn}@school.example.org"},
            },
            headers=steward,
        )
        if r is not None:
            mine.append(r.json()["id"])
            known.append(r.json()["id"])
        for _ in range(2):
            if not mine:
                break
            school = actor.rng.choice(mine)
            action = actor.rng.choices(["patch", "align", "unalign", "delist"], weights=[4, 5, 1, 1])[0]
            if action == "patch":
                patch_school(actor, "school.patch", school, steward)
            elif action == "align":
                state_alignment(actor, "alignment.state", school, steward)
            elif action == "unalign":
                # 409 when there is no alignment to withdraw (never stated, or already withdrawn).
                actor.call(
                    "alignment.withdraw",
                    "POST",
                    f"/v1/schools/{school}/alignment/withdraw",
                    {200, 409},
                    headers=steward,
                )
            else:
                actor.call("school.delist", "POST", f"/v1/schools/{school}/delist", {200}, headers=steward)
                mine.remove(school)
        if own is not None:
            school, headers = own
            patch_school(actor, "school.self.patch", school, headers)
            state_alignment(actor, "alignment.self.state", school, headers)


def patch_school(actor: Actor, op: str, school: str, headers: dict[str, str]) -> None:
    r = actor.call(f"{op}.read", "GET", f"/v1/schools/{school}", {200}, headers=headers)
    if r is None:
        return
    # 412 when the school changed between the read and the patch (its alignment, by a publish).
    sent = r.headers["ETag"]
    r = actor.call(
        op,
        "PATCH",
        f"/v1/schools/{school}",
        {200, 412},
        json={
            "city": actor.rng.choice(CITIES),
            "website": f"https://s{actor.rng.randrange(999)}.example.org/",
        },
        headers={**headers, **MERGE_PATCH, "If-Match": sent},
    )
    if r is not None and r.status_code == 412:
        again = actor.call(f"{op}.read", "GET", f"/v1/schools/{school}", {200}, headers=headers)
        if again is not None and again.headers["ETag"] == sent:
            actor.tally.fail(f"{op}: 412 for {school} although its ETag {sent} is still current")


def state_alignment(actor: Actor, op: str, school: str, headers: dict[str, str]) -> None:
    r = actor.call("current", "GET", f"/v1/standards/{SLUG}/current", {200})
    if r is None:
        return
    # 422 when that version was withdrawn, or a newer major published, since it was read.
    actor.call(
        op,
        "POST",
        f"/v1/schools/{school}/alignment",
        {200, 422},
        json={
            "version": r.json()["version"],
            "evidence_url": "https://school.example.org/alignment",
            "stated_by": "Mira Example, director",
        },
        headers=headers,
    )


def reader_loop(actor: Actor, stop: threading.Event, known: list[str]) -> None:
    """Public reads of everything; feed pages must be gap-free, /current must be published."""
    current = f"/v1/standards/{SLUG}/current"
    while not stop.is_set():
        r = actor.call("read.current", "GET", current, {200})
        if r is not None and r.json()["status"] != "published":
            actor.tally.fail(f"/current served a {r.json()['status']} version {r.json()['version']}")
        actor.call("read.current.html", "GET", current, {200}, headers={"Accept": "text/html"})
        r = actor.call("read.current.fr", "GET", current, {200}, params={"lang": "fr"})
        if r is not None and r.headers["Content-Language"] != "en":
            actor.tally.fail(f"?lang=fr fell back to {r.headers['Content-Language']}, not en")
        actor.call("read.versions", "GET", f"/v1/standards/{SLUG}/versions", {200})
        actor.call(
            "read.search", "GET", "/v1/schools", {200}, params={"q": actor.rng.choice(["soak", "zur", "sao"])}
        )
        actor.call("read.search", "GET", "/v1/schools", {200}, params={"status": "aligned", "limit": 20})
        if known:
            school = actor.rng.choice(known)
            actor.call("read.school", "GET", f"/v1/schools/{school}", {200, 410})  # 410 once delisted
            actor.call("read.affiliation", "GET", f"/v1/schools/{school}/affiliation", {200})
            actor.call("read.history", "GET", f"/v1/schools/{school}/alignment/history", {200, 410})
        after = actor.rng.randrange(0, 40)
        r = actor.call("read.feed", "GET", "/v1/events", {200}, params={"after": after, "limit": 50})
        if r is not None:
            sequences = [e["sequence"] for e in r.json()["data"]]
            if sequences != list(range(after + 1, after + 1 + len(sequences))):
                actor.tally.fail(f"feed page after {after} is not gap-free: {sequences}")
        if actor.rng.random() < 0.2:
            actor.call("read.snapshot", "GET", "/v1/snapshot", {200})
