"""The representation cache (keys, invalidation, replicas) and concurrent publishes."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlmodel import Session

from service.core import changes
from service.core.db import transaction
from service.standards import service
from service.standards.representations import CURRENT, representation_key
from service.web.cache import Built, Entry, PublicCache
from service.web.http import HTML, JSON, MARKDOWN
from tests.standards.conftest import DEMO_V1, Api

DOC = "/v1/standards/demo"


def _key(version: str, lang: str = "", media: str = JSON) -> Any:
    return representation_key("demo", version, lang, media)


def test_spellings_of_one_request_share_one_entry(demo: Api, app: Any) -> None:
    """The key is the route's normalised request (path, ``lang``, negotiated media type): every
    spelling of one representation is one entry; what the app refuses is never stored."""
    c = demo.client
    cache: PublicCache = app.state.public_cache
    assert c.get(f"{DOC}/current").status_code == 200
    assert cache.stored(_key("current")) is not None
    for lang in ("pt-br", "pt-BR", "PT-br"):
        assert (
            c.get(f"{DOC}/versions/2.0", params={"lang": lang}, headers={"Accept": "text/html"}).status_code
            == 200
        )
    # no pt translation: stored once, under the served language, and found from pt-BR
    assert cache.stored(_key("2.0", "pt-BR", HTML)) is None
    assert cache.get(_key("2.0", "pt-BR", HTML)) is cache.stored(_key("2.0", "en", HTML))
    c.get(
        f"{DOC}/versions/2.0",
        params=[("lang", "fr"), ("lang", "iw")],
        headers={"Accept": "text/markdown;q=1, */*;q=0.1"},
    )
    assert cache.get(_key("2.0", "he", MARKDOWN)) is cache.stored(_key("2.0", "en", MARKDOWN))
    before = len(cache)
    for path, params, accept, status in (
        (f"{DOC}/current/", {}, None, 404),
        (f"{DOC}/current", {"lang": "en_US"}, None, 422),
        (f"{DOC}/current", {}, "application/xml", 406),
        (f"{DOC}/versions/9.9", {}, None, 404),
    ):
        headers = {"Accept": accept} if accept else {}
        assert c.get(path, params=params, headers=headers).status_code == status, (path, params, accept)
    assert len(cache) == before


def test_published_reads_are_served_from_memory_and_dropped_on_publish(demo: Api, app: Any) -> None:
    c = demo.client
    first = c.get(f"{DOC}/current")
    cache: PublicCache = app.state.public_cache
    entry = cache.get(_key("current"))
    assert entry is not None
    assert (entry.meta.version, entry.meta.status, entry.body) == ("2.0", "published", first.content)
    assert entry.etag == first.headers["etag"]
    c.get(f"{DOC}/versions/1.0", headers={"Accept": "text/html"})
    assert cache.get(_key("1.0", media=HTML)) is not None
    c.get(f"{DOC}/versions/1.0", params={"lang": "fr"})
    assert cache.stored(_key("1.0", "fr")) is None  # a fallback is stored once, as "en"
    fallback = cache.get(_key("1.0", "fr"))
    assert fallback is not None and fallback.meta.content_language == "en"
    assert fallback is cache.get(_key("1.0", "en"))
    again = c.get(f"{DOC}/versions/1.0", params={"lang": "fr-CA"})
    assert again.headers["content-language"] == "en" and again.content == fallback.body
    diff = c.get(f"{DOC}/diff", params={"from": "1.0", "to": "2.0"})
    diff_entry = cache.get(("standards-diff", "demo", "1.0", "2.0"))
    assert diff_entry is not None and diff_entry.body == diff.content
    assert diff.headers["content-language"] == "en"  # issue 16: Content-Language always (it was absent)
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
    assert cache.stored(_key("3.0")) is None
    stored = [k for k in (_key("current"), _key("1.0", media=HTML), _key("1.0", "en")) if cache.stored(k)]
    demo.publish("3.0")
    assert [k for k in stored if cache.get(k) is not None] == []  # none is served any more
    assert c.get(f"{DOC}/current").json()["version"] == "3.0"
    assert c.get(f"{DOC}/versions/2.0").json()["status"] == "superseded"


def test_stamp_guard_and_cross_replica_refresh(demo: Api, app: Any, engine: Any) -> None:
    cache: PublicCache = app.state.public_cache
    clock = cache.clock
    clock.apply(clock.poll())
    stamp = clock.stamp(("standards",))
    # Another replica publishes: only the database knows (no commit hook of this process runs).
    demo.draft("3.0", based_on="2.0")
    with Session(engine) as session:
        service.publish(session=session, slug="demo", version="3.0", actor="other-replica", base_url="x")
        session.commit()
    assert clock.stamp(("standards",)) == stamp  # not told in-process
    clock.apply(clock.poll())  # what the 0.5 s poll runs
    assert clock.stamp(("standards",)) != stamp
    # A representation read before a change is never served after it.
    stale = Entry(
        CURRENT, _key("current"), Built(body=b"{}", media_type=JSON, headers={"ETag": '"x"'}), stamp
    )
    cache._store(stale)
    assert cache.stored(_key("current")) is stale and cache.get(_key("current")) is None
    # ... nor one read while a commit of this process touching its domain was under way.
    with transaction(engine) as session:
        changes.touch(session, "standards")
        in_flight = []
        real_commit = session.commit

        def commit_and_probe() -> None:
            in_flight.append(clock.stamp(("standards",)))
            real_commit()

        session.commit = commit_and_probe  # type: ignore[method-assign]
    assert in_flight and -1 in in_flight[0]
    assert -1 not in clock.stamp(("standards",))


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
    from service.standards import representations as standards_router

    builds: list[str] = []
    real_build = standards_router._build

    def counting_build(*args: Any) -> Built:
        builds.append(args[1])
        return real_build(*args)

    monkeypatch.setattr(standards_router, "_build", counting_build)
    cache: PublicCache = app.state.public_cache
    cache.clear()
    # The stamp each build ran under: readers share a build of one (key, stamp). A generation
    # that moves between readers (another thread of the suite committing on a loaded machine)
    # rightly starts a second build under the new stamp; two builds of one stamp never happen.
    stamps: list[tuple[int, ...]] = []
    real_cache_build = cache._build

    async def stamped_build(resource: Any, key: Any, build: Any, stamp: tuple[int, ...]) -> Any:
        stamps.append(stamp)
        return await real_cache_build(resource, key, build, stamp)

    monkeypatch.setattr(cache, "_build", stamped_build)

    async def read_all(path: str, headers: dict[str, str] | None = None, n: int = 8) -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return await asyncio.gather(*(http.get(path, headers=headers) for _ in range(n)))

    answers = asyncio.run(read_all(f"{DOC}/current"))
    assert [r.status_code for r in answers] == [200] * 8
    assert len({r.content for r in answers}) == 1
    assert len(stamps) == len(set(stamps)) == len(builds)
    assert set(builds) == {"demo"}
    # A bearer may be shown a draft: it never shares an anonymous build, nor one of its own.
    cache.clear()
    builds.clear()
    answers = asyncio.run(read_all(f"{DOC}/current", headers=demo.headers, n=3))
    assert [r.status_code for r in answers] == [200] * 3 and len(builds) == 3
    # A failed build reaches every waiter, and nothing stays in flight.
    builds.clear()
    stamps.clear()
    missing = asyncio.run(read_all("/v1/standards/no-such-doc/current"))
    assert [r.status_code for r in missing] == [404] * 8
    assert len(stamps) == len(set(stamps)) == len(builds)
    assert set(builds) == {"no-such-doc"}
    assert cache._flights == {}
