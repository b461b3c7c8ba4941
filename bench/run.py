"""Conjure's performance goals as ratios measured in one run (not timed tests).

    python bench/run.py              # every figure
    python bench/run.py noise pack   # figures whose name contains one of the words

Each figure is a function in ``FIGURES`` that prints one or more lines
``name: value (baseline ...) ratio xN`` and returns a dict of its numbers. To add a figure, write a
function and append it to ``FIGURES``. Machines shared with other work give noisy absolute times; the ratio
of two timings taken side by side is what to read.
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_CACHE: dict = {}


def timeit(fn, repeat: int = 7, number: int = 1) -> float:
    """Median seconds per call over ``repeat`` rounds of ``number`` calls."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t) / number)
    return statistics.median(times)


def line(name: str, value: str, baseline: str, ratio: float) -> None:
    print(f"{name}: {value} (baseline {baseline}) ratio ×{ratio:.1f}", flush=True)


def _engine():
    if "engine" not in _CACHE:
        import engine

        _CACHE["engine"] = engine.Engine(entry_points=False)
    return _CACHE["engine"]


# ------------------------------------------------------------------------------------------ figures
def terrain_noise() -> dict:
    """fBm Perlin 256x256, 4 octaves: vectorized numpy vs the per-point ``noise.pnoise2`` loop."""
    from noise import pnoise2

    from plugins.terrain import REPEAT, fbm_grid, fbm_grid_reference

    xs, ys = 37 + np.arange(256) / 48, 91 + np.arange(256) / 48
    assert np.array_equal(fbm_grid(xs, ys, 4, 200), fbm_grid_reference(xs, ys, 4, 200))
    fast = timeit(lambda: fbm_grid(xs, ys, 4, 200), repeat=15)
    loop = timeit(lambda: fbm_grid_reference(xs, ys, 4, 200), repeat=5)

    def keyword_loop():
        out = np.empty((256, 256))
        for j, y in enumerate(ys.tolist()):
            for i, x in enumerate(xs.tolist()):
                out[j, i] = pnoise2(x, y, octaves=4, persistence=0.5, lacunarity=2.0, repeatx=REPEAT,
                                    repeaty=REPEAT, base=200)

    kw = timeit(keyword_loop, repeat=3)
    line("terrain noise 256x256 (positional pnoise2 loop)", f"{fast * 1e3:.2f} ms",
         f"{loop * 1e3:.1f} ms", loop / fast)
    line("terrain noise 256x256 (keyword pnoise2 loop)", f"{fast * 1e3:.2f} ms", f"{kw * 1e3:.1f} ms", kw / fast)
    return {"fast_s": fast, "loop_s": loop, "keyword_loop_s": kw}


def _levels_pack(n: int = 10_000, distinct: int = 100, compression: str = "none") -> Path:
    """A pack of ``n`` dungeon levels (48x32, ``distinct`` different ones repeated under distinct ids)."""
    key = ("pack", n, compression)
    if key in _CACHE:
        return _CACHE[key]
    import msgpack

    from engine.packs import PackWriter, compress, codec_of, record_hash

    eng = _engine()
    raws = [msgpack.packb(eng.generate("level", "dungeon", s).to_dict(binary=True), use_bin_type=True)
            for s in range(distinct)]
    path = Path(tempfile.mkdtemp(prefix="conjure-bench-")) / f"levels-{n}-{compression}.cpk"
    codec = codec_of(compression)
    with PackWriter(path, [], compression) as w:
        for i in range(n):
            raw = raws[i % distinct]
            w.add(f"lv/{i}", 0, i, i, compress(raw, codec), len(raw), record_hash(raw))
    _CACHE[key] = path
    return path


def pack_random_access() -> dict:
    """One asset from a 10k-level pack (48x32 dungeons): pread, hash check, msgpack, ``from_dict``; and
    with ``validate=True`` (full schema checks again) — vs the goal of 200 µs."""
    from engine.packs import open_pack

    out = {}
    for compression in ("none", "zstd"):
        for validate in (False, True):
            with open_pack(_levels_pack(compression=compression), validate=validate) as r:
                rng = np.random.default_rng(1)
                idx = [int(i) for i in rng.integers(0, len(r), 3000)]
                it = iter(idx)
                per = timeit(lambda: r[next(it)], repeat=5, number=300)
                ids = iter([f"lv/{i}" for i in idx])
                per_id = timeit(lambda: r.get(next(ids)), repeat=5, number=300)
            tag = f"{compression}{', validate' if validate else ''}"
            line(f"pack random access by index ({tag})", f"{per * 1e6:.0f} µs", "goal 200 µs", 200e-6 / per)
            line(f"pack random access by id ({tag})", f"{per_id * 1e6:.0f} µs", "goal 200 µs", 200e-6 / per_id)
            out[tag] = per
    return out


def bake_workers() -> dict:
    """``bake`` of dungeon levels with 2 worker processes vs 1 (in-process), same bytes."""
    from engine.bake import bake

    count = int(os.environ.get("BENCH_BAKE_COUNT", "3000"))  # enough work that worker start-up (~1 s) is amortised
    d = Path(tempfile.mkdtemp(prefix="conjure-bench-bake-"))
    spec = d / "spec.toml"
    spec.write_text(f'[[job]]\nname = "d"\nkind = "level"\ngenerator = "dungeon"\ncount = {count}\nseed = 3\n'
                    'params = { width = 32, height = 32 }\n')
    times = {}
    for w in (1, 2):
        t = time.perf_counter()
        bake(spec, d / f"w{w}.cpk", workers=w, progress=False, fresh=True)
        times[w] = time.perf_counter() - t
    same = (d / "w1.cpk").read_bytes() == (d / "w2.cpk").read_bytes()
    line(f"bake {count} dungeon levels, 2 workers vs 1 (identical bytes: {same})", f"{times[2]:.2f} s",
         f"1 worker {times[1]:.2f} s", times[1] / times[2])
    return {"one_s": times[1], "two_s": times[2], "same": same, "cpus": os.cpu_count()}


FIGURES = [terrain_noise, pack_random_access, bake_workers]  # bulk pack reads: core.pack_bulk_levels


def _sibling_figures(name: str) -> list:
    """FIGURES of a sibling script in bench/ (core.py, learned_levels.py, ...), if it exists."""
    import importlib.util

    path = Path(__file__).with_name(f"{name}.py")
    if not path.exists():
        return []
    spec = importlib.util.spec_from_file_location(f"conjure_bench_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return list(getattr(mod, "FIGURES", []))


FIGURES = (_sibling_figures("core") + FIGURES + _sibling_figures("learned_levels")
           + _sibling_figures("story_lm") + _sibling_figures("level_lm") + _sibling_figures("serve"))


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    print(f"# Conjure bench: python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "# Conjure bench")
    for fig in FIGURES:
        if words and not any(w in fig.__name__ for w in words):
            continue
        fig()
    return 0


if __name__ == "__main__":
    sys.exit(main())
