"""The runtime service: content for a running game, off the game loop.

``engine.submit(kind, generator, seed, params, context)`` checks the request at once (a bad parameter raises
:class:`~engine.errors.InputError` in the caller) and returns a :class:`concurrent.futures.Future` that a
background thread pool completes; the game polls ``future.done()`` each frame and never blocks.

**Cache.** Finished content is kept in an LRU cache as its native msgpack bytes, keyed by
``(kind, generator id, generator version, seed, params, context key, tries)``; params are the checked and
completed ones, so ``{}`` and the explicit defaults share an entry. Each caller gets its own fresh object
(decoded from the bytes), so a game may change what it gets without touching the cache or other callers.
A request whose context holds content (a level, a cast, a story) is cached under the BLAKE2b of that
content's msgpack bytes; a context with anything that is not content or plain data (numbers, strings,
lists, maps) is not cached at all. Two requests for the same key while the first is still running share
one generation.

**Threads.** Built-in generators are thread-safe: each request has its own ``numpy.random.Generator``,
module-level tables are read-only, and ``noise``'s C functions keep no state; ``tests/test_runtime.py``
byte-compares 8 threads against 1. Third-party generators must be too (no shared mutable state in
``generate``).

**Streaming worlds.** ``engine.world(seed, chunk_size=64, generator=None)`` gives a :class:`World` of the
chunks of any level generator that declares the chunked protocol (:class:`engine.generator.Chunked`: a
``chunking`` attribute naming its size and position params; ``terrain`` by default):
``world.chunk(cx, cy)`` (blocking), ``world.chunk_future(cx, cy)``, ``world.around(x, y, radius)`` (the
chunks around world tile ``(x, y)``, prefetching the next ring in the background) and
``world.ready(x, y, radius)`` (only what is already generated, never blocks). Terrain evaluates its noise at
world coordinates, so chunk borders join without a seam.

The :class:`~engine.core.Engine` owns its runtime (``engine.runtime()`` makes it on first use,
``engine.close()`` stops it); the runtime generates through the public ``engine.generate_request``.
"""
from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Mapping

import msgpack

from .content import CONTENT_TYPES, Content
from .errors import InputError, PluginError
from .generator import Chunking
from .serialize import dumps

DEFAULT_WORKERS = 2
DEFAULT_CACHE_ITEMS = 512
DEFAULT_CACHE_BYTES = 128 * 1024 * 1024


def _plain_key(value: Any) -> bytes | None:
    try:
        return msgpack.packb(value, use_bin_type=True)
    except (TypeError, ValueError, OverflowError):
        return None


def context_key(context: Mapping[str, Any] | None) -> str | None:
    """A stable key for a context, or None when it cannot be cached (see the module docs)."""
    if not context:
        return ""
    h = hashlib.blake2b(digest_size=16)
    for name in sorted(context):
        value = context[name]
        if isinstance(value, Content):
            part = dumps(value)
        else:
            part = _plain_key(value)
            if part is None:
                return None
        h.update(msgpack.packb([name, len(part)], use_bin_type=True))
        h.update(part)
    return h.hexdigest()


def decode(data: bytes) -> Content:
    """Rebuild content from bytes this module made (already valid, so not validated again)."""
    obj = msgpack.unpackb(data, raw=False, strict_map_key=True)
    return CONTENT_TYPES[obj["schema"].partition("/")[0]].from_dict(obj)


class Runtime:
    """A thread pool and an LRU cache in front of an :class:`~engine.core.Engine`.

    :param workers: generation threads (the GIL lets numpy/C-heavy generators overlap; 2 suits a game).
    :param cache_items: most entries kept; ``0`` disables the cache.
    :param cache_bytes: most bytes of content kept.
    """

    def __init__(self, engine: Any, workers: int = DEFAULT_WORKERS, cache_items: int = DEFAULT_CACHE_ITEMS,
                 cache_bytes: int = DEFAULT_CACHE_BYTES):
        if workers < 1:
            raise InputError(f"runtime workers must be at least 1, got {workers}")
        self.engine = engine
        self.workers = workers
        self.cache_items = cache_items
        self.cache_bytes = cache_bytes
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="conjure-runtime")
        self._cache: OrderedDict[tuple, bytes] = OrderedDict()
        self._bytes = 0
        self._inflight: dict[tuple, Future] = {}
        self._outstanding: "weakref.WeakSet[Future]" = weakref.WeakSet()  # futures handed out, for close()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.closed = False

    # ------------------------------------------------------------------ keys and cache
    def key(self, request: Any, tries: int | None = None) -> tuple | None:
        """The cache key of a checked request, or None when it is uncacheable."""
        ctx = context_key(request.context)
        if ctx is None:
            return None
        gen = self.engine.generator(request.generator)
        params = msgpack.packb(sorted(request.params.items()), use_bin_type=True)
        return (request.kind, gen.id, str(gen.version), type(request.seed).__name__, request.seed, params, ctx,
                tries)

    def cached(self, key: tuple | None) -> bool:
        with self._lock:
            return key is not None and key in self._cache

    def _store(self, key: tuple, data: bytes) -> None:
        if self.cache_items <= 0 or len(data) > self.cache_bytes:
            return
        with self._lock:
            old = self._cache.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._cache[key] = data
            self._bytes += len(data)
            while len(self._cache) > self.cache_items or self._bytes > self.cache_bytes:
                _, dropped = self._cache.popitem(last=False)
                self._bytes -= len(dropped)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()
            self._bytes = 0

    def stats(self) -> dict:
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "items": len(self._cache), "bytes": self._bytes,
                    "in_flight": len(self._inflight)}

    # ------------------------------------------------------------------ submit
    def submit(self, kind: str, generator: str | None = None, seed: Any = 0,
               params: Mapping[str, Any] | None = None, context: Mapping[str, Any] | None = None,
               tries: int | None = None, cache: bool = True, timeout: float | None = None) -> Future:
        """Start generating; returns a Future of the content. Bad requests raise here, at once. The time
        budget (``timeout`` seconds, default the engine's) starts now: time waiting in the queue counts."""
        if self.closed:
            raise InputError("the runtime is closed")
        from .core import check_timeout

        req = self.engine.request(kind, generator, seed, params, context)
        budget = check_timeout(timeout) if timeout is not None else self.engine.timeout
        req = req.with_timeout(budget)
        key = self.key(req, tries) if cache and self.cache_items > 0 else None
        out: Future = Future()
        self._outstanding.add(out)
        if key is None:
            self._pool.submit(self._run_uncached, req, tries, out)
            return out
        with self._lock:
            data = self._cache.get(key)
            if data is not None:
                self._cache.move_to_end(key)
                self.hits += 1
            else:
                shared = self._inflight.get(key)
                if shared is None:
                    self.misses += 1
                    shared = self._inflight[key] = Future()
                    first = True
                else:
                    self.hits += 1
                    first = False
        if data is not None:
            out.set_result(decode(data))
            return out
        if first:
            self._pool.submit(self._run_cached, req, tries, key, shared, out)
        else:
            shared.add_done_callback(lambda f: _relay(f, out))
        return out

    def generate(self, *args: Any, timeout: float | None = None, **kwargs: Any) -> Content:
        """``submit(...).result()``: blocking, but cached and on the same pool."""
        return self.submit(*args, **kwargs).result(timeout)

    def _make(self, req: Any, tries: int | None) -> Content:
        return self.engine.generate_request(req, tries)

    def _run_uncached(self, req: Any, tries: int | None, out: Future) -> None:
        if not out.set_running_or_notify_cancel():
            return
        try:
            out.set_result(self._make(req, tries))
        except BaseException as e:
            out.set_exception(e)

    def _run_cached(self, req: Any, tries: int | None, key: tuple, shared: Future, out: Future) -> None:
        try:
            content = self._make(req, tries)
            data = dumps(content)
        except BaseException as e:
            with self._lock:
                self._inflight.pop(key, None)
            shared.set_exception(e)
            if out.set_running_or_notify_cancel():
                out.set_exception(e)
            return
        self._store(key, data)
        with self._lock:
            self._inflight.pop(key, None)
        shared.set_result(data)
        if out.set_running_or_notify_cancel():
            out.set_result(content)

    # ------------------------------------------------------------------ worlds
    def world(self, seed: Any, chunk_size: int = 64, params: Mapping[str, Any] | None = None,
              generator: str | None = None, prefetch: int = 1) -> "World":
        return World(self, seed, chunk_size, params, generator, prefetch)

    def close(self, wait: bool = True, timeout: float | None = None) -> bool:
        """Stop the pool. Work not started is dropped and its futures are cancelled (``result()`` raises
        ``CancelledError`` instead of blocking forever); work already running finishes (``wait=True``), or is
        waited for at most ``timeout`` seconds. True when every worker thread has stopped; a generator still
        running after ``timeout`` is left to its request's time budget (threads cannot be killed)."""
        self.closed = True
        if timeout is not None:
            import time

            self._pool.shutdown(wait=False, cancel_futures=True)
            end = time.monotonic() + max(0.0, timeout)
            for t in list(getattr(self._pool, "_threads", ())):
                t.join(max(0.0, end - time.monotonic()))
            wait = False
        else:
            self._pool.shutdown(wait=wait, cancel_futures=True)
        with self._lock:
            shared = list(self._inflight.values())
            self._inflight.clear()
        for f in shared:
            f.cancel()
        for f in list(self._outstanding):
            f.cancel()  # a no-op for futures already done or running
        return not any(t.is_alive() for t in getattr(self._pool, "_threads", ()))

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _relay(shared: Future, out: Future) -> None:
    if shared.cancelled():
        out.cancel()
        return
    if not out.set_running_or_notify_cancel():
        return
    e = shared.exception()
    if e is not None:
        out.set_exception(e)
    else:
        out.set_result(decode(shared.result()))


def chunking_of(engine: Any, generator: str) -> Chunking:
    """The :class:`~engine.generator.Chunking` a level generator declares; InputError when it declares none,
    PluginError when it names params the generator does not have."""
    gen = engine.generator(generator, "level")
    chunking = getattr(gen, "chunking", None)
    if not isinstance(chunking, Chunking):
        chunked = ", ".join(g.id for g in engine.generators("level")
                            if isinstance(getattr(g, "chunking", None), Chunking)) or "none"
        raise InputError(f"generator {gen.id!r} does not make world chunks (it declares no `chunking`; "
                         f"chunked generators: {chunked})")
    names = {p.name for p in gen.params}
    missing = [n for n in chunking.names() if n not in names]
    if missing:
        raise PluginError(f"chunking names {missing[0]!r}, which is not one of its params", engine.plugin_of(gen.id),
                          gen.id)
    return chunking


class World:
    """Seamless chunks of a generated world, streamed around a position, from any level generator that
    declares the chunked protocol (:class:`engine.generator.Chunked`; the engine's ``world_default``,
    ``terrain``, when none is named).

    Chunk ``(cx, cy)`` covers world tiles ``[cx*chunk_size, (cx+1)*chunk_size)`` x the same in y.
    """

    def __init__(self, runtime: Runtime, seed: Any, chunk_size: int = 64, params: Mapping[str, Any] | None = None,
                 generator: str | None = None, prefetch: int = 1):
        self.runtime = runtime
        self.seed = seed
        self.chunk_size = int(chunk_size)
        self.generator = generator or runtime.engine.world_default
        self.chunking = chunking_of(runtime.engine, self.generator)
        self.params = dict(params or {})
        self.prefetch = max(0, int(prefetch))
        for k in self.chunking.names():
            if k in self.params:
                raise InputError(f"world params: {k!r} is set by the world (use chunk_size and positions)")
        self._futures: dict[tuple[int, int], Future] = {}
        self._lock = threading.Lock()
        self.prefetching: list[Future] = []
        runtime.engine.request("level", self.generator, seed, self.chunk_params(0, 0))

    def chunk_params(self, cx: int, cy: int) -> dict:
        return {**self.params, **self.chunking.params(self.chunk_size, cx, cy)}

    def chunk_of(self, x: float, y: float) -> tuple[int, int]:
        """The chunk holding world tile ``(x, y)``."""
        return int(x // self.chunk_size), int(y // self.chunk_size)

    def chunk_future(self, cx: int, cy: int) -> Future:
        with self._lock:
            f = self._futures.get((cx, cy))
            if f is not None and not (f.done() and f.exception() is not None):
                return f
        f = self.runtime.submit("level", self.generator, self.seed, self.chunk_params(cx, cy))
        with self._lock:
            self._futures[(cx, cy)] = f
            if len(self._futures) > 4 * max(16, self.runtime.cache_items):
                for k in [k for k, v in self._futures.items() if v.done()][: len(self._futures) // 2]:
                    del self._futures[k]
        return f

    def chunk(self, cx: int, cy: int, timeout: float | None = None) -> Content:
        """Chunk ``(cx, cy)``, waiting for it if need be."""
        f = self.chunk_future(cx, cy)
        level = f.result(timeout)
        with self._lock:  # consumed: later calls go to the cache (and get their own copy)
            if self._futures.get((cx, cy)) is f:
                del self._futures[(cx, cy)]
        return level

    def is_cached(self, cx: int, cy: int) -> bool:
        req = self.runtime.engine.request("level", self.generator, self.seed, self.chunk_params(cx, cy))
        return self.runtime.cached(self.runtime.key(req))

    @staticmethod
    def _ring(cx: int, cy: int, radius: int) -> list[tuple[int, int]]:
        cells = [(cx + dx, cy + dy) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]
        return sorted(cells, key=lambda c: ((c[0] - cx) ** 2 + (c[1] - cy) ** 2, c[1], c[0]))

    def _prefetch(self, cx: int, cy: int, radius: int) -> list[Future]:
        if not self.prefetch:
            return []
        outer = radius + self.prefetch
        inner = set(self._ring(cx, cy, radius))
        return [self.chunk_future(*c) for c in self._ring(cx, cy, outer) if c not in inner]

    def around(self, x: float, y: float, radius: int = 1, timeout: float | None = None) -> dict:
        """The chunks within ``radius`` chunks of world tile ``(x, y)``, nearest first: ``{(cx, cy): level}``.

        Blocks until those are ready; the next ``prefetch`` ring is generated in the background.
        """
        cx, cy = self.chunk_of(x, y)
        cells = self._ring(cx, cy, radius)
        for c in cells:
            self.chunk_future(*c)
        self.prefetching = self._prefetch(cx, cy, radius)
        return {c: self.chunk(*c, timeout=timeout) for c in cells}

    def ready(self, x: float, y: float, radius: int = 1) -> dict:
        """Like :meth:`around` but never blocks: only the chunks already generated; starts the rest."""
        cx, cy = self.chunk_of(x, y)
        out = {}
        for c in self._ring(cx, cy, radius):
            f = self.chunk_future(*c)
            if f.done() and f.exception() is None:
                out[c] = self.chunk(*c)
        self.prefetching = self._prefetch(cx, cy, radius)
        return out

    def tile(self, x: int, y: int, layer: str = "tiles") -> int:
        """The tile id at world tile ``(x, y)`` (blocks for its chunk)."""
        cx, cy = self.chunk_of(x, y)
        level = self.chunk(cx, cy)
        return int(level.layers[layer][int(y) - cy * self.chunk_size, int(x) - cx * self.chunk_size])
