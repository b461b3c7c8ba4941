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

import numpy as np  # noqa: E402


def _net_stage(gen, batch: int, single: int) -> tuple[float, float]:
    import numpy as np
    import torch

    m = gen.model()
    torch.set_num_threads(1)
    z = torch.randn(batch, m.net.zdim if hasattr(m.net, "zdim") else m.nz)
    if gen.id == "dungeon-vae":
        c = torch.zeros(batch, m.cdim)
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
    ap.add_argument("--platformer-gan", action="store_true",
                    help="only platformer-gan's rows (issue 13): batch 64 vs one at a time, controls, sheet")
    ap.add_argument("--controls", type=int, default=20, help="with --platformer-gan: levels per attribute and bucket")
    ap.add_argument("--sheet", default="", help="with --platformer-gan: also write its sample sheet (PNG) here")
    ap.add_argument("--dungeon-vae", action="store_true",
                    help="only dungeon-vae's rows (issue 13): batch 64 vs one at a time, controls, sheet (--sheet)")
    args = ap.parse_args(argv)
    if args.dungeon_vae:
        return dungeon_vae_rows(args)
    if args.platformer_gan:
        return platformer_gan_rows(args)
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


# --------------------------------------------------------------------------------------------- platformer-gan
PG = "platformer-gan"
PG_WIDTH = 150  # one level as the speed rows measure it (14x150)


def batch_speed(eng, gen: str, p: dict, batch: int, single: int, repeat: int) -> dict:
    """Levels/s of ``gen`` end to end: ``engine.generate_batch`` of ``batch`` seeds vs ``engine.generate`` of
    ``single`` seeds one at a time, wall and CPU time, the best of ``repeat`` alternating runs (the machine is
    shared); weights, torch and calibrations are loaded first."""
    eng.generate("level", gen, -1, p)
    eng.generate_batch("level", gen, [-2, -3, -4, -5], p)
    best = {"one": 0.0, "many": 0.0, "one_cpu": 0.0, "many_cpu": 0.0}
    for r in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        for s in range(single):
            eng.generate("level", gen, 10_000 + 1000 * r + s, p)
        best["one"] = max(best["one"], single / (time.perf_counter() - t))
        best["one_cpu"] = max(best["one_cpu"], single / (time.process_time() - c))
        t, c = time.perf_counter(), time.process_time()
        eng.generate_batch("level", gen, list(range(20_000 + 1000 * r, 20_000 + 1000 * r + batch)), p)
        best["many"] = max(best["many"], batch / (time.perf_counter() - t))
        best["many_cpu"] = max(best["many_cpu"], batch / (time.process_time() - c))
    return {"levels_per_s_single": round(best["one"], 1), "levels_per_s_batch": round(best["many"], 1),
            "speedup": round(best["many"] / best["one"], 2), "speedup_cpu": round(best["many_cpu"] / best["one_cpu"], 2)}


def platformer_gan_speed(eng, batch: int = 64, single: int = 16, width: int = PG_WIDTH, repeat: int = 3) -> dict:
    """Levels/s end to end (``engine.generate_batch`` of ``batch`` seeds vs ``engine.generate`` one seed at a
    time: latents, network, sampling, latent search, the engine's validators), wall and CPU time, the best of
    ``repeat`` alternating runs (the machine is shared)."""
    return batch_speed(eng, PG, {"width": width}, batch, single, repeat)


def platformer_gan_controls(eng, n: int = 20, width: int = PG_WIDTH) -> dict:
    """Per attribute and bucket: the share of ``n`` levels whose measured bucket is the one asked, as returned
    by the engine (after any resampling) and on the first try (raw: no search, no resampling)."""
    from plugins.learned_level_lm.controls import BUCKETS, density

    gen = eng.generator(PG)
    m = gen.model()
    out = {}
    for a in m.controls()["available"]:
        for b in BUCKETS:
            p = {"width": width, a: b}
            levels = eng.generate_batch("level", PG, list(range(n)), p)
            got = sum(lv.metadata["measured"][a] == b for lv in levels)
            first = sum(lv.metadata["measured"][a] == b and lv.metadata["raw_valid"] and lv.metadata.get("tries", 1) == 1
                        for lv in levels)
            exact = m.controls()["buckets"].count_range(a, b, width)[2]
            out[f"{a}={b}"] = {"returned": round(got / n, 3), "first_try": round(first / n, 3), "checked": exact,
                               "mean_count": round(float(np.mean([lv.metadata[a] for lv in levels])), 2),
                               "mean_density": round(float(np.mean([density(lv.metadata[a], width) for lv in levels])), 2)}
    return out


def platformer_gan_sheet(eng, path: Path, width: int = PG_WIDTH) -> Path:
    """Sample sheet: three corpus levels (their first ``width`` columns) above a white bar, then five generated
    ones (seeds 100-104: no control, many pipes + no enemies, many gaps, many elevation, no pipes + many
    enemies + no gaps), as ``engine.images.level_sheet`` draws levels."""
    from PIL import Image

    from engine.images import level_sheet

    m = eng.generator(PG).model()
    corpus = m.corpus()
    real = [m.to_level(np.ascontiguousarray(g[:, :width]), {}) for g in corpus.grids[:3]]
    asks = [{}, {"pipes": "many", "enemies": "none"}, {"gaps": "many"}, {"elevation": "many"},
            {"pipes": "none", "enemies": "many", "gaps": "none"}]
    made = [eng.generate("level", PG, 100 + i, {"width": width, **a}) for i, a in enumerate(asks)]
    a = np.asarray(level_sheet(real, tile_size=4, columns=1))
    b = np.asarray(level_sheet(made, tile_size=4, columns=1))
    bar = np.full((6, a.shape[1], 3), 255, dtype=np.uint8)
    Image.fromarray(np.concatenate([a, bar, b])).save(path)
    return path


def platformer_gan_rows(args) -> int:
    eng = Engine(entry_points=False)
    r = {"speed": platformer_gan_speed(eng)}
    if args.controls:
        r["controls"] = platformer_gan_controls(eng, args.controls)
    if args.sheet:
        r["sheet"] = str(platformer_gan_sheet(eng, Path(args.sheet)))
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        s = r["speed"]
        print(f"{PG}: batch 64 vs one at a time, 14x{PG_WIDTH} levels end to end: x{s['speedup']} wall "
              f"({s['levels_per_s_batch']} vs {s['levels_per_s_single']} levels/s), x{s['speedup_cpu']} CPU time "
              "(goal x8)")
        for k, v in r.get("controls", {}).items():
            print(f"  {k}: {v['returned']:.0%} as returned, {v['first_try']:.0%} first try"
                  f"{'' if v['checked'] else ' (not checkable at this width)'}, mean count {v['mean_count']}")
    return 0


# --------------------------------------------------------------------------------------------- dungeon-vae
DV = "dungeon-vae"


def dungeon_vae_speed(eng, batch: int = 64, single: int = 16, repeat: int = 3, params: dict | None = None) -> dict:
    """Levels/s end to end (``engine.generate_batch`` of ``batch`` seeds vs ``engine.generate`` one seed at a
    time: layout, latents, network, constrained sampling, placement, the engine's validators), wall and CPU
    time, the best of ``repeat`` alternating runs (the machine is shared). Default params: dungeons of the
    corpus's usual size."""
    return batch_speed(eng, DV, dict(params or {}), batch, single, repeat)


def dungeon_vae_controls(eng, n: int = 20) -> dict:
    """Per control and bucket: the share of ``n`` levels whose measured bucket is the one asked, as returned by
    the engine and on the first try (raw valid: no resampling, no repair)."""
    gen = eng.generator(DV)
    out = {}
    for a, buckets in gen.level_controls({}).items():
        for b in buckets:
            levels = eng.generate_batch("level", DV, list(range(n)), {a: b})
            got = sum(lv.metadata["measured"][a] == b for lv in levels)
            first = sum(lv.metadata["measured"][a] == b and lv.metadata["raw_valid"] for lv in levels)
            out[f"{a}={b}"] = {"returned": round(got / n, 3), "first_try": round(first / n, 3)}
    return out


def dungeon_vae_sheet(eng, path: Path, params: dict | None = None, asks: list | None = None) -> Path:
    """Sample sheet: three corpus maps above a white bar, then generated dungeons (seeds 100…), as
    ``engine.images.level_sheet`` draws levels."""
    from PIL import Image

    from engine.images import level_sheet

    p = dict(params or {})
    m = eng.generator(DV).model(p.get("weights", ""))
    corpus = m.corpus()
    real = [m.to_level(g, {}) for g in corpus.grids[:3]]
    asks = asks if asks is not None else [{}, {"rooms": "many", "enemies": "many"}, {"rooms": "few", "enemies": "none"}]
    made = [eng.generate("level", DV, 100 + i, {**p, **a}) for i, a in enumerate(asks)]
    a = np.asarray(level_sheet(real, tile_size=4, columns=3))
    b = np.asarray(level_sheet(made, tile_size=4, columns=3))
    w = max(a.shape[1], b.shape[1])
    a = np.pad(a, ((0, 0), (0, w - a.shape[1]), (0, 0)), constant_values=255)
    b = np.pad(b, ((0, 0), (0, w - b.shape[1]), (0, 0)), constant_values=255)
    bar = np.full((6, w, 3), 255, dtype=np.uint8)
    Image.fromarray(np.concatenate([a, bar, b])).save(path)
    return path


def dungeon_vae_rows(args) -> int:
    eng = Engine(entry_points=False)
    r = {"speed": dungeon_vae_speed(eng)}
    if args.controls:
        r["controls"] = dungeon_vae_controls(eng, args.controls)
    if args.sheet:
        r["sheet"] = str(dungeon_vae_sheet(eng, Path(args.sheet)))
        free = Path(args.sheet).with_name(Path(args.sheet).stem + "-free.png")
        r["sheet_free"] = str(dungeon_vae_sheet(eng, free, {"weights": "plugins/data/models/dungeon-vae/dungeon"},
                                                [{}, {"enemies": "many"}, {"enemies": "none"}]))
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        s = r["speed"]
        print(f"{DV}: batch 64 vs one at a time, dungeons end to end: x{s['speedup']} wall "
              f"({s['levels_per_s_batch']} vs {s['levels_per_s_single']} levels/s), x{s['speedup_cpu']} CPU time "
              "(goal x8)")
        for k, v in r.get("controls", {}).items():
            print(f"  {k}: {v['returned']:.0%} as returned, {v['first_try']:.0%} first try")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def learned_levels() -> int:
    """For bench/run.py: batch speed-up and quality of the learned level generators (smaller counts)."""
    return main(["--count", "100", "--single", "16"])


FIGURES = [learned_levels]
