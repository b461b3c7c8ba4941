"""Bench for the learned level generators (issue 4 goals), printed as ratios and shares.

    .venv/bin/python bench/learned_levels.py [--count 200] [--batch 256] [--single 32]

For each of dungeon-vae and platformer-gan:
- speed: levels/s of ``engine.generate_batch`` with ``--batch`` seeds vs ``engine.generate`` one seed at a time
  (end to end: network, entity placement, repair/search, the engine's validators), and the same ratio for the
  network stage alone (latents → tile classes). Goal: batch 256 ≥ 20× one-at-a-time.
- quality (``engine.eval_levels``): raw playability before repair, after repair/resampling (goal 100%),
  novelty (goal ≥ 95%), diversity, tile-pattern KL.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import Engine  # noqa: E402
from engine.evaluate import evaluate  # noqa: E402


def _net_stage(gen, batch: int, single: int) -> tuple[float, float]:
    import numpy as np
    import torch

    m = gen.model()
    torch.set_num_threads(1)
    z = torch.randn(batch, m.net.zdim if hasattr(m.net, "zdim") else m.nz)
    if gen.id == "dungeon-vae":
        c = torch.zeros(batch, 2)
        f = lambda a, b: m.net.decode(a, b)  # noqa: E731
    else:
        c = None
        f = lambda a, b: m.net(a)  # noqa: E731
    from plugins.learned_levels.nets import decode_tiles

    with torch.inference_mode():
        for _ in range(2):
            decode_tiles(f(z[:1], None if c is None else c[:1]))
        t = time.perf_counter()
        for i in range(single):
            decode_tiles(f(z[i:i + 1], None if c is None else c[i:i + 1]))
        one = single / (time.perf_counter() - t)
        t = time.perf_counter()
        decode_tiles(f(z, c), lambda i: f(z[i:i + 1], None if c is None else c[i:i + 1]))
        many = batch / (time.perf_counter() - t)
    np.random.default_rng(0)
    return one, many


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--single", type=int, default=32)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    eng = Engine(entry_points=False)
    results = {}
    for gid in ("dungeon-vae", "platformer-gan"):
        gen = eng.generator(gid)
        eng.generate("level", gid, -1)  # load weights, import torch
        t = time.perf_counter()
        for s in range(args.single):
            eng.generate("level", gid, 10_000 + s)
        one = args.single / (time.perf_counter() - t)
        t = time.perf_counter()
        eng.generate_batch("level", gid, list(range(20_000, 20_000 + args.batch)))
        many = args.batch / (time.perf_counter() - t)
        net_one, net_many = _net_stage(gen, args.batch, args.single)
        q = evaluate(eng, gid, count=args.count, seed=0)
        r = {"levels_per_s_single": round(one, 1), "levels_per_s_batch": round(many, 1),
             "speedup_end_to_end": round(many / one, 2), "net_per_s_single": round(net_one, 1),
             "net_per_s_batch": round(net_many, 1), "speedup_network": round(net_many / net_one, 2),
             **{k: q[k] for k in ("playability_raw", "playability_after", "repaired_share", "novelty",
                                  "novelty_mean_distance", "diversity", "kl_2x2", "kl_3x3", "fidelity_2x2",
                                  "fidelity_3x3", "playable_by_corpus_rules")}}
        results[gid] = r
        if not args.json:
            print(f"{gid}: batch {args.batch} vs one-at-a-time: end-to-end {r['speedup_end_to_end']}x "
                  f"({r['levels_per_s_batch']} vs {r['levels_per_s_single']} levels/s), network stage "
                  f"{r['speedup_network']}x (goal 20x)")
            print(f"  playability raw {r['playability_raw']:.1%}, after repair/resampling "
                  f"{r['playability_after']:.1%} (goal 100%), novelty {r['novelty']:.1%} (goal 95%), "
                  f"diversity {r['diversity']}, KL 2x2 {r['kl_2x2']} 3x3 {r['kl_3x3']}")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def learned_levels() -> int:
    """For bench/run.py: batch speed-up and quality of the learned level generators (smaller counts)."""
    return main(["--count", "100", "--single", "16"])


FIGURES = [learned_levels]
