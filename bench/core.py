"""Core figures (issue 2): `import engine` time vs `import numpy, msgpack, pluggy`, and dungeon 64x64
generate+validate latency (p50/p99) vs generate alone. Ratios in one run; run with the project's venv."""
from __future__ import annotations

import statistics
import subprocess
import sys
import time


def _import_seconds(stmt: str, runs: int = 5) -> float:
    code = f"import time; t=time.perf_counter(); {stmt}; print(time.perf_counter()-t)"
    vals = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
            for _ in range(runs)]
    return statistics.median(vals)


def import_time() -> None:
    base = _import_seconds("import numpy, msgpack, pluggy")
    eng = _import_seconds("import engine")
    torch_loaded = subprocess.run([sys.executable, "-c", "import sys, engine; e = engine.Engine(); "
                                   "print('torch' in sys.modules)"], capture_output=True, text=True).stdout.strip()
    print(f"import engine: {eng * 1000:.0f} ms (baseline import numpy, msgpack, pluggy {base * 1000:.0f} ms) "
          f"ratio x{eng / base:.2f}; torch imported by Engine(): {torch_loaded}")


def dungeon_latency(n: int = 300) -> None:
    import engine

    eng = engine.Engine(entry_points=False)
    gen = eng.generator("dungeon")
    params = {"width": 64, "height": 64, "rooms": 10}
    eng.generate("level", "dungeon", 0, params)  # warm-up (scipy import)
    full, raw = [], []
    for s in range(n):
        t = time.perf_counter()
        eng.generate("level", "dungeon", s, params)
        full.append(time.perf_counter() - t)
        req = eng.request("level", "dungeon", s, params)
        t = time.perf_counter()
        gen.generate(req)
        raw.append(time.perf_counter() - t)
    q = lambda xs, p: sorted(xs)[min(len(xs) - 1, int(p * len(xs)))] * 1000  # noqa: E731
    print(f"dungeon 64x64 generate+validate: p50 {q(full, 0.5):.2f} ms, p99 {q(full, 0.99):.2f} ms "
          f"(baseline generate alone p50 {q(raw, 0.5):.2f} ms) ratio x{q(full, 0.5) / q(raw, 0.5):.2f}")


def _pack_10k(compression: str, _made: dict = {}) -> str:  # noqa: B006 - a per-process cache on purpose
    """A pack of 10,000 dungeon levels (48x32; 100 distinct ones under distinct ids), made once per run."""
    if compression in _made:
        return _made[compression]
    import tempfile

    import engine
    from engine.packs import PackWriter, codec_of, compress, record_hash
    from engine.serialize import dumps

    eng = engine.Engine(entry_points=False)
    raws = [dumps(eng.generate("level", "dungeon", s)) for s in range(100)]
    path = f"{tempfile.mkdtemp(prefix='conjure-bench-core-')}/levels-{compression}.cpk"
    codec = codec_of(compression)
    with PackWriter(path, [], compression) as w:
        for i in range(10_000):
            raw = raws[i % 100]
            w.add(f"lv/{i}", 0, i, i, compress(raw, codec), len(raw), record_hash(raw))
    _made[compression] = path
    return path


def _per_call(fn, args: list, rounds: int = 5) -> tuple[float, float]:
    """Median wall and CPU (this thread) seconds per call over ``rounds`` passes through ``args``. On a machine
    shared with other work the CPU time is the steadier figure; both are printed."""
    walls, cpus = [], []
    for _ in range(rounds):
        w, c = time.perf_counter(), time.thread_time()
        for a in args:
            fn(a)
        cpus.append((time.thread_time() - c) / len(args))
        walls.append((time.perf_counter() - w) / len(args))
    return statistics.median(walls), statistics.median(cpus)


def pack_read_latency() -> None:
    """One asset from a 10k-level pack by index: raw record bytes (hash checked) and a Level without the full
    validation, vs the issue-18 goals of 20 µs and 60 µs; the old read path (``os.pread``, ``mmap=False``)
    beside them."""
    import random

    from engine.packs import open_pack

    idx = [random.Random(1).randrange(10_000) for _ in range(3000)]
    for compression in ("none", "zstd"):
        path = _pack_10k(compression)
        with open_pack(path) as r, open_pack(path, mmap=False) as old:
            raw_w, raw_c = _per_call(r.raw, idx)
            pre_w, _ = _per_call(old.raw, idx)
            obj_w, obj_c = _per_call(r.__getitem__, idx[:1000])
        print(f"pack raw record by index ({compression}, mmap): {raw_w * 1e6:.1f} µs, CPU {raw_c * 1e6:.1f} µs "
              f"(baseline goal 20 µs; os.pread path {pre_w * 1e6:.1f} µs) ratio ×{20e-6 / raw_w:.2f}")
        print(f"pack record to a Level ({compression}, no validation): {obj_w * 1e6:.1f} µs, "
              f"CPU {obj_c * 1e6:.1f} µs "
              f"(baseline goal 60 µs) ratio ×{60e-6 / obj_w:.2f}")


def pack_bulk_levels() -> None:
    """All 10k levels of a pack: ``read_all`` (one mapped range, GC paused, hashes checked, typed decode) vs the
    naive loop (seek + read + ``msgpack.unpackb`` + ``from_plain`` per record, GC on); goal ≥ 5x."""
    import gc

    import msgpack

    from engine.packs import open_pack
    from engine.serialize import from_plain

    path = _pack_10k("none")
    with open_pack(path) as r:
        entries = list(r._entries)

        def naive(content: bool) -> list:
            out = []
            with open(path, "rb") as f:
                for off, slen, _, _ in entries:
                    f.seek(off)
                    obj = msgpack.unpackb(f.read(slen), raw=False)
                    out.append(from_plain(obj) if content else obj)
            return out

        for content in (True, False):
            times, cpu = {}, {}
            for name, fn in (("naive", lambda: naive(content)), ("read_all", lambda: r.read_all(plain=not content))):
                runs, cpus = [], []
                for _ in range(3):
                    gc.collect()
                    t, c = time.perf_counter(), time.thread_time()
                    fn()
                    runs.append(time.perf_counter() - t)
                    cpus.append(time.thread_time() - c)
                times[name], cpu[name] = statistics.median(runs), statistics.median(cpus)
            what = "Level objects" if content else "plain dicts"
            print(f"pack bulk read 10k levels to {what}: {times['read_all']:.2f} s, CPU {cpu['read_all']:.2f} s "
                  f"(baseline naive loop {times['naive']:.2f} s, CPU {cpu['naive']:.2f} s; goal ≥ ×5) ratio "
                  f"×{times['naive'] / times['read_all']:.1f} (CPU ×{cpu['naive'] / cpu['read_all']:.1f})")


FIGURES = [import_time, dungeon_latency, pack_read_latency, pack_bulk_levels]

if __name__ == "__main__":
    for f in FIGURES:
        f()
