"""Anonymous search pages served from the public-representation cache (``web/cache.py`` and
its ``PublicReads`` layer): byte-identical to uncached answers, read-your-writes on
this replica, other processes' writes seen within the poll interval, bounded, and never used
for requests with ``Authorization``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.registry import search
from service.registry import search_router as registry_router
from service.web.cache import ENTRY_OVERHEAD, POLL_S, Built, PublicCache, Resource

ROOT = Path(__file__).resolve().parents[2]
#: Headers a cached page must repeat exactly (Content-Length included: same bytes).
COMPARED = ("etag", "link", "cache-control", "vary", "content-type", "content-length")


@pytest.fixture
def queries(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Records the ``q`` of every search that reached the database."""
    seen: list[str] = []
    real = search.search

    def counting(**kwargs: Any) -> Any:
        seen.append(" ".join(kwargs["filters"].words))
        return real(**kwargs)

    monkeypatch.setattr(search, "search", counting)
    yield seen


def _names(client: TestClient, headers: dict[str, str] | None = None, **params: Any) -> list[str]:
    r = client.get("/v1/schools", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return [s["name"] for s in r.json()["data"]]


def _compared(r: Any) -> dict[str, str | None]:
    return {name: r.headers.get(name) for name in COMPARED}


def test_cached_and_uncached_answers_are_byte_identical(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    auth: Callable[..., dict[str, str]],
    queries: list[str],
) -> None:
    for n in range(3):
        make_school(name=f"Zürich Mindful {n}", alternate_names=[{"value": "Zúri", "lang": "gsw"}])
    path = "/v1/schools?q=zur&limit=2"
    built = client.get(path)  # a miss: the route queries and fills the cache
    served = client.get(path)  # a hit: answered before routing
    assert queries == ["zur"]
    assert built.status_code == served.status_code == 200
    assert built.content == served.content
    assert _compared(built) == _compared(served)
    assert built.headers["link"].startswith("<http://testserver/v1/schools?q=zur&limit=2&cursor=")
    assert built.headers["cache-control"] == "public, max-age=60"

    # A token that is not a steward's gets the same page, computed afresh.
    association = auth("webhooks:manage")
    fresh = client.get(path, headers=association)
    assert queries == ["zur", "zur"]
    assert fresh.content == served.content
    assert _compared(fresh) == _compared(served)

    # HEAD and 304 answer the same headers on either path.
    head = client.head(path)
    assert head.content == b"" and _compared(head) == _compared(served)
    etag = served.headers["etag"]
    for headers in ({"If-None-Match": etag}, {"If-None-Match": f'W/{etag}, "x"', **association}):
        r = client.get(path, headers=headers)
        assert r.status_code == 304 and r.content == b""
        assert {k: v for k, v in _compared(r).items() if k not in ("content-type", "content-length")} == {
            k: v for k, v in _compared(served).items() if k not in ("content-type", "content-length")
        }
    assert queries == ["zur", "zur", "zur"]

    # The next page, reached through the cached Link, is cached under its cursor.
    cursor = served.json()["next_cursor"]
    second = client.get("/v1/schools", params={"q": "zur", "limit": 2, "cursor": cursor})
    assert [s["name"] for s in second.json()["data"]] == ["Zürich Mindful 2"]
    assert second.json()["next_cursor"] is None and "link" not in second.headers
    # The same filters spelled differently share the page (one key), with their own Link.
    assert _names(client, q="ZÜR", limit=2) == ["Zürich Mindful 0", "Zürich Mindful 1"]
    assert queries == ["zur", "zur", "zur", "zur"]
    assert "q=Z%C3%9CR&limit=2&cursor=" in client.get("/v1/schools?q=Z%C3%9CR&limit=2").headers["link"]


def test_a_write_through_this_replica_is_searchable_at_once(
    client: TestClient,
    make_school: Callable[..., dict[str, Any]],
    steward: dict[str, str],
    publish: Callable[[str], dict[str, Any]],
    state: Callable[..., Any],
) -> None:
    assert _names(client, q="lucerne") == []
    assert _names(client, q="lucerne") == []  # cached
    school = make_school(name="Lucerne Breath Centre", country="CH")
    assert _names(client, q="lucerne") == ["Lucerne Breath Centre"]

    etag = client.get(f"/v1/schools/{school['id']}").headers["ETag"]
    r = client.patch(
        f"/v1/schools/{school['id']}",
        json={"name": "Luzern Breath Centre"},
        headers={**steward, "If-Match": etag},
    )
    assert r.status_code == 200, r.text
    assert _names(client, q="lucerne") == []
    assert _names(client, q="luzern") == ["Luzern Breath Centre"]

    publish("1.0")
    assert _names(client, q="luzern", status="aligned") == []
    assert state(school["id"], "1.0").status_code == 200
    assert _names(client, q="luzern", status="aligned") == ["Luzern Breath Centre"]

    assert client.post(f"/v1/schools/{school['id']}/delist", headers=steward).status_code == 200
    assert _names(client, q="luzern") == []
    assert _names(client, q="luzern", status="aligned") == []
    assert _names(client, steward, q="luzern") == ["Luzern Breath Centre"]  # stewards bypass the cache


def test_another_process_write_is_seen_within_the_poll_interval(
    client: TestClient, settings: Any, auth: Callable[..., dict[str, str]], queries: list[str]
) -> None:
    assert _names(client, q="geneva") == []
    assert _names(client, q="geneva") == []
    assert queries == ["geneva"]
    # Another process (its own engine, its own in-process notifications) lists a school.
    script = textwrap.dedent(
        """
        from service.core.config import Settings
        from service.core.db import make_engine, transaction
        from service.registry import service
        from service.registry.schemas import SchoolCreate
        engine = make_engine(Settings().database_url)
        with transaction(engine) as session:
            service.create_school(
                session=session, data=SchoolCreate(name="Geneva Stillness", country="CH"),
                actor="test", base_url="http://testserver",
            )
        """
    )
    env = {**os.environ, "IMI_DATABASE_URL": settings.database_url, "IMI_KEYS_DIR": str(settings.keys_dir)}
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True, timeout=60)
    written = time.monotonic()
    # A request with a token never reads the cache: it sees the school at once.
    assert _names(client, auth("webhooks:manage"), q="geneva") == ["Geneva Stillness"]
    while _names(client, q="geneva") != ["Geneva Stillness"]:
        assert time.monotonic() - written < POLL_S + 0.5, "the cached page outlived the poll interval"
        time.sleep(0.02)


def test_pages_are_rebuilt_after_max_age_without_an_event(
    client: TestClient,
    app: Any,
    make_school: Callable[..., dict[str, Any]],
    steward: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Erasing contact details writes no event, yet changes the public `updated_at`.
    school = make_school(name="Basel Calm", contact={"email": "office@basel-calm.example.org"})
    before = client.get("/v1/schools", params={"q": "basel"}).json()["data"][0]["updated_at"]
    assert client.delete(f"/v1/schools/{school['id']}/contact", headers=steward).status_code == 204
    erased = client.get(f"/v1/schools/{school['id']}").json()["updated_at"]
    assert erased != before
    assert client.get("/v1/schools", params={"q": "basel"}).json()["data"][0]["updated_at"] == before
    monkeypatch.setattr(registry_router.SEARCH, "max_age_s", 0.2)
    time.sleep(0.25)
    assert client.get("/v1/schools", params={"q": "basel"}).json()["data"][0]["updated_at"] == erased


def test_the_cache_is_bounded_least_recently_used_first(engine: Any) -> None:
    built: list[str] = []
    pages = Resource(route="/v1/schools", domains=("school",))

    def page(cache: PublicCache, name: str, size: int = 10) -> Any:
        def build(_previous: Any) -> Built:
            built.append(name)
            return Built(body=b"x" * size, media_type="application/json", headers={"ETag": f'"{name}"'})

        return asyncio.run(cache.fetch(pages, (search.Filters(words=(name,)), None, 50), build))

    by_count = PublicCache(engine, max_entries=2)
    for name in ("a", "b", "a", "c"):  # reading a makes b the least recently used
        page(by_count, name)
    assert len(by_count) == 2 and built == ["a", "b", "c"]
    page(by_count, "a")
    page(by_count, "b")  # evicted
    assert built == ["a", "b", "c", "b"]

    built.clear()
    # Sizes count the body plus a fixed overhead per entry.
    by_bytes = PublicCache(engine, max_bytes=1000 + 3 * ENTRY_OVERHEAD)
    for name, size in (("a", 10), ("b", 10), ("a", 10), ("big", 985)):  # 1005 bytes: b goes
        page(by_bytes, name, size)
    page(by_bytes, "a")
    page(by_bytes, "b")
    assert built == ["a", "b", "big", "b"]
    page(by_bytes, "huge", 1001 + 2 * ENTRY_OVERHEAD)  # more than the whole budget: served, never kept
    page(by_bytes, "huge", 1001 + 2 * ENTRY_OVERHEAD)
    assert built[-2:] == ["huge", "huge"]
