"""level-lm speed (ratios measured in one run, one thread):

- one 14×150 side-view level, batch of one, on one thread: median of ``--repeat`` levels, with the KV cache
  (as shipped) and without it (every step recomputes the whole ``ctx``-strip window) — goal ≤ 50 ms;
- levels/s end to end through the engine (``generate_batch`` of 64 vs 64 ``generate`` calls, validation
  included) — goal ≥ 8×.

Both are wall-clock figures (the targets); each is also given in the process's CPU time, which a machine
shared with other jobs inflates less, with the load average at the end of the run.

- ``--controls N``: per control attribute and bucket, the share of N levels landing in the bucket asked.

Run: ``.venv/bin/python bench/level_lm.py [--json] [--repeat N] [--controls N]``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


class NoCache:
    """The same network without a KV cache: each step re-runs the full window of the last ``ctx`` strips
    (the reference the cache is measured against; rows are computed one by one)."""

    def __init__(self, net):
        self.net, self.cfg, self.vbig = net, net.cfg, net.vbig
        self.hist = None

    def new_cache(self, n):
        self.hist = np.zeros((n, 4096, self.net.h), dtype=np.int64)
        return None

    def step(self, strips, attrs, cache, rows, pos):
        out = []
        for k, (r, p) in enumerate(zip(rows, pos)):
            self.hist[r, p] = strips[k]
            lo = max(0, p - self.net.ctx + 1)
            out.append(self.net.window(self.hist[r:r + 1, lo:p + 1], attrs[k:k + 1])[0])
        return np.stack(out)


def one_level_ms(m, width: int, seed: int, cached: bool) -> float:
    from engine.generator import Request
    from plugins.level_lm import LevelLM, load

    gen = LevelLM()
    req = Request("level", "level-lm", seed, _params(width))
    from plugins.learned_level_lm import sampler

    net = m.net if cached else NoCache(m.net)
    orig = sampler.run

    def run(_net, patterns, jobs):
        return orig(net, patterns, jobs)

    t0, c0 = time.perf_counter(), time.process_time()
    sampler.run = run
    try:
        from plugins.learned_level_lm.infer import blas_one_thread

        with blas_one_thread():
            gen._make(load(), [req])
    finally:
        sampler.run = orig
    CPU_MS.append((time.process_time() - c0) * 1000)
    return (time.perf_counter() - t0) * 1000


CPU_MS: list[float] = []  # the process's CPU time of each one_level_ms call (less sensitive to a busy machine)


def _params(width: int) -> dict:
    from plugins.level_lm import LevelLM

    p = {x.name: x.default for x in LevelLM.params}
    p["width"] = width
    return p


def controls(eng, weights: str, model: str, n: int, width: int) -> dict:
    """Per attribute and bucket: the share of ``n`` levels (as returned by the engine, after its resampling)
    whose measured bucket is the one asked, and the share right on the first try."""
    from plugins.learned_level_lm.controls import ATTRS, BUCKETS
    from plugins.level_lm import load

    m = load(weights, model)
    out: dict = {}
    for a in ATTRS[m.spec.view]:
        if a not in m.spec.available:
            continue
        for b in BUCKETS:
            if a == "rooms" and b == "none":
                continue
            p = {"weights": weights, "model": model, a: b}
            if m.spec.view == "side":
                p["width"] = width
            levels = eng.generate_batch("level", "level-lm", list(range(n)), p)
            hit = sum(lv.metadata["measured"].get(a) == b for lv in levels)
            first = sum(lv.metadata["tries"] == 1 for lv in levels)
            out[f"{a}={b}"] = {"hit": round(hit / n, 3), "first_try": round(first / n, 3),
                               "mean_tries": round(sum(lv.metadata["tries"] for lv in levels) / n, 2)}
    return out


def sheets(eng, folder: Path, width: int = 150) -> list[Path]:
    """Sample sheets for docs/: the shipped models' corpus levels (first rows) above generated ones."""
    from plugins.level_lm import load

    out = []
    for model, prompts in (("side", ["", "many pipes, no enemies", "many gaps, few enemies", "high elevation",
                                     "no pipes, many enemies, flat"]),
                           ("top", ["", "many rooms", "no enemies"])):
        m = load("", model)
        corpus = m.corpus()
        real = [lv for lv in corpus.levels[:3]]
        if model == "side":
            real = [corpus.level_from_grid(g[:, :width]) for g in corpus.grids[:3]]
        made = []
        for i, pr in enumerate(prompts):
            p = {"model": model, "prompt": pr}
            if model == "side":
                p["width"] = width
            made.append(eng.generate("level", "level-lm", 100 + i, p))
        path = folder / f"level-lm-{model}.png"
        _sheet(real, made, path, side=model == "side")
        out.append(path)
    return out


def _sheet(real: list, made: list, path: Path, side: bool, ts: int = 4) -> None:
    """Corpus levels (left column / top rows) and generated ones, a white bar between, as one PNG."""
    from PIL import Image

    from engine.images import level_rgb

    def grid(levels):
        imgs = [level_rgb(lv, ts) for lv in levels]
        cols = 1 if side else min(len(imgs), 3)
        ch = max(i.shape[0] for i in imgs)
        cw = max(i.shape[1] for i in imgs)
        rows = -(-len(imgs) // cols)
        g = np.full((rows * (ch + 4) + 4, cols * (cw + 4) + 4, 3), 30, dtype=np.uint8)
        for k, im in enumerate(imgs):
            r, c = divmod(k, cols)
            g[4 + r * (ch + 4):4 + r * (ch + 4) + im.shape[0], 4 + c * (cw + 4):4 + c * (cw + 4) + im.shape[1]] = im
        return g

    a, b = grid(real), grid(made)
    w = max(a.shape[1], b.shape[1])
    pad = lambda g: np.pad(g, ((0, 0), (0, w - g.shape[1]), (0, 0)), constant_values=30)  # noqa: E731
    bar = np.full((6, w, 3), 255, dtype=np.uint8)
    Image.fromarray(np.concatenate([pad(a), bar, pad(b)])).save(path)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--controls", type=int, default=0, help="also measure controls with N levels per bucket")
    ap.add_argument("--sheets", default="", help="write the docs' sample sheets into this folder and stop")
    args = ap.parse_args(argv)
    if args.sheets:
        import engine

        eng = engine.Engine(load=["plugins.level_lm", "plugins.formats"], entry_points=False)
        for p in sheets(eng, Path(args.sheets)):
            print(p)
        return {}
    import engine
    from plugins.level_lm import load

    m = load()
    for s in range(2):  # warm-up: pattern tables, caches
        one_level_ms(m, 150, 1000 + s, True)
    CPU_MS.clear()
    cached = [one_level_ms(m, 150, s, True) for s in range(args.repeat)]
    cached_cpu = list(CPU_MS)
    CPU_MS.clear()
    nocache = [one_level_ms(m, 150, s, False) for s in range(max(3, args.repeat // 3))]
    nocache_cpu = list(CPU_MS)
    res = {"model": {k: m.cfg[k] for k in ("d", "layers", "heads", "ctx", "h")},
           "one_level_14x150_ms_median": round(statistics.median(cached), 1),
           "one_level_14x150_ms_min": round(min(cached), 1),
           "no_cache_ms_median": round(statistics.median(nocache), 1)}
    res["cache_speedup"] = round(res["no_cache_ms_median"] / res["one_level_14x150_ms_median"], 1)
    res["one_level_cpu_ms_median"] = round(statistics.median(cached_cpu), 1)
    res["no_cache_cpu_ms_median"] = round(statistics.median(nocache_cpu), 1)
    res["goal_50ms_met"] = res["one_level_14x150_ms_median"] <= 50
    eng = engine.Engine(load=["plugins.level_lm", "plugins.formats"], entry_points=False)
    seeds = list(range(10_000, 10_000 + args.batch))
    eng.generate_batch("level", "level-lm", seeds[:2])  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    eng.generate_batch("level", "level-lm", seeds)
    tb, cb = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    for s in seeds:
        eng.generate("level", "level-lm", s)
    t1, c1 = time.perf_counter() - t0, time.process_time() - c0
    res["levels_per_s_batch"] = round(args.batch / tb, 1)
    res["levels_per_s_single"] = round(args.batch / t1, 1)
    res["batch_speedup"] = round(t1 / tb, 1)
    res["goal_8x_met"] = res["batch_speedup"] >= 8
    res["batch_speedup_cpu"] = round(c1 / cb, 1)  # the same ratio in the process's CPU seconds
    res["load_average"] = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    if args.controls:
        res["controls_side"] = controls(eng, "", "side", args.controls, 150)
        res["controls_top"] = controls(eng, "", "top", args.controls, 150)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"level-lm {res['model']}, one thread")
        print(f"  one 14x150 level: {res['one_level_14x150_ms_median']} ms median (min "
              f"{res['one_level_14x150_ms_min']}), no cache {res['no_cache_ms_median']} ms "
              f"(x{res['cache_speedup']}); goal <= 50 ms: {res['goal_50ms_met']}; CPU time "
              f"{res['one_level_cpu_ms_median']} ms (no cache {res['no_cache_cpu_ms_median']})")
        print(f"  end to end: {res['levels_per_s_batch']} levels/s in batches of {args.batch}, "
              f"{res['levels_per_s_single']} one at a time (x{res['batch_speedup']}; goal >= 8x: "
              f"{res['goal_8x_met']}; in CPU time x{res['batch_speedup_cpu']}); load average {res['load_average']}")
        for k in ("controls_side", "controls_top"):
            for name, v in res.get(k, {}).items():
                print(f"  control {name}: {v['hit']:.0%} in bucket ({v['first_try']:.0%} on the first try, "
                      f"{v['mean_tries']} tries)")
    return res


def level_lm() -> dict:
    """For bench/run.py: one-level latency (cache vs none) and batch-vs-single throughput."""
    return main([])


FIGURES = [level_lm]


if __name__ == "__main__":
    main()
