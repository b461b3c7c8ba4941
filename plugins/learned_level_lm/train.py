"""Training level-lm (torch): corpus → strips → crops with control labels → the network, with a held-out split
by level, learning-rate warm-up and cosine decay, the best held-out checkpoint kept, and divergence stopped
with a message naming the option to change."""
from __future__ import annotations

import json
import math
import time

import numpy as np
import torch

from engine.errors import InputError

from .controls import BUCKETS, density, side_counts
from .model import Config, LevelLM
from .controls import Buckets
from .spec import SIDES, build, door_sides, patterns_of

DEFAULTS = {"d": 96, "layers": 2, "heads": 4, "ctx": 32, "lr": 2e-3, "batch": 24, "steps": 1500,
            "holdout": 0.15, "drop": 0.25, "dropout": 0.1, "calibrate": 1}
TINY = {"d": 32, "layers": 1, "heads": 2, "ctx": 16, "steps": 60, "batch": 16, "calibrate": 0}
BUCKET_ID = {b: i + 1 for i, b in enumerate(BUCKETS)}  # 0 = any
EVAL_EVERY = 100


def _int(v, name, lo, hi):
    try:
        x = int(v)
    except (TypeError, ValueError):
        raise InputError(f"level-lm: -O {name}={v!r}: expected an int") from None
    if not lo <= x <= hi:
        raise InputError(f"level-lm: -O {name}={x}: expected {lo}..{hi}")
    return x


def _float(v, name, lo, hi):
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise InputError(f"level-lm: -O {name}={v!r}: expected a number") from None
    if not (lo <= x <= hi) or math.isnan(x):
        raise InputError(f"level-lm: -O {name}={x}: expected {lo}..{hi}")
    return x


def options(opts: dict) -> dict:
    cfg = dict(DEFAULTS)
    if str(opts.get("tiny", "")).lower() in ("1", "true", "yes"):
        cfg.update(TINY)
    for k, (lo, hi) in {"d": (8, 512), "layers": (1, 8), "heads": (1, 16), "ctx": (4, 256), "batch": (1, 1024),
                        "steps": (1, 200_000), "calibrate": (0, 1), "kinds": (0, 1)}.items():
        if k in opts:
            cfg[k] = _int(opts[k], k, lo, hi)
    for k, (lo, hi) in {"lr": (1e-6, 1.0), "holdout": (0.0, 0.9), "drop": (0.0, 1.0), "dropout": (0.0, 0.9)}.items():
        if k in opts:
            cfg[k] = _float(opts[k], k, lo, hi)
    if cfg["d"] % cfg["heads"]:
        raise InputError(f"level-lm: -O d={cfg['d']} must be a multiple of -O heads={cfg['heads']}")
    return cfg


def crops(spec: dict, seqs: list[np.ndarray], info: list[dict], T: int, stride: int, masks: dict):
    """(inputs (N, T, h), targets (N, T, h), attrs (N, n_attr)) from the strip sequences."""
    B = spec["V"]
    h = spec["h"]
    xs, ys, at = [], [], []
    for s, inf in zip(seqs, info):
        L = len(s)
        padded = np.concatenate([np.full((1, h), B, dtype=np.int64), s.astype(np.int64)])
        if L < T:
            continue
        starts = sorted(set(range(0, L - T + 1, stride)) | {L - T})
        for x in starts:
            xs.append(padded[x:x + T])
            ys.append(padded[x + 1:x + T + 1])
            if spec["view"] == "side":
                grid = s[x:x + T].T
                c = side_counts(grid, masks, spec["base"])
                bk = Buckets(spec["buckets"])
                at.append([BUCKET_ID[bk.bucket(a, density(c[a], T))] if a in spec["available"] else 0
                           for a in spec["attrs"]])
            else:
                room = inf["room"]
                ds = door_sides(room, masks, spec["wall"])
                bk = Buckets(spec["buckets"])
                n_en = float(masks["enemy"][room].sum())
                row = [BUCKET_ID[bk.bucket("enemies", n_en)] if "enemies" in spec["available"] else 0,
                       BUCKET_ID["some" if masks["key"][room].any() else "none"] if "keys" in spec["available"] else 0]
                row += [BUCKET_ID["many" if ds[side] else "none"] for side in SIDES]
                at.append(row)
    if not xs:
        raise InputError(f"level-lm: no training sequence is {T} strips long (use a smaller -O ctx=)")
    return (torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys)),
            torch.tensor(at, dtype=torch.long))


def train(job, gen_id: str, version: str) -> dict:
    from engine.weights import save_safetensors
    from plugins.learned_levels.corpus import load_corpus, skipped_summary
    from plugins.learned_levels.rules import fit_rules

    from plugins import learned_common as lc

    cfg = options(job.options)
    if job.epochs is not None:
        raise InputError(f"{gen_id}: its training length is -O steps=N (optimizer steps), not --epochs")
    device = getattr(job, "device", "cpu") or "cpu"
    if device == "cuda" and lc.resolve_device(device, gen_id) == "cuda":
        raise InputError(f"{gen_id}: trains on the CPU only (its weights reproduce byte for byte there); "
                         "use --device cpu")
    lc.torch_threads()
    legend = getattr(job, "legend", None)
    mapping = getattr(job, "mapping", None)
    verbose = bool(getattr(job, "verbose", False))
    corpus = load_corpus(list(getattr(job, "paths", None) or job.data), engine=job.engine, legend=legend,
                         mapping=mapping, verbose=verbose)
    say = getattr(job, "say", None) or (lambda line: None)
    for line in skipped_summary(corpus, verbose):
        say(line)
    from plugins.learned_levels.model import refuse_vertical  # Kid Icarus: learned row by row, bottom up (spec.build)

    refuse_vertical(corpus, gen_id, list(getattr(job, "paths", None) or job.data), supported=True)
    rules = fit_rules(corpus)
    train_idx, held_idx = corpus.split(cfg["holdout"], job.seed)
    spec, seqs, info = build(corpus, rules, train_idx)
    _, hseqs, hinfo = build(corpus, rules, held_idx) if held_idx else (None, [], [])
    from .spec import role_masks

    masks = role_masks(spec["rules"]["roles"])
    K = spec["V"] + 1
    cfg.setdefault("kinds", 1)  # kind weights calibrated after the temperature (with -O calibrate)
    T = cfg["ctx"] if spec["view"] == "side" else int(spec["room"][0])
    cfg["ctx"] = T
    xs, ys, at = crops(spec, seqs, info, T, 4 if spec["view"] == "side" else 1, masks)
    hx = hy = ha = None
    if hseqs:
        try:
            hx, hy, ha = crops(spec, hseqs, hinfo, T, T // 2 if spec["view"] == "side" else 1, masks)
        except InputError:
            hx = None
    codes3, codes2 = patterns_of(seqs, K)
    mc = Config(h=spec["h"], K=K, n_attr=len(spec["attrs"]), d=cfg["d"], layers=cfg["layers"],
                heads=cfg["heads"], ctx=T, dropout=cfg["dropout"])
    torch.manual_seed(job.seed)
    gen = torch.Generator().manual_seed(job.seed)
    model = LevelLM(mc)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=0.01, betas=(0.9, 0.98))
    steps, bs = cfg["steps"], cfg["batch"]
    warm = max(1, min(200, steps // 10))

    def lr_at(s):
        if s < warm:
            return cfg["lr"] * (s + 1) / warm
        return cfg["lr"] * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm))))

    def held_loss():
        if hx is None:
            return None
        model.eval()
        with torch.no_grad():
            tot = n = 0.0
            for i in range(0, len(hx), 64):
                loss, b = model.loss(hx[i:i + 64], hy[i:i + 64], ha[i:i + 64])
                tot += float(loss) * b
                n += b
        model.train()
        return tot / max(n, 1)

    history = []
    best = (float("inf"), None, -1)
    t0 = time.time()
    recent: list[float] = []
    n = len(xs)
    with job.progress(steps, f"training {gen_id}") as bar:
        model.train()
        for s in range(steps):
            for g in opt.param_groups:
                g["lr"] = lr_at(s)
            idx = torch.randint(0, n, (bs,), generator=gen)
            a = at[idx].clone()
            drop = torch.rand(a.shape, generator=gen) < cfg["drop"]
            if spec["view"] == "top":
                drop[:, 2:] = False  # door sides are always given
            a[drop] = 0
            loss, _ = model.loss(xs[idx], ys[idx], a)
            lv = float(loss.detach())
            if not math.isfinite(lv) or (recent and lv > 4 * max(1e-3, min(recent)) and s > warm and lv > 1.0):
                raise InputError(f"level-lm: training diverged at step {s + 1} (loss {lv:.4g}); "
                                 f"lower the learning rate, e.g. -O lr={cfg['lr'] / 4:g}")
            recent = (recent + [lv])[-50:]
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            bar.advance(1, loss=round(lv, 4))
            if (s + 1) % EVAL_EVERY == 0 or s + 1 == steps:
                hl = held_loss()
                tl = float(np.mean(recent))
                history.append({"step": s + 1, "train_loss": round(tl, 4),
                                "held_loss": None if hl is None else round(hl, 4)})
                score = hl if hl is not None else tl
                if score < best[0]:
                    best = (score, {k: v.detach().clone() for k, v in model.state_dict().items()}, s + 1)
    model.load_state_dict(best[1])
    spec["train"] = {"levels": len(train_idx), "held_out": len(held_idx), "sequences": len(seqs)}
    tensors = {f"net.{k}": v for k, v in model.state_dict().items()}
    tensors["__config__"] = torch.tensor(list(json.dumps(mc.to_dict(), sort_keys=True).encode()), dtype=torch.uint8)
    tensors["patterns3"] = torch.from_numpy(codes3.astype(np.int64))
    tensors["patterns2"] = torch.from_numpy(codes2.astype(np.int64))

    def save():
        tensors["__spec__"] = torch.tensor(list(json.dumps(spec, sort_keys=True).encode()), dtype=torch.uint8)
        save_safetensors(tensors, job.out / "model.safetensors", {"generator": gen_id, "format": "conjure/1",
                                                                  "version": version})

    spec["temperature"] = 1.0
    save()
    if cfg["calibrate"]:
        spec["temperature"], shares = calibrate(job.out / "model.safetensors", [corpus.grids[i] for i in train_idx],
                                                spec, seqs)
        spec["calibration"] = shares
        save()
        if cfg["kinds"]:
            spec["kind_weights"], spec["calibration"]["kind_weights"] = calibrate_kinds(
                job.out / "model.safetensors", [corpus.grids[i] for i in train_idx], spec)
            save()
    metrics = {"best_step": best[2], "best_held_loss" if hx is not None else "best_train_loss": round(best[0], 4),
               "train_crops": int(n), "held_crops": 0 if hx is None else int(len(hx)),
               "patterns_3x3": int(len(codes3)), "seconds": round(time.time() - t0, 1),
               "rules": {"params": rules.params, "corpus_pass": rules.report.get("corpus_pass")}}
    return {"weights": ["model.safetensors"], "config": {**cfg, **mc.to_dict()}, "metrics": metrics,
            "epochs": None, "data": [(p, h) for p, h in corpus.files],
            "card": _card(corpus, rules, train_idx, held_idx, job, history)}


TEMPERATURES = (1.0, 1.2, 1.4, 1.6, 1.8)
CALIBRATION_SAMPLES = 12


def calibrate(path, train_grids: list, spec: dict, seqs: list) -> tuple[float, dict]:
    """The sampling temperature whose output's tile-kind shares are nearest the *training* levels' (L1 over
    the kinds; a small network under-draws rare structures at temperature 1): a few levels (side view: as
    wide as the corpus's median level) or dungeons (as many rooms as the corpus's median) per temperature."""
    from engine.generator import Request
    from plugins.level_lm import LevelLM, Model

    m = Model(path)
    gen = LevelLM()
    V = spec["V"]
    want = np.zeros(V)
    for g in train_grids:
        want += np.bincount(g.ravel(), minlength=V)[:V]
    want /= max(1.0, want.sum())
    base = {p.name: p.default for p in LevelLM.params}
    if spec.get("orientation") == "vertical":
        base["height"] = 0  # the corpus's median
    elif spec["view"] == "side":
        base["width"] = int(np.clip(np.median([g.shape[1] for g in train_grids]), 16, 400))
    else:
        base["room_count"] = int(np.clip(round(np.median(Buckets(spec["buckets"]).t["rooms"][:2])), 1, 30))
    scores = {}
    for t in TEMPERATURES:
        reqs = [Request("level", "level-lm", f"calibrate-{i}", {**base, "temperature": t})
                for i in range(CALIBRATION_SAMPLES)]
        got = np.zeros(V)
        for lv, _ in gen._make(m, reqs):
            from plugins.level_lm import level_grid

            got += np.bincount(level_grid(lv, m.spec).ravel(), minlength=V)[:V]
        got /= max(1.0, got.sum())
        scores[t] = round(float(np.abs(got - want).sum()), 4)
    best = min(TEMPERATURES, key=lambda t: (scores[t], t))
    return best, {"l1_tile_shares_by_temperature": {str(k): v for k, v in scores.items()}}


KIND_ROUNDS = 5


def _shares(m, reqs, V: int) -> np.ndarray:
    from plugins.level_lm import LevelLM, level_grid

    got = np.zeros(V)
    for lv, _ in LevelLM()._make(m, reqs):
        got += np.bincount(level_grid(lv, m.spec).ravel(), minlength=V)[:V]
    return got / max(1.0, got.sum())


def calibrate_kinds(path, train_grids: list, spec: dict) -> tuple[list[float], dict]:
    """Per tile kind, a factor on the network's probabilities (at the calibrated temperature) that brings the
    output's tile-kind shares nearer the *training* levels': ``KIND_ROUNDS`` rounds of the same
    ``CALIBRATION_SAMPLES`` levels (dungeons), each multiplying a kind's factor by ``(want / got) ** 0.8``
    (the step clipped to 0.5..2, the factor to 0.2..5); the round with the smallest L1 distance is kept (the
    first round is all ones). Run after :func:`calibrate` (``-O kinds=0`` turns it off)."""
    from engine.generator import Request
    from plugins.level_lm import LevelLM, Model

    m = Model(path)
    V = spec["V"]
    want = np.zeros(V)
    for g in train_grids:
        want += np.bincount(g.ravel(), minlength=V)[:V]
    want /= max(1.0, want.sum())
    base = {p.name: p.default for p in LevelLM.params}
    if spec.get("orientation") == "vertical":
        base["height"] = 0  # the corpus's median
    elif spec["view"] == "side":
        base["width"] = int(np.clip(np.median([g.shape[1] for g in train_grids]), 16, 400))
    else:
        base["room_count"] = int(np.clip(round(np.median(Buckets(spec["buckets"]).t["rooms"][:2])), 1, 30))
    reqs = [Request("level", "level-lm", f"calibrate-{i}", dict(base)) for i in range(CALIBRATION_SAMPLES)]
    w = np.ones(V)
    best, scores = None, []
    for _ in range(KIND_ROUNDS):
        m.spec.kind_weights = w
        got = _shares(m, reqs, V)
        score = round(float(np.abs(got - want).sum()), 4)
        scores.append(score)
        if best is None or score < best[0]:
            best = (score, w.copy())
        ok = (want > 0) & (got > 0)
        step = np.ones(V)
        step[ok] = np.clip(want[ok] / got[ok], 0.5, 2.0) ** 0.8
        w = np.clip(w * step, 0.2, 5.0).round(4)
    return [float(x) for x in best[1]], {"l1_tile_shares_by_round": scores}


def _card(corpus, rules, train_idx, held_idx, job, history) -> dict:
    """The model card's corpus, split, rules and history (the layout the other learned level models use)."""
    from pathlib import Path

    def rel(p) -> str:
        try:
            return str(Path(p).resolve().relative_to(Path.cwd().resolve()))
        except ValueError:
            return str(p)

    legend, mapping = getattr(job, "legend", None), getattr(job, "mapping", None)
    names = corpus.sources if len(corpus.sources) == len(corpus.grids) else [str(i) for i in range(len(corpus.grids))]
    return {"corpus": {**corpus.describe(), "legend": rel(legend) if legend else None,
                       "mapping": rel(mapping) if mapping else None,
                       "skipped": [[rel(p), r] for p, r in corpus.skipped]},
            "split": {"holdout": "by level", "seed": job.seed, "train": [rel(names[i]) for i in train_idx],
                      "held_out": [rel(names[i]) for i in held_idx]},
            "rules": rules.to_dict(), "history": history}
