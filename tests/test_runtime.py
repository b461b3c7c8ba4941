"""The runtime service: futures, the LRU cache, thread safety, streaming worlds."""
import threading
from concurrent.futures import Future, wait

import numpy as np
import pytest

import engine
from engine import InputError, serialize
from engine.runtime import Runtime, context_key

REQUESTS = [
    ("level", "dungeon", s, {"width": 24, "height": 24, "rooms": 4}) for s in range(6)
] + [
    ("level", "terrain", s, {"width": 32, "height": 32, "chunk_x": s - 2}) for s in range(4)
] + [
    ("level", "platformer", s, {}) for s in range(3)
] + [
    ("character", None, s, {}) for s in range(4)
] + [
    ("story", None, s, {}) for s in range(3)
]


@pytest.fixture()
def eng():
    e = engine.Engine(entry_points=False)
    yield e
    e.close()


@pytest.fixture(scope="module")
def reference():
    e = engine.Engine(entry_points=False)
    return [serialize.dumps(e.generate(k, g, s, p)) for k, g, s, p in REQUESTS]


def test_submit_returns_a_future_with_the_same_content(eng, reference):
    f = eng.submit("level", "dungeon", 0, {"width": 24, "height": 24, "rooms": 4})
    assert isinstance(f, Future)
    assert serialize.dumps(f.result(60)) == reference[0]


def test_bad_requests_raise_at_once(eng):
    with pytest.raises(InputError, match="width"):
        eng.submit("level", "dungeon", 0, {"width": 3})
    with pytest.raises(InputError, match="unknown level generator"):
        eng.submit("level", "nope")


def test_cache_hits_give_private_copies(eng, reference):
    rt = eng.runtime()
    params = {"width": 24, "height": 24, "rooms": 4}
    a = eng.submit("level", "dungeon", 0, params).result(60)
    b = eng.submit("level", "dungeon", 0, dict(params, treasure=3)).result(60)  # explicit default: same key
    st = rt.stats()
    assert st["misses"] == 1 and st["hits"] == 1 and st["items"] == 1
    assert a is not b and serialize.dumps(a) == serialize.dumps(b) == reference[0]
    b.layers["tiles"][0, 0] = 99  # a caller's changes never reach the cache
    c = eng.submit("level", "dungeon", 0, params).result(60)
    assert serialize.dumps(c) == reference[0]
    eng.submit("level", "dungeon", 1, params).result(60)
    assert rt.stats()["misses"] == 2


def test_concurrent_same_requests_generate_once(eng):
    rt = eng.runtime()
    fs = [eng.submit("level", "dungeon", 42, {"width": 32, "height": 32}) for _ in range(6)]
    outs = [f.result(60) for f in fs]
    assert rt.stats()["misses"] == 1 and rt.stats()["hits"] == 5
    assert len({serialize.dumps(o) for o in outs}) == 1
    assert len({id(o) for o in outs}) == 6


def test_lru_evicts_oldest():
    e = engine.Engine(entry_points=False)
    with Runtime(e, workers=2, cache_items=2) as rt:
        for s in (1, 2, 3):
            rt.generate("character", seed=s)
        assert rt.stats()["items"] == 2
        rt.generate("character", seed=3)
        rt.generate("character", seed=1)  # evicted: generated again
        assert rt.stats()["misses"] == 4 and rt.stats()["hits"] == 1


def test_context_keys(eng):
    level = eng.generate("level", "dungeon", 3, {"width": 24, "height": 24, "rooms": 4})
    k1 = context_key({"level": level})
    assert k1 and k1 == context_key({"level": serialize.loads(serialize.dumps(level))})
    assert context_key({}) == "" and context_key(None) == ""
    assert context_key({"note": [1, "a", {"b": 2.5}]})
    assert context_key({"thing": object()}) is None  # not content, not plain data: uncacheable
    rt = eng.runtime()
    a = eng.submit("story", None, 1, {}, {"level": level}).result(60)
    b = eng.submit("story", None, 1, {}, {"level": level}).result(60)
    assert serialize.dumps(a) == serialize.dumps(b) and rt.stats()["hits"] == 1


def test_eight_threads_equal_one_thread(reference):
    """8 pool threads, cache off, every request three times at once: the bytes one thread makes."""
    e = engine.Engine(entry_points=False)
    with Runtime(e, workers=8, cache_items=0) as rt:
        futures = [(i, rt.submit(k, g, s, p)) for _ in range(3) for i, (k, g, s, p) in enumerate(REQUESTS)]
        wait([f for _, f in futures], timeout=300)
        for i, f in futures:
            assert serialize.dumps(f.result()) == reference[i], REQUESTS[i]


def _learned_requests(e) -> list:
    """A request for every learned (trainable) generator registered, found by protocol, not by id."""
    from engine.generator import Trainable

    return [(g.kind, g.id, 3, {}) for g in e.generators() if isinstance(g, Trainable)]


def test_learned_generators_eight_threads_equal_one_thread():
    """The learned generators (shared models, torch) under 8 pool threads, cache off, each request three
    times at once and interleaved with the others: the bytes one thread makes, one request at a time."""
    e = engine.Engine(entry_points=False)
    requests = _learned_requests(e)
    assert {k for k, *_ in requests} == {"level", "character", "story"}, requests  # every kind has one
    one = [serialize.dumps(e.generate(k, g, s, p)) for k, g, s, p in requests]
    with Runtime(e, workers=8, cache_items=0) as rt:
        futures = [(i, rt.submit(k, g, s, p)) for _ in range(3) for i, (k, g, s, p) in enumerate(requests)]
        wait([f for _, f in futures], timeout=300)
        for i, f in futures:
            assert serialize.dumps(f.result()) == one[i], requests[i]


def test_raw_threads_share_one_engine(reference):
    """8 plain threads calling Engine.generate on one engine at the same time."""
    e = engine.Engine(entry_points=False)
    results: dict = {}
    barrier = threading.Barrier(8)

    def work(t):
        barrier.wait()
        order = list(range(len(REQUESTS)))[t:] + list(range(len(REQUESTS)))[:t]
        for i in order:
            k, g, s, p = REQUESTS[i]
            results[(t, i)] = serialize.dumps(e.generate(k, g, s, p))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert len(results) == 8 * len(REQUESTS)
    for (t, i), data in results.items():
        assert data == reference[i]


def test_world_chunks_are_seamless(eng):
    world = eng.world(seed=99, chunk_size=32)
    row = np.hstack([world.chunk(cx, 0).tiles for cx in (-2, -1, 0, 1)])
    big_left = eng.generate("level", "terrain", 99, {"width": 64, "height": 32, "chunk_x": -1}).tiles
    big_right = eng.generate("level", "terrain", 99, {"width": 64, "height": 32, "chunk_x": 0}).tiles
    assert np.array_equal(row, np.hstack([big_left, big_right]))
    col = np.vstack([world.chunk(3, cy).tiles for cy in (4, 5)])
    big = eng.generate("level", "terrain", 99, {"width": 32, "height": 64, "chunk_x": 3, "chunk_y": 2}).tiles
    assert np.array_equal(col, big)
    lvl = world.chunk(1, -1)
    assert lvl.metadata["world_x"] == 32 and lvl.metadata["world_y"] == -32
    assert world.tile(40, -20) == int(lvl.tiles[12, 8])


def test_world_around_prefetches_neighbours(eng):
    world = eng.world(seed=5, chunk_size=16, prefetch=1)
    got = world.around(20, 20, radius=1)  # world tile (20, 20) is in chunk (1, 1)
    assert sorted(got) == sorted((x, y) for x in (0, 1, 2) for y in (0, 1, 2))
    assert list(got)[0] == (1, 1)  # nearest first
    assert len(world.prefetching) == 16  # the next ring
    wait(world.prefetching, timeout=120)
    assert world.is_cached(3, 3) and world.is_cached(-1, 1)
    assert not world.is_cached(4, 4)
    hits = eng.runtime().stats()["hits"]
    world.chunk(3, 3)
    assert eng.runtime().stats()["hits"] >= hits
    ready = world.ready(100, 100, radius=0)  # never blocks
    assert set(ready) <= {(6, 6)}


def test_world_params_checked(eng):
    with pytest.raises(InputError):
        eng.world(seed=1, chunk_size=16, params={"chunk_x": 3})
    with pytest.raises(InputError, match="octaves"):
        eng.world(seed=1, chunk_size=16, params={"octaves": 99})


def test_close_stops_the_runtime():
    e = engine.Engine(entry_points=False)
    rt = e.runtime()
    e.submit("character", seed=1).result(60)
    e.close()
    assert rt.closed
    with pytest.raises(InputError, match="closed"):
        rt.submit("character", seed=2)
    assert e.submit("character", seed=2).result(60)  # a new runtime on demand
    e.close()


def test_close_cancels_work_not_started_instead_of_hanging():
    from concurrent.futures import CancelledError

    from engine.runtime import Runtime

    e = engine.Engine(entry_points=False)
    rt = Runtime(e, workers=1)
    futures = [rt.submit("level", "terrain", seed=s, params={"width": 256, "height": 256}) for s in range(6)]
    futures.append(rt.submit("level", "terrain", seed=5, params={"width": 256, "height": 256}))  # a duplicate
    rt.close(wait=True)
    for f in futures:
        assert f.done()  # finished or cancelled: never pending forever
        if f.cancelled():
            with pytest.raises(CancelledError):
                f.result(timeout=1)
        else:
            assert f.result(timeout=1).width == 256
    assert any(f.cancelled() for f in futures)
    with pytest.raises(engine.InputError, match="closed"):
        rt.submit("level", "terrain", seed=1)


class _Strips(engine.Generator):
    """A chunked generator whose size and position params have their own names: row ``y`` of the world is
    all tile ``y % 2``, so chunks join by construction."""

    id = "strips"
    kind = "level"
    params = (engine.Param("w", "int", 8, min=1, max=64), engine.Param("h", "int", 8, min=1, max=64),
              engine.Param("col", "int", 0, min=-99, max=99), engine.Param("row", "int", 0, min=-99, max=99))
    chunking = engine.generator.Chunking(width="w", height="h", x="col", y="row")

    def generate(self, request):
        p = request.params
        ys = np.arange(p["h"]) + p["row"] * p["h"]
        tiles = np.repeat((ys % 2).astype(np.uint8)[:, None], p["w"], axis=1)
        ts = engine.Tileset("strips", [engine.TileDef(0, "a", "."), engine.TileDef(1, "b", "#")])
        return engine.Level({"tiles": tiles}, ts)


class _Plain(_Strips):
    id = "plain"
    chunking = None


class _Broken(_Strips):
    id = "broken-chunks"
    chunking = engine.generator.Chunking(width="w", height="h", x="col", y="nope")


class _ChunkPlugin:
    @engine.hookimpl
    def register_level_generators(self, register):
        register(_Strips())
        register(_Plain())
        register(_Broken())


def test_world_streams_any_generator_that_declares_chunking():
    e = engine.Engine([_ChunkPlugin()], load=[], entry_points=False)
    try:
        world = e.world(seed=3, chunk_size=4, generator="strips")
        col = np.vstack([world.chunk(0, cy).tiles for cy in (-1, 0, 1)])
        assert col[:, 0].tolist() == [(y % 2) for y in range(-4, 8)]
        assert world.chunk(2, 1).metadata["params"] == {"w": 4, "h": 4, "col": 2, "row": 1}
        with pytest.raises(InputError, match="'row' is set by the world"):
            e.world(seed=3, chunk_size=4, generator="strips", params={"row": 2})
        with pytest.raises(InputError, match="'plain' does not make world chunks.*chunked generators: .*strips"):
            e.world(seed=3, generator="plain")
        with pytest.raises(engine.PluginError, match="'nope'"):
            e.world(seed=3, generator="broken-chunks")
    finally:
        e.close()


def test_generate_request_is_the_public_path_and_the_engine_owns_its_runtime(eng, reference):
    req = eng.request("level", "dungeon", 0, {"width": 24, "height": 24, "rooms": 4})
    assert serialize.dumps(eng.generate_request(req)) == reference[0]
    seen = []
    public = eng.generate_request
    eng.generate_request = lambda r, tries=None: (seen.append(r), public(r, tries))[1]
    rt = eng.runtime()
    assert eng.runtime() is rt
    got = eng.submit("level", "dungeon", 1, {"width": 24, "height": 24, "rooms": 4}).result(60)
    assert serialize.dumps(got) == reference[1] and [r.seed for r in seen] == [1]  # the runtime's only way in
    eng.close()
    assert rt.closed and eng.runtime() is not rt
