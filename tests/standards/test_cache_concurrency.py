"""The representation cache (keys, invalidation, replicas) and concurrent publishes."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from service.standards.cache import CacheKey, Entry, RepresentationCache, request_key
from service.web.http import HTML, JSON, MARKDOWN
from tests.standards.conftest import DEMO_V1, Api

DOC = "/v1/standards/demo"


def test_request_key_is_a_pure_function_of_path_query_and_accept() -> None:
    assert request_key("/v1/standards/demo/current", "", None) == CacheKey("demo", "current", "", JSON)
    assert request_key("/v1/standards/demo/versions/2.0", b"lang=pt-br", "text/html") == CacheKey(
        "demo", "2.0", "pt-BR", HTML
    )
    assert request_key(
        "/v1/standards/demo/versions/2.0", "lang=fr&lang=iw", "text/markdown;q=1, */*;q=0.1"
    ) == (CacheKey("demo", "2.0", "he", MARKDOWN))
    for path, query, accept in (
        ("/v1/standards/demo", "", None),
        ("/v1/standards/demo/versions", "", None),
        ("/v1/standards/demo/versions/2.0/clauses/A1", "", None),
        ("/v1/standards/demo/current/", "", None),
        ("/v1/events", "", None),
        ("/v1/standards/demo/current", "lang=en_US", None),
        ("/v1/standards/demo/current", "", "application/xml"),
    ):
        assert request_key(path, query, accept) is None, (path, query, accept)


def test_published_reads_are_served_from_memory_and_dropped_on_publish(demo: Api, app: Any) -> None:
    c = demo.client
    first = c.get(f"{DOC}/current")
    cache: RepresentationCache = app.state.standards_cache
    entry = cache.get(CacheKey("demo", "current", "", JSON))
    assert entry is not None
    assert (entry.version, entry.status, entry.body) == ("2.0", "published", first.content)
    assert entry.etag == first.headers["etag"]
    c.get(f"{DOC}/versions/1.0", headers={"Accept": "text/html"})
    assert cache.get(CacheKey("demo", "1.0", "", HTML)) is not None
    c.get(f"{DOC}/versions/1.0", params={"lang": "fr"})
    assert cache.get(CacheKey("demo", "1.0", "fr", JSON)) is None  # a fallback is stored once, as "en"
    fallback = cache.lookup(CacheKey("demo", "1.0", "fr", JSON))
    assert fallback is not None and fallback.content_language == "en"
    assert fallback is cache.get(CacheKey("demo", "1.0", "en", JSON))
    again = c.get(f"{DOC}/versions/1.0", params={"lang": "fr-CA"})
    assert again.headers["content-language"] == "en" and again.content == fallback.body
    diff = c.get(f"{DOC}/diff", params={"from": "1.0", "to": "2.0"})
    diff_entry = cache.get(CacheKey("demo", "diff/1.0/2.0", "", JSON))
    assert diff_entry is not None and diff_entry.body == diff.content
    assert "content-language" not in diff.headers
    assert (
        c.get(
            f"{DOC}/diff",
            params={"from": "1.0", "to": "2.0"},
            headers={"If-None-Match": diff.headers["etag"]},
        ).status_code
        == 304
    )
    # drafts are never cached
    demo.draft("3.0", based_on="2.0")
    c.get(f"{DOC}/versions/3.0", headers=demo.headers)
    assert cache.get(CacheKey("demo", "3.0", "", JSON)) is None
    demo.publish("3.0")
    assert len(cache) == 0
    assert c.get(f"{DOC}/current").json()["version"] == "3.0"
    assert c.get(f"{DOC}/versions/2.0").json()["status"] == "superseded"


def test_epoch_guard_and_cross_replica_refresh(demo: Api, engine: Any) -> None:
    replica = RepresentationCache(listen=False)  # another process: sees only the database
    assert replica.refresh_generation(engine) is True
    assert replica.generation == 2
    key = CacheKey("demo", "current", "", JSON)
    stale = Entry(b"{}", '"x"', JSON, "en", "public, max-age=60", None, "2.0", "published")
    assert replica.put(key, stale) is True
    assert replica.refresh_generation(engine) is False
    assert replica.get(key) is stale
    demo.draft("3.0", based_on="2.0")
    demo.publish("3.0")
    assert replica.get(key) is stale  # not told in-process
    assert replica.refresh_generation(engine) is True
    assert replica.get(key) is None
    assert replica.generation == 3
    # a reader that started before a clear cannot store what it read
    epoch = replica.epoch
    replica.clear()
    assert replica.put(key, stale, epoch=epoch) is False
    assert replica.get(key) is None


def _publish_all(api: Api, versions: list[str]) -> dict[str, int]:
    barrier = threading.Barrier(len(versions))

    def go(version: str) -> int:
        barrier.wait()
        return api.client.post(f"{DOC}/versions/{version}/publish", headers=api.headers).status_code

    with ThreadPoolExecutor(len(versions)) as pool:
        return dict(zip(versions, pool.map(go, versions), strict=True))


def test_concurrent_publishes_of_different_drafts(api: Api) -> None:
    api.release("1.0", DEMO_V1)
    drafts = ["2.0", "3.0", "4.0", "5.0"]
    for v in drafts:
        api.draft(v, based_on="1.0")
    codes = _publish_all(api, drafts)
    assert set(codes.values()) <= {200, 409}
    assert codes["5.0"] == 200  # the highest can always be published
    listed = {
        v["version"]: v["status"]
        for v in api.client.get(f"{DOC}/versions", headers=api.headers).json()["data"]
    }
    assert [v for v, s in listed.items() if s == "published"] == ["5.0"]
    for v in drafts[:-1]:
        assert listed[v] == ("superseded" if codes[v] == 200 else "draft"), (v, codes)
    assert listed["1.0"] == "superseded"
    events = [e["data"] for e in api.client.get("/v1/events").json()["data"]]
    published = [e["version"] for e in events]
    assert published == ["1.0"] + sorted((v for v in drafts if codes[v] == 200), key=float)
    # each publish names the version it superseded: the chain is unbroken
    assert [e["previous_version"] for e in events] == [None, *published[:-1]]


def test_same_draft_published_twice_at_once(api: Api) -> None:
    api.release("1.0", DEMO_V1)
    api.draft("2.0", based_on="1.0")
    barrier = threading.Barrier(2)

    def go(_: int) -> int:
        barrier.wait()
        return api.client.post(f"{DOC}/versions/2.0/publish", headers=api.headers).status_code

    with ThreadPoolExecutor(2) as pool:
        codes = sorted(pool.map(go, range(2)))
    assert codes == [200, 409]
    events = api.client.get("/v1/events").json()["data"]
    assert [e["data"]["version"] for e in events] == ["1.0", "2.0"]
    assert api.client.get(f"{DOC}/current").json()["version"] == "2.0"


def test_readers_missing_together_share_one_build(demo: Api, app: Any, monkeypatch: Any) -> None:
    """After a publish every reader misses at once; eight connections used to build `current` eight
    times side by side, which stalled reads (p99 up to 85 ms in bench/fanout.py, now ~5-15 ms)."""
    from service.standards import router as standards_router

    builds: list[str] = []
    real_build = standards_router._build

    def counting_build(*args: Any) -> Entry:
        builds.append(args[1])
        return real_build(*args)

    monkeypatch.setattr(standards_router, "_build", counting_build)
    cache: RepresentationCache = app.state.standards_cache
    cache.clear()

    async def read_all(path: str, headers: dict[str, str] | None = None, n: int = 8) -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return await asyncio.gather(*(http.get(path, headers=headers) for _ in range(n)))

    answers = asyncio.run(read_all(f"{DOC}/current"))
    assert [r.status_code for r in answers] == [200] * 8
    assert len({r.content for r in answers}) == 1
    assert builds == ["demo"]
    # A bearer may be shown a draft: it never shares an anonymous build, nor one of its own.
    cache.clear()
    builds.clear()
    answers = asyncio.run(read_all(f"{DOC}/current", headers=demo.headers, n=3))
    assert [r.status_code for r in answers] == [200] * 3 and len(builds) == 3
    # A failed build reaches every waiter, and nothing stays in flight.
    builds.clear()
    missing = asyncio.run(read_all("/v1/standards/no-such-doc/current"))
    assert [r.status_code for r in missing] == [404] * 8
    assert builds == ["no-such-doc"]
    assert cache._flights == {}
