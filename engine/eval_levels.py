"""Quality metrics for level generators (``conjure evaluate GENERATOR``), classic and learned alike.

Samples are made through the engine (``generate_batch``, so learned generators batch) with seeds
``derive(seed, i)``. Metrics:

- **playability**: ``raw`` = share valid on the first attempt before any repair (a generator's own
  ``metadata["raw_valid"]`` when it records one, else the engine's ``tries == 1``); ``after`` = share valid
  after the generator's repair and the engine's resampling.
- **the corpus** (:func:`find_corpus`): ``--data`` when given, else the one the generator *declares*
  (``corpus(params)``, ``rules(params)``, ``corpus_split(params, corpus)``, ``read_corpus(paths, legend)``:
  optional generator methods documented in :mod:`engine.generator`); no generator ids or genres here.
  Generated levels are turned into the corpus's tile ids with ``corpus.grid_of(level)``.
- **against the corpus** (:func:`corpus_figures`): pattern fidelity (share of the output's k×k windows, k = 2,
  3, found in the training levels), tile-pattern KL(held-out ‖ output) for 2×2 and 3×3 (smoothed as
  ``(p + ε) / (1 + Kε)``, ``ε = 1e-5``), novelty (share of outputs farther than ``COPY_DISTANCE`` from every
  training level or same-size section of one), per-tile-kind shares output vs corpus, and the corpus's own
  figures beside (its held-out levels measured against its training levels); **playable_by_corpus_rules**
  with the rules fitted on the corpus.
- **diversity**: mean normalised tile Hamming distance over sampled pairs (common top-left crop).
- **expressive range**: a density × leniency heatmap PNG and a PNG grid of samples.

No torch here: generators import what they need.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from . import eval_targets
from .content import Level
from .errors import ConjureError
from .generator import LevelControls
from .seeds import derive

COPY_DISTANCE = 0.02
KL_EPS = 1e-5
MAX_PAIRS = 2000
CHUNK = 64


# --------------------------------------------------------------------------------------------- sampling
def sample(engine: Any, gen: Any, count: int, seed: Any, params: dict) -> tuple[list[Level | None], list[str]]:
    seeds = [derive(seed, i) for i in range(count)]
    out: list[Level | None] = []
    errors: list[str] = []
    for k in range(0, count, CHUNK):
        chunk = seeds[k:k + CHUNK]
        try:
            out += engine.generate_batch("level", gen.id, chunk, params)
        except ConjureError:
            for s in chunk:
                try:
                    out.append(engine.generate("level", gen.id, s, params))
                except ConjureError as e:
                    out.append(None)
                    errors.append(str(e))
    return out, errors


def raw_valid(level: Level) -> bool:
    m = level.metadata
    if "raw_valid" in m:
        return bool(m["raw_valid"])
    return m.get("tries", 1) == 1


# --------------------------------------------------------------------------------------------- metrics
def diversity(levels: list[Level], rng: np.random.Generator) -> float:
    """:func:`grid_diversity` of the levels' tile layers."""
    return grid_diversity([lv.tiles for lv in levels], rng)


def _windows(grid: np.ndarray, h: int, w: int, sy: int, sx: int) -> np.ndarray:
    H, W = grid.shape
    if H < h or W < w:
        return np.zeros((0, h, w), dtype=grid.dtype)
    ys = sorted(set(range(0, H - h + 1, sy)) | {H - h})
    xs = sorted(set(range(0, W - w + 1, sx)) | {W - w})
    return np.stack([grid[y:y + h, x:x + w] for y in ys for x in xs])


def nearest_distances(samples: np.ndarray, corpus: np.ndarray, classes: int) -> np.ndarray:
    """For each sample window ``(m, h, w)``, the normalised Hamming distance to the nearest corpus window."""
    m, n = len(samples), len(corpus)
    L = samples[0].size
    S = samples.reshape(m, L)
    C = corpus.reshape(n, L)
    best = np.zeros(m, dtype=np.float32)
    for c0 in range(0, n, 4096):
        Cc = C[c0:c0 + 4096]
        match = np.zeros((m, len(Cc)), dtype=np.float32)
        for k in range(classes):
            sk = (S == k).astype(np.float32)
            if not sk.any():
                continue
            match += sk @ (Cc == k).astype(np.float32).T
        best = np.maximum(best, match.max(1))
    return 1.0 - best / L


def pattern_counts(grids: list[np.ndarray], k: int, base: int) -> dict[int, int]:
    counts: dict[int, int] = {}
    for g in grids:
        H, W = g.shape
        if H < k or W < k:
            continue
        code = np.zeros((H - k + 1, W - k + 1), dtype=np.int64)
        for dy in range(k):
            for dx in range(k):
                code = code * base + g[dy:dy + H - k + 1, dx:dx + W - k + 1].astype(np.int64)
        u, c = np.unique(code, return_counts=True)
        for a, b in zip(u.tolist(), c.tolist()):
            counts[a] = counts.get(a, 0) + b
    return counts


def kl_divergence(p_counts: dict[int, int], q_counts: dict[int, int], eps: float = KL_EPS) -> float:
    keys = sorted(set(p_counts) | set(q_counts))
    if not keys:
        return float("nan")
    p = np.array([p_counts.get(k, 0) for k in keys], dtype=np.float64)
    q = np.array([q_counts.get(k, 0) for k in keys], dtype=np.float64)
    K = len(keys)
    p = (p / p.sum() + eps) / (1 + K * eps)
    q = (q / max(q.sum(), 1) + eps) / (1 + K * eps)
    return float(np.sum(p * np.log(p / q)))


def density_leniency(level: Level) -> tuple[float, float]:
    """Expressive-range axes in [0, 1]. Density: share of walkable tiles for top-down (dungeon) levels,
    share of solid tiles for side-view levels. Leniency: 1 / (1 + threats), threats = enemies per 100
    walkable tiles (top-down) or enemies + gaps per 10 columns (side-view)."""
    solid = level.tileset.lookup("solid")[level.tiles]
    enemies = len(level.entities_of("enemy"))
    if "gaps" in level.metadata or level.metadata.get("genre") == "platformer":
        density = float(solid.mean())
        gaps = int(level.metadata.get("gaps", 0))
        threat = (enemies + gaps) / max(1.0, level.width / 10)
    else:
        walk = float((~solid).sum())
        density = walk / solid.size
        threat = 100.0 * enemies / max(1.0, walk)
    return density, 1.0 / (1.0 + threat)


def find_corpus(engine: Any, gen: Any, params: dict, data: list | None = None, legend: Any = None,
                sample: Level | None = None) -> tuple[Any, Any, str, tuple[list[int], list[int]] | None]:
    """(corpus, rules, what, split) to evaluate ``gen`` against, from what generators *declare*:

    - ``data`` given (``--data``): read by ``gen.read_corpus(paths, legend)``, or by the first loaded level
      generator (by id) that declares ``read_corpus``; rules fitted on it (``corpus.fitted_rules()``).
    - else ``gen.corpus(params)`` (learned generators: the corpus their weights were trained on), with
      ``gen.rules(params)`` and ``gen.corpus_split(params, corpus)`` when declared.
    - else a generator that declares ``corpus`` and whose corpus tileset has the sample's tileset name (a
      classic generator measured against the corpus of a learned one drawn in the same tileset).
    Returns ``(None, None, reason, None)`` when there is none."""
    if data:
        reader = gen if callable(getattr(gen, "read_corpus", None)) else next(
            (g for g in sorted(engine.generators("level"), key=lambda g: g.id)
             if callable(getattr(g, "read_corpus", None))), None)
        if reader is None:
            return None, None, "no loaded plugin reads corpora (read_corpus)", None
        c = reader.read_corpus(list(data), legend)
        fit = getattr(c, "fitted_rules", None)
        return c, (fit() if callable(fit) else None), f"--data {' '.join(map(str, data))}", None
    if callable(getattr(gen, "corpus", None)):
        c = gen.corpus(params)
        r = gen.rules(params) if callable(getattr(gen, "rules", None)) else None
        sp = gen.corpus_split(params, c) if callable(getattr(gen, "corpus_split", None)) else None
        w = params.get("weights") or "shipped weights"
        return c, r, f"the corpus {gen.id} ({w}) was trained on", sp
    if sample is not None:
        for other in sorted(engine.generators("level"), key=lambda g: g.id):
            if other is gen or not callable(getattr(other, "corpus", None)):
                continue
            try:
                c = other.corpus({})
            except ConjureError:
                continue
            if c.tileset.name == sample.tileset.name:
                fit = getattr(c, "fitted_rules", None)
                return c, (fit() if callable(fit) else None), f"the corpus of {other.id} (same tileset)", None
    return None, None, "no corpus (give --data)", None


# --------------------------------------------------------------------------------------------- images
def sample_sheet(levels: list[Level], path: Path, cols: int = 4, ts: int = 4) -> Path:
    from .images import grid, level_rgb, png_bytes
    from .serialize import atomic_write

    imgs = [level_rgb(lv, ts) for lv in levels[:cols * 4]]
    if max(i.shape[1] for i in imgs) > 4 * max(i.shape[0] for i in imgs):  # long platformer levels: one per row
        cols = 1
    atomic_write(path, png_bytes(grid(imgs, cols, gap=4, background=(30, 30, 30))))
    return path


def heatmap(points: list[tuple[float, float]], path: Path, title: str, bins: int = 20) -> Path:
    from PIL import Image, ImageDraw, ImageFont

    hist = np.zeros((bins, bins))
    for d, le in points:
        hist[min(bins - 1, int(le * bins)), min(bins - 1, int(d * bins))] += 1
    hist = hist[::-1]  # leniency grows upwards
    v = hist / max(hist.max(), 1)
    cell, left, top = 16, 60, 30
    img = Image.new("RGB", (left + bins * cell + 20, top + bins * cell + 50), (255, 255, 255))
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    for r in range(bins):
        for c in range(bins):
            t = v[r, c]
            col = (int(20 + 235 * t), int(20 + 200 * t ** 0.5), int(80 + 60 * (1 - t))) if hist[r, c] else (235, 235, 240)
            d.rectangle([left + c * cell, top + r * cell, left + (c + 1) * cell - 1, top + (r + 1) * cell - 1], fill=col)
    d.text((left, 8), title, fill=(0, 0, 0), font=font)
    y = top + bins * cell + 6
    d.text((left, y), "0", fill=(0, 0, 0), font=font)
    d.text((left + bins * cell - 6, y), "1", fill=(0, 0, 0), font=font)
    d.text((left + bins * cell // 2 - 24, y + 14), "density ->", fill=(0, 0, 0), font=font)
    d.text((4, top), "lenient", fill=(0, 0, 0), font=font)
    d.text((4, top + bins * cell - 12), "hard", fill=(0, 0, 0), font=font)
    img.save(path)
    return path


# --------------------------------------------------------------------------------------------- entry
def evaluate(engine: Any, generator: Any, *, count: int, seed: Any, params: dict, report: Path | None,
             data: list | None = None, legend: Any = None, controls: int = 0) -> dict:
    t0 = time.perf_counter()
    made, errors = sample(engine, generator, count, seed, params)
    seconds = time.perf_counter() - t0
    levels = [lv for lv in made if lv is not None]
    rng = np.random.default_rng(0)
    metrics: dict[str, Any] = {
        "generator": generator.id, "count": count, "seconds": round(seconds, 2),
        "levels_per_second": round(count / max(seconds, 1e-9), 1),
        "playability_raw": round(sum(raw_valid(lv) for lv in levels) / count, 4),
        "playability_after": round(len(levels) / count, 4),
        "repaired_share": round(sum(bool(lv.metadata.get("repaired")) for lv in levels) / count, 4),
        "mean_tries": round(float(np.mean([lv.metadata.get("tries", 1) for lv in levels])) if levels else 0, 3),
        "diversity": round(diversity(levels, rng), 4),
    }
    corpus, rules, what, split = find_corpus(engine, generator, params, data, legend, levels[0] if levels else None)
    metrics["corpus"] = what
    grids = []
    if corpus is not None and levels:
        try:
            grids = [corpus.grid_of(lv) for lv in levels]
        except ConjureError as e:
            metrics["corpus"] = f"{what}: output not in its tileset ({e})"
            grids = []
    if grids:
        train, held = split if split is not None else corpus.split()
        fig = corpus_figures(grids, corpus, train=train, held=held)
        m, own = fig["model"], fig["corpus"]
        metrics.update({
            "corpus_levels": len(corpus.grids), "corpus_split": f"{len(train)} train / {len(held)} held out",
            "novelty": m["novelty_far"], "novelty_exact": m["novelty"],
            "novelty_mean_distance": m["novelty_mean_distance"],
            "fidelity_2x2": m["fidelity_2"], "fidelity_3x3": m["fidelity_3"],
            "kl_2x2": m["kl_2x2"], "kl_3x3": m["kl_3x3"],
            "kl_2x2_train": m["kl_2x2_train"], "kl_3x3_train": m["kl_3x3_train"],
            "corpus_own": {"fidelity_2x2": own.get("fidelity_2"), "fidelity_3x3": own.get("fidelity_3"),
                           "kl_2x2": own.get("kl_2x2"), "kl_3x3": own.get("kl_3x3"),
                           "diversity": own.get("diversity"), "novelty_mean_distance": own.get("novelty_mean_distance")},
            "tiles": fig["tiles"],
        })
        metrics["diversity"] = m["diversity"]
        if rules is not None:
            metrics["rules"] = rules.describe() if callable(getattr(rules, "describe", None)) else str(rules)
            metrics["playable_by_corpus_rules"] = round(sum(not rules.problems(g) for g in grids) / count, 4)
            rep = getattr(rules, "report", {}) or {}
            if "corpus_pass" in rep:
                metrics["corpus_passing_rules"] = rep["corpus_pass"]
    else:
        metrics.update({"novelty": "n/a", "kl_2x2": "n/a", "kl_3x3": "n/a"})
    er = [density_leniency(lv) for lv in levels]
    if er:
        metrics["density_mean"] = round(float(np.mean([a for a, _ in er])), 4)
        metrics["leniency_mean"] = round(float(np.mean([b for _, b in er])), 4)
    if errors:
        metrics["first_error"] = errors[0]
    if controls and isinstance(generator, LevelControls):
        metrics["controls"] = eval_targets.control_figures(engine, generator, per_bucket=controls, seed=seed,
                                                           params=params)
    elif controls:
        metrics["controls_note"] = f"--controls: {generator.id} declares no controls (LevelControls), none measured"
    metrics["targets"] = eval_targets.level_targets(metrics)
    if report is not None:
        write_report(report, generator, metrics, levels, er, params, corpus if grids else None)
    return metrics


def write_report(folder: Path, generator: Any, metrics: dict, levels: list[Level], er, params: dict,
                 corpus: Any = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if levels:
        sample_sheet(levels, folder / "samples.png")
        heatmap(er, folder / "expressive_range.png", f"{generator.id}: {len(er)} samples")
    if corpus is not None and getattr(corpus, "levels", None):
        sample_sheet(list(corpus.levels), folder / "corpus.png")
    lines = [f"# Evaluation of `{generator.id}` (version {generator.version})", "",
             f"{metrics['count']} samples, params `{params or {}}`, in {metrics['seconds']} s "
             f"({metrics['levels_per_second']} levels/s). Corpus: {metrics.get('corpus', 'none')}.", "",
             "| metric | value |", "| --- | --- |"]
    for k, v in metrics.items():
        if k in ("generator", "count", "corpus") or isinstance(v, (dict, list)):
            continue
        lines.append(f"| {k} | {v} |")
    own = metrics.get("corpus_own")
    if own:
        lines += ["", "## Output vs the corpus's own figures", "",
                  "| measure | output | corpus (held-out vs train) |", "| --- | --- | --- |"]
        for k, label in (("fidelity_2x2", "pattern fidelity 2×2"), ("fidelity_3x3", "pattern fidelity 3×3"),
                         ("kl_2x2", "KL 2×2 (held-out ‖ ·)"), ("kl_3x3", "KL 3×3 (held-out ‖ ·)"),
                         ("diversity", "diversity"), ("novelty_mean_distance", "distance to nearest training level")):
            lines.append(f"| {label} | {metrics.get(k)} | {own.get(k)} |")
    lines += [""] + eval_targets.report_lines(metrics.get("targets") or [])
    if metrics.get("tiles"):
        lines += ["", "## Tile kinds: share in the output vs the corpus", "",
                  "| glyph | tile | output | corpus |", "| --- | --- | --- | --- |"]
        for t in metrics["tiles"]:
            lines.append(f"| `{t['char']}` | {t['name']} | {t['model']:.4f} | {t['corpus']:.4f} |")
    lines += ["", "- **playability_raw**: valid on the first attempt before repair; **playability_after**: valid "
              "after repair and resampling; **playable_by_corpus_rules**: share of outputs passing the rules "
              "fitted on the corpus.",
              f"- **novelty**: share of outputs farther than {COPY_DISTANCE:.0%} (normalised Hamming) from every "
              "training level and same-size section of one (**novelty_exact**: not equal to any).",
              "- **fidelity_kxk**: share of the output's k×k windows that occur in the training levels.",
              f"- **kl_2x2 / kl_3x3**: KL(held-out levels ‖ output) of tile patterns, smoothing ε={KL_EPS} "
              "(``_train``: against the training levels); the corpus's own is KL(held-out ‖ train).",
              "- **diversity**: mean pairwise tile Hamming distance.", ""]
    if levels:
        lines += ["## Expressive range (density × leniency)", "", "![expressive range](expressive_range.png)", "",
                  "## Samples", "", "![samples](samples.png)", ""]
    if (folder / "corpus.png").exists() and corpus is not None:
        lines += ["## The corpus", "", "![corpus](corpus.png)", ""]
    out = folder / "report.md"
    out.write_text("\n".join(lines), encoding="utf-8")
    return out


# --------------------------------------------------------------------------------------------- vs a corpus
def pattern_set(grids: list[np.ndarray], k: int, base: int = 256) -> set[int]:
    """Every ``k×k`` window (as one code) occurring in ``grids``."""
    return set(pattern_counts(grids, k, base))


def pattern_fidelity(grids: list[np.ndarray], reference: set[int], k: int, base: int = 256) -> float:
    """Share of the ``k×k`` windows of ``grids`` that occur in ``reference`` (a :func:`pattern_set`)."""
    c = pattern_counts(grids, k, base)
    total = sum(c.values())
    if not total:
        return float("nan")
    return sum(n for p, n in c.items() if p in reference) / total


def grid_diversity(grids: list[np.ndarray], rng: np.random.Generator | None = None) -> float:
    """Mean pairwise normalised Hamming distance of grids (each pair on their common top-left crop)."""
    rng = rng if rng is not None else np.random.default_rng(0)
    n = len(grids)
    if n < 2:
        return float("nan")
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    if len(pairs) > MAX_PAIRS:
        pairs = [pairs[int(k)] for k in rng.choice(len(pairs), MAX_PAIRS, replace=False)]
    d = []
    for i, j in pairs:
        a, b = grids[i], grids[j]
        h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
        d.append(float((a[:h, :w] != b[:h, :w]).mean()))
    return float(np.mean(d))


def _novelty(grids: list[np.ndarray], train: list[np.ndarray], classes: int) -> tuple[float, float, float]:
    """(share of grids equal to no training level or same-size section of one, share farther than
    COPY_DISTANCE from every such section, mean nearest distance)."""
    exact, far, dist = [], [], []
    by_shape: dict[tuple[int, int], np.ndarray] = {}
    for g in grids:
        h, w = g.shape
        if (h, w) not in by_shape:
            wins = [_windows(t, h, w, 1, 1) for t in train]
            wins = [x for x in wins if len(x)]
            if sum(len(x) for x in wins) > 20000:  # very many sections: every other one (and the exact test below)
                wins = [x[::2] for x in wins]
            by_shape[(h, w)] = np.concatenate(wins) if wins else np.zeros((0, h, w), np.uint8)
        cw = by_shape[(h, w)]
        if not len(cw):
            exact.append(True)
            far.append(True)
            dist.append(1.0)
            continue
        dmin = float(nearest_distances(g[None], cw, classes)[0])
        exact.append(dmin > 0)
        far.append(dmin > COPY_DISTANCE)
        dist.append(dmin)
    return float(np.mean(exact)), float(np.mean(far)), float(np.mean(dist))


def corpus_figures(grids: list[np.ndarray], corpus: Any, *, train: list[int] | None = None,
                   held: list[int] | None = None, seed: int = 0) -> dict:
    """Output grids (ids into ``corpus.tileset``) against a corpus: the model's figures and the corpus's own.

    ``corpus`` is any object with ``grids`` (uint8 arrays) and ``tileset`` (a :class:`Tileset`), and
    ``split(holdout, seed)`` unless ``train``/``held`` are given (by default ``corpus.split()``). Returns::

        {"model":  {fidelity_2, fidelity_3, kl_2x2, kl_3x3, kl_2x2_train, kl_3x3_train, diversity,
                    novelty, novelty_far, novelty_mean_distance},
         "corpus": {same keys: the held-out levels measured against the training levels},
         "tiles":  [{"id", "char", "name", "model", "corpus"}, ...],   # shares per tile kind
         "split":  {"train": n, "held_out": n}}

    fidelity_k: share of k×k windows found in the *training* levels; kl_kxk: KL(held-out ‖ output) of
    k×k patterns (``kl_kxk_train``: KL(train ‖ output)), smoothed as in :func:`kl_divergence`; diversity:
    :func:`grid_diversity`; novelty: share of outputs equal to no training level or same-size section of
    one (``novelty_far``: none within COPY_DISTANCE), with the mean nearest distance. The corpus's own
    figures measure its held-out levels the same way (its held-out KL is KL(held-out ‖ train); its diversity
    is over all its levels).
    """
    if train is None or held is None:
        train, held = corpus.split()
    cg = [np.asarray(g) for g in corpus.grids]
    tr = [cg[i] for i in train]
    ho = [cg[i] for i in held] or tr
    classes = max(len(corpus.tileset.tiles), 1 + max((int(g.max()) for g in grids if g.size), default=0))
    base = max(classes, 2)
    rng = np.random.default_rng(seed)

    def figures(gs: list[np.ndarray], own: bool) -> dict:
        out: dict[str, Any] = {}
        for k in (2, 3):
            out[f"fidelity_{k}"] = round(pattern_fidelity(gs, pattern_set(tr, k, base), k, base), 4)
            ref_h = pattern_counts(ho, k, base)
            ref_t = pattern_counts(tr, k, base)
            got = pattern_counts(gs, k, base)
            out[f"kl_{k}x{k}"] = round(kl_divergence(ref_h, ref_t if own else got), 4)
            out[f"kl_{k}x{k}_train"] = round(kl_divergence(ref_t, got), 4)
        out["diversity"] = round(grid_diversity(cg if own else gs, rng), 4)
        ex, far, md = _novelty(gs, tr, classes)
        out.update(novelty=round(ex, 4), novelty_far=round(far, 4), novelty_mean_distance=round(md, 4))
        return out

    model = figures([np.asarray(g) for g in grids], False)
    own = figures(ho, True) if held else {}

    def shares(gs):
        n = np.zeros(classes)
        for g in gs:
            n += np.bincount(np.asarray(g).ravel(), minlength=classes)[:classes]
        return n / max(1.0, n.sum())

    sm, sc = shares(grids), shares(cg)
    tiles = [{"id": t.id, "char": t.char, "name": t.name, "model": round(float(sm[t.id]), 5),
              "corpus": round(float(sc[t.id]), 5)} for t in corpus.tileset.tiles if t.id < classes]
    return {"model": model, "corpus": own, "tiles": tiles, "split": {"train": len(train), "held_out": len(held)}}
