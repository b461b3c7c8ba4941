"""Character metrics for ``conjure evaluate`` (any character generator: ``character-ml``, ``classic-character``).

What a generator is compared with comes from the generator itself: its optional
``character_reference(params) -> dict`` (the protocol in :mod:`engine.generator`) may give

- ``name_corpora``: ``{style: [names]}``, the corpora a style classifier is fitted on;
- ``training_names``: names the generator learned from (novelty);
- ``rules``: ``{"attributes": [...], "min": int, "max": int}``, the game's attribute rules;
- ``training_sprites`` / ``heldout_sprites``: ``{"grids": uint8 (n, 2, h, w), "roles": [...]}``, the sprite
  corpus as palette-index grids of the idle frames named by ``sprite_frames`` (``{"down": frame name,
  "side": frame name}``): the sprites the generator was trained on, and those held out of its training;
- ``max_colors``: the most colors a sprite may use (default 16).

Metrics (a metric whose reference is missing is left out):

- **name novelty** (not in ``training_names``), uniqueness, content-filter pass rate; **style accuracy**: a
  character-bigram naive Bayes classifier fitted on ``name_corpora`` labels each generated name (chance is
  1/number of styles; ``style_accuracy_corpus_holdout`` is the classifier on held-out corpus names);
- **sprites**: mean pairwise RGBA distance and silhouette Hamming distance of idle frames, the share of
  distinct silhouettes (idle alpha masks, exact); **sprite novelty**: the share of characters whose idle
  frames are not a training sprite's and whose down idle frame differs from every training sprite's in more
  than 8 palette indices (``sprite_min_hamming_*`` gives the distribution); **role accuracy**: a linear
  (softmax) classifier on one-hot palette indices of both idle frames, fitted on the *held-out* corpus
  sprites only, predicts each generated character's role (``role_accuracy_corpus`` is the same classifier on
  the training sprites, a ceiling); **pixel-art rules**: the share of sprites with no
  :func:`pixel_art_problems`;
- **stats compliance** with ``rules`` and the budget;
- speed: milliseconds per character through ``generate_batch`` (all ``count`` requests) and per request one
  at a time (16 requests), each the better of two timings, and their ratio ``batch_speedup``.

Sample ``i`` uses seed ``derive(seed, i)``. With ``report`` a folder gets ``report.md``, ``sprites.png``
(a grid of idle frames), ``walk.png`` (every frame of a few characters) and, when the generator has a
sprite corpus, ``compare.png`` (64 generated idle frames next to 64 corpus sprites).
"""
from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from .content import Cast, Character, Sprite
from .seeds import derive
from .serialize import atomic_write
from .textfilter import default_filter

MAX_PAIRS_SPRITES = 300
NOVELTY_PIXELS = 8
MIN_FRAME_OVERLAP = 0.8


# --------------------------------------------------------------------------------------------- helpers
def _key(name: str) -> str:
    return name.strip().lower()


def reference_of(generator: Any, params: dict) -> dict:
    """The generator's ``character_reference(params)``, or {} when it declares none."""
    fn = getattr(generator, "character_reference", None)
    return dict(fn(params) or {}) if callable(fn) else {}


def pixel_art_problems(sprite: Sprite, max_colors: int = 16, min_overlap: float = MIN_FRAME_OVERLAP) -> list[str]:
    """The pixel-art rules a sprite breaks (empty when it keeps them all):

    - *grid*: every frame a 2-D uint8 array of one shape;
    - *alpha*: every color the frames use is fully transparent or fully opaque (alpha 0 or 255);
    - *colors*: at most ``max_colors`` colors over all frames (one palette is shared by construction);
    - *outline*: in every frame, all opaque pixels touching a transparent pixel or the edge have one color,
      the same in all frames;
    - *frame consistency*: for each walk animation (``walk``, ``walk_side``) and its idle (``idle``,
      ``idle_side``): silhouette heights within 1 pixel, and at least ``min_overlap`` of the idle frame's
      inner (non-outline) opaque pixels keep their color in each walk frame.
    """
    out: list[str] = []
    frames = sprite.frames
    if not frames:
        return ["sprite has no frames"]
    shape = next(iter(frames.values())).shape
    for name, f in frames.items():
        if not isinstance(f, np.ndarray) or f.dtype != np.uint8 or f.ndim != 2 or f.shape != shape:
            return [f"frame {name!r}: not a uint8 grid of shape {shape}"]
    pal = np.array(sprite.palette, dtype=np.int64).reshape(-1, 4)
    names = list(frames)
    stack = np.stack([frames[n] for n in names])
    if int(stack.max()) >= len(pal):
        return [f"color index {int(stack.max())} beyond the palette"]
    used = np.nonzero(np.bincount(stack.ravel(), minlength=len(pal)))[0]
    alphas = pal[used, 3]
    if not np.isin(alphas, (0, 255)).all():
        out.append(f"alpha values {sorted(set(alphas.tolist()) - {0, 255})} (only 0 and 255 allowed)")
    if len(used) > max_colors:
        out.append(f"{len(used)} colors (at most {max_colors})")
    opaque = (pal[:, 3] > 0)[stack]
    pad = np.zeros((len(names), shape[0] + 2, shape[1] + 2), dtype=bool)  # outside the grid is transparent
    pad[:, 1:-1, 1:-1] = opaque
    edge = opaque & ~(pad[:, :-2, 1:-1] & pad[:, 2:, 1:-1] & pad[:, 1:-1, :-2] & pad[:, 1:-1, 2:])
    has_edge = edge.any(axis=(1, 2))
    lo_c = np.where(edge, stack, 255).min(axis=(1, 2))
    hi_c = np.where(edge, stack, 0).max(axis=(1, 2))
    for k in np.nonzero(has_edge & (lo_c != hi_c))[0]:
        out.append(f"frame {names[k]!r}: the silhouette's edge has {len(np.unique(stack[k][edge[k]]))} colors "
                   f"(an outline has one)")
    outline_colors = set(lo_c[has_edge].tolist()) | set(hi_c[has_edge].tolist())
    if len(outline_colors) > 1 and not out:
        out.append(f"outline colors differ between frames: {sorted(outline_colors)}")
    line = next(iter(outline_colors)) if len(outline_colors) == 1 else None
    filled = opaque.any(axis=2)
    first = filled.argmax(axis=1)
    last = filled.shape[1] - 1 - filled[:, ::-1].argmax(axis=1)
    hs = np.where(filled.any(axis=1), last - first + 1, 0)
    heights = {n: int(hs[k]) for k, n in enumerate(names)}
    index = {n: k for k, n in enumerate(names)}
    for anim, walk in sprite.animations.items():
        if "walk" not in anim:
            continue
        idle_anim = sprite.animations.get(anim.replace("walk", "idle"))
        if not idle_anim or idle_anim[0] not in frames:
            continue
        idle = idle_anim[0]
        inner = opaque[index[idle]] & (frames[idle] != line)
        for w in walk:
            if w not in frames:
                continue
            if abs(heights[w] - heights[idle]) > 1:
                out.append(f"frame {w!r}: silhouette height {heights[w]} vs {heights[idle]} in {idle!r}")
            if inner.any():
                kept = float((frames[w][inner] == frames[idle][inner]).mean())
                if kept < min_overlap:
                    out.append(f"frame {w!r}: keeps {kept:.2f} of {idle!r}'s colors in place (< {min_overlap})")
    return out


def pixel_art_problems_many(sprites: list[Sprite], max_colors: int = 16,
                            min_overlap: float = MIN_FRAME_OVERLAP) -> list[list[str]]:
    """:func:`pixel_art_problems` of many sprites: the same lists, in order. Sprites of one layout (frame names,
    shape, animations, palette size) are checked together with array operations; a sprite that might break a
    rule there (the batch check only ever errs towards suspicion) gets :func:`pixel_art_problems` itself."""
    if len(sprites) < 2:  # nothing to share
        return [pixel_art_problems(sp, max_colors, min_overlap) for sp in sprites]
    out: list[list[str] | None] = [None] * len(sprites)
    groups: dict[tuple, list[int]] = {}
    for k, sp in enumerate(sprites):
        frames = sp.frames
        f0 = next(iter(frames.values()), None) if frames else None
        if not isinstance(f0, np.ndarray) or not all(
                isinstance(f, np.ndarray) and f.dtype == np.uint8 and f.ndim == 2 and f.shape == f0.shape
                for f in frames.values()):
            out[k] = pixel_art_problems(sp, max_colors, min_overlap)
            continue
        key = (tuple(frames), f0.shape, tuple((a, tuple(v)) for a, v in sp.animations.items()), len(sp.palette))
        groups.setdefault(key, []).append(k)
    for (names, shape, anims, n_pal), ks in groups.items():
        suspect = _suspects([sprites[k] for k in ks], names, shape, dict(anims), n_pal, max_colors, min_overlap)
        for k, bad in zip(ks, suspect.tolist()):
            out[k] = pixel_art_problems(sprites[k], max_colors, min_overlap) if bad else []
    return out  # type: ignore[return-value]


def _suspects(sprites: list[Sprite], names: tuple, shape: tuple, anims: dict, n_pal: int, max_colors: int,
              min_overlap: float) -> np.ndarray:
    """(n,) bool: the sprites (one layout) that may break a rule of :func:`pixel_art_problems`."""
    n = len(sprites)
    stack = np.stack([np.stack([sp.frames[m] for m in names]) for sp in sprites])  # (n, F, h, w)
    try:
        pal = np.array([sp.palette for sp in sprites], dtype=np.int64).reshape(n, n_pal, 4)
    except (ValueError, TypeError):
        return np.ones(n, dtype=bool)
    bad = stack.reshape(n, -1).max(axis=1) >= n_pal
    idx = np.minimum(stack, n_pal - 1).astype(np.intp)
    rows = np.arange(n)[:, None, None, None]
    alpha = pal[:, :, 3][rows, idx]  # (n, F, h, w)
    bad |= ~((alpha == 0) | (alpha == 255)).all(axis=(1, 2, 3))
    if n_pal > max_colors:
        used = np.zeros((n, n_pal), dtype=bool)
        used[np.repeat(np.arange(n), idx[0].size), idx.reshape(-1)] = True
        bad |= used.sum(axis=1) > max_colors
    opaque = alpha > 0
    h, w = shape
    pad = np.zeros((n, len(names), h + 2, w + 2), dtype=bool)
    pad[:, :, 1:-1, 1:-1] = opaque
    edge = opaque & ~(pad[:, :, :-2, 1:-1] & pad[:, :, 2:, 1:-1] & pad[:, :, 1:-1, :-2] & pad[:, :, 1:-1, 2:])
    has_edge = edge.any(axis=(2, 3))  # (n, F)
    lo = np.where(edge, stack, 255).min(axis=(2, 3)).astype(np.int64)
    hi = np.where(edge, stack, 0).max(axis=(2, 3)).astype(np.int64)
    bad |= ~has_edge.any(axis=1)  # no outline at all: let the full check decide
    line = np.where(has_edge, lo, 1 << 20).min(axis=1)  # (n,) the one outline color when all agree
    bad |= (has_edge & ((lo != line[:, None]) | (hi != line[:, None]))).any(axis=1)
    filled = opaque.any(axis=3)  # (n, F, h)
    first = filled.argmax(axis=2)
    last = filled.shape[2] - 1 - filled[:, :, ::-1].argmax(axis=2)
    heights = np.where(filled.any(axis=2), last - first + 1, 0)
    index = {m: j for j, m in enumerate(names)}
    for anim, walk in anims.items():
        if "walk" not in anim:
            continue
        idle_anim = anims.get(anim.replace("walk", "idle"))
        if not idle_anim or idle_anim[0] not in index:
            continue
        i = index[idle_anim[0]]
        inner = opaque[:, i] & (stack[:, i] != line[:, None, None])
        total = inner.sum(axis=(1, 2))
        for wname in walk:
            if wname not in index:
                continue
            j = index[wname]
            bad |= np.abs(heights[:, j] - heights[:, i]) > 1
            kept = (inner & (stack[:, j] == stack[:, i])).sum(axis=(1, 2))
            bad |= (total > 0) & (kept < (min_overlap + 1e-9) * total)
    return bad


class BigramNB:
    """Character-bigram naive Bayes over names (``^`` and ``$`` mark the ends), add-one smoothing."""

    def __init__(self, corpora: dict[str, list[str]]):
        self.styles = sorted(corpora)
        self.counts: dict[str, Counter] = {}
        self.totals: dict[str, int] = {}
        self.prior: dict[str, float] = {}
        vocab: set[str] = set()
        n_all = sum(len(v) for v in corpora.values())
        for s in self.styles:
            c: Counter = Counter()
            for n in corpora[s]:
                c.update(self._bigrams(n))
            self.counts[s], self.totals[s] = c, sum(c.values())
            self.prior[s] = math.log(len(corpora[s]) / n_all)
            vocab |= set(c)
        self.v = len(vocab) + 1

    @staticmethod
    def _bigrams(name: str) -> list[str]:
        t = "^" + _key(name) + "$"
        return [t[i:i + 2] for i in range(len(t) - 1)]

    def predict(self, name: str) -> str:
        grams = self._bigrams(name)
        best, best_lp = self.styles[0], -math.inf
        for s in self.styles:
            c, tot = self.counts[s], self.totals[s] + self.v
            lp = self.prior[s] + sum(math.log((c[g] + 1) / tot) for g in grams)
            if lp > best_lp:
                best, best_lp = s, lp
        return best


def holdout_accuracy(corpora: dict[str, list[str]], every: int = 5) -> float:
    """Accuracy of the classifier on every ``every``-th corpus name, fitted on the others."""
    train = {s: [n for i, n in enumerate(v) if i % every] for s, v in corpora.items()}
    test = [(n, s) for s, v in corpora.items() for i, n in enumerate(v) if i % every == 0]
    nb = BigramNB(train)
    return sum(nb.predict(n) == s for n, s in test) / max(1, len(test))


def sprite_diversity(chars: list[Character]) -> dict[str, float]:
    frames = []
    for c in chars:
        if c.sprite is not None and c.sprite.frames:
            name = "idle" if "idle" in c.sprite.frames else next(iter(c.sprite.frames))
            frames.append(c.sprite.rgba(name))
    shapes = {f.shape for f in frames}
    if len(frames) < 2 or len(shapes) != 1:
        return {"sprite_diversity": 0.0, "silhouette_diversity": 0.0, "distinct_silhouettes": float(bool(frames))}
    a = np.stack(frames[:MAX_PAIRS_SPRITES]).astype(np.float32) / 255.0
    n = len(a)
    flat = a.reshape(n, -1)
    masks = (a[..., 3] > 0).reshape(n, -1).astype(np.float32)
    iu = np.triu_indices(n, 1)
    rgba_mean = float(np.concatenate([np.abs(flat[i] - flat[i + 1:]).mean(axis=1) for i in range(n - 1)]).mean())
    # silhouettes: Hamming distance as a matrix product
    inter = masks @ masks.T
    sizes = masks.sum(1)
    ham = (sizes[:, None] + sizes[None, :] - 2 * inter) / masks.shape[1]
    distinct = len({m.tobytes() for m in (masks > 0)}) / n
    return {"sprite_diversity": round(rgba_mean, 4), "silhouette_diversity": round(float(ham[iu].mean()), 4),
            "distinct_silhouettes": round(distinct, 4)}


def idle_grids(chars: list[Character], frames: dict) -> np.ndarray | None:
    """(n, 2, h, w) palette indices of each character's down and side idle frames (None if any lacks one)."""
    out = []
    for c in chars:
        if c.sprite is None or not all(f in c.sprite.frames for f in (frames["down"], frames["side"])):
            return None
        out.append(np.stack([c.sprite.frames[frames["down"]], c.sprite.frames[frames["side"]]]))
    return np.stack(out) if out else None


def sprite_novelty(grids: np.ndarray, training: np.ndarray, pixels: int = NOVELTY_PIXELS) -> dict[str, float]:
    """Share of generated sprites that copy no training sprite (both idle frames) and whose down idle frame
    differs from every training sprite's in more than ``pixels`` palette indices."""
    if training is None or len(training) == 0 or grids.shape[2:] != training.shape[2:]:
        return {}
    g = grids.reshape(len(grids), 2, -1).astype(np.int16)
    t = training.reshape(len(training), 2, -1).astype(np.int16)
    down = np.stack([(row[0][None] != t[:, 0]).sum(-1) for row in g])  # (n, m) Hamming distances
    both = np.stack([((row[None] != t).sum(-1).sum(-1)) for row in g])
    dmin = down.min(1)
    return {"sprite_novelty": round(float(((dmin > pixels) & (both.min(1) > 0)).mean()), 4),
            "sprite_exact_copies": round(float((both.min(1) == 0).mean()), 4),
            "sprite_min_hamming_p5": float(np.percentile(dmin, 5)),
            "sprite_min_hamming_median": float(np.median(dmin))}


def _one_blas_thread():
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


class RoleClassifier:
    """Softmax regression on one-hot palette indices of both idle frames (L2, full-batch gradient descent):
    a simple linear classifier, deterministic."""

    def __init__(self, grids: np.ndarray, roles: list[str], n_colors: int, steps: int = 1000, l2: float = 1e-3):
        self.roles = sorted(set(roles))
        self.n_colors = n_colors
        x = self._features(grids)
        xt = np.ascontiguousarray(x.T)
        with _one_blas_thread():  # small matrices: BLAS threads only contend
            self._fit(x, xt, roles, steps, l2)

    def _fit(self, x: np.ndarray, xt: np.ndarray, roles: list[str], steps: int, l2: float) -> None:
        y = np.array([self.roles.index(r) for r in roles])
        k = len(self.roles)
        self.w = np.zeros((x.shape[1], k), dtype=np.float32)
        self.b = np.zeros(k, dtype=np.float32)
        onehot = np.eye(k, dtype=np.float32)[y]
        lr = np.float32(0.5)
        for _ in range(steps):
            p = self._softmax(x @ self.w + self.b)
            grad = (p - onehot) / np.float32(len(x))
            self.w -= lr * (xt @ grad + np.float32(l2) * self.w)
            self.b -= lr * grad.sum(0)

    def _features(self, grids: np.ndarray) -> np.ndarray:
        g = np.clip(grids.reshape(len(grids), -1).astype(np.int64), 0, self.n_colors - 1)
        return np.eye(self.n_colors, dtype=np.float32)[g].reshape(len(grids), -1)

    @staticmethod
    def _softmax(z: np.ndarray) -> np.ndarray:
        z = z - z.max(1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(1, keepdims=True)

    def predict(self, grids: np.ndarray) -> list[str]:
        return [self.roles[i] for i in (self._features(grids) @ self.w + self.b).argmax(1)]


def sprite_metrics(chars: list[Character], ref: dict) -> tuple[dict[str, Any], dict]:
    """Novelty, role accuracy and pixel-art rule metrics against the generator's sprite reference."""
    out: dict[str, Any] = {}
    extra: dict = {}
    sprites = [c.sprite for c in chars if c.sprite is not None]
    if sprites:
        bad = [pixel_art_problems(s, ref.get("max_colors", 16)) for s in sprites]
        out["pixel_art_rules"] = round(sum(not b for b in bad) / len(chars), 4)
        extra["rule_failures"] = Counter(p.split(":")[0] if p.startswith("frame") else p.split(" ")[0]
                                         for b in bad for p in b)
    frames = ref.get("sprite_frames")
    if not frames:
        return out, extra
    grids = idle_grids(chars, frames)
    if grids is None:
        return out, extra
    train, held = ref.get("training_sprites"), ref.get("heldout_sprites")
    if train is not None:
        out.update(sprite_novelty(grids, np.asarray(train["grids"])))
    if held is not None and len(held["roles"]) and len(set(held["roles"])) > 1:
        n_colors = int(max(grids.max(), np.asarray(held["grids"]).max())) + 1
        clf = RoleClassifier(np.asarray(held["grids"]), list(held["roles"]), n_colors)
        pred = clf.predict(grids)
        judged = [(c.role, p) for c, p in zip(chars, pred) if c.role in clf.roles]
        if judged:
            out["role_accuracy"] = round(sum(a == b for a, b in judged) / len(judged), 4)
            out["role_chance"] = round(1 / len(clf.roles), 4)
            conf: dict[str, Counter] = defaultdict(Counter)
            for a, b in judged:
                conf[a][b] += 1
            extra["role_confusion"] = conf
        if train is not None and len(train["roles"]):
            tp = clf.predict(np.asarray(train["grids"]))
            out["role_accuracy_corpus"] = round(float(np.mean([a == b for a, b in zip(train["roles"], tp)])), 4)
    return out, extra


# --------------------------------------------------------------------------------------------- main
def evaluate(engine: Any, generator: Any, *, count: int, seed: int | str, params: dict,
             report: Path | None) -> dict:
    gen_id = generator.id
    seeds = [derive(seed, i) for i in range(count)]
    engine.generate("character", gen_id, seeds[0], params)  # warm up (models load on first use)
    n_single = min(count, 16)
    batch_s = single_s = math.inf
    for _ in range(2):  # the better of two timings of each path (a shared machine is noisy)
        t0 = time.perf_counter()
        made = engine.generate_batch("character", gen_id, seeds, params)
        batch_s = min(batch_s, time.perf_counter() - t0)
        t0 = time.perf_counter()
        for s in seeds[:n_single]:
            engine.generate("character", gen_id, s, params)
        single_s = min(single_s, time.perf_counter() - t0)
    chars: list[Character] = []
    for c in made:
        chars += c.characters if isinstance(c, Cast) else [c]
    checked = engine.request("character", gen_id, seeds[0], params).params
    ref = reference_of(generator, checked)

    # names
    corpora = {s: list(v) for s, v in (ref.get("name_corpora") or {}).items() if v}
    seen = {_key(n) for n in ref.get("training_names") or ()}
    ref_fn = getattr(generator, "reference_names", None)  # the ReferenceNames protocol
    if not seen and callable(ref_fn):
        got = ref_fn(checked.get("weights", "")) if "weights" in checked else ref_fn()
        seen = {_key(n) for v in got.values() for n in v}
    seen = seen or {_key(n) for v in corpora.values() for n in v}
    names = [c.name for c in chars]
    metrics: dict[str, Any] = {"generator": gen_id, "count": len(chars)}
    if seen:
        metrics["name_novelty"] = round(sum(_key(n) not in seen for n in names) / max(1, len(names)), 4)
    metrics["name_uniqueness"] = round(len({_key(n) for n in names}) / max(1, len(names)), 4)
    filt = default_filter()
    metrics["name_filter_pass"] = round(sum(filt.name_ok(n) for n in names) / max(1, len(names)), 4)
    metrics["name_mean_length"] = round(float(np.mean([len(n) for n in names])) if names else 0.0, 2)
    confusion: dict[str, Counter] = defaultdict(Counter)
    if len(corpora) > 1:
        nb = BigramNB(corpora)
        judged = [(c.style, nb.predict(c.name)) for c in chars if c.style in nb.styles]
        for want, got in judged:
            confusion[want][got] += 1
        if judged:
            metrics["style_accuracy"] = round(sum(w == g for w, g in judged) / len(judged), 4)
        metrics["style_accuracy_corpus_holdout"] = round(holdout_accuracy(corpora), 4)
        metrics["style_chance"] = round(1 / len(nb.styles), 4)

    # stats
    rules = ref.get("rules") or {}
    attrs = tuple(rules.get("attributes") or sorted({a for c in chars for a in c.attributes}))
    lo, hi = rules.get("min", -math.inf), rules.get("max", math.inf)
    budget = checked.get("budget")
    ok = 0
    by_role: dict[str, list[list[int]]] = defaultdict(list)
    for c in chars:
        vals = [c.attributes.get(a) for a in attrs]
        good = all(isinstance(v, int) and lo <= v <= hi for v in vals) and (budget is None or sum(vals) == budget)
        ok += good
        if all(isinstance(v, int) for v in vals):
            by_role[c.role].append(vals)
    metrics["stats_compliance"] = round(ok / max(1, len(chars)), 4)

    # sprites and speed
    metrics.update(sprite_diversity(chars))
    more, extra = sprite_metrics(chars, ref)
    metrics.update(more)
    metrics["ms_per_character_batch"] = round(1000 * batch_s / max(1, len(chars)), 3)
    metrics["ms_per_request_single"] = round(1000 * single_s / n_single, 3)
    metrics["ms_per_request_batch"] = round(1000 * batch_s / count, 3)
    metrics["batch_speedup"] = round(metrics["ms_per_request_single"] / max(1e-9, metrics["ms_per_request_batch"]), 2)

    if report is not None:
        _write_report(report, generator, metrics, chars, by_role, attrs, confusion, seed, params, ref, extra)
    return metrics


def _sheet(tiles: list[np.ndarray], cols: int, bg=(30, 28, 36, 255)) -> np.ndarray:
    """RGBA tiles of one size on a grid with a 1-pixel gap, on ``bg``."""
    h, w = tiles[0].shape[:2]
    rows = max(1, math.ceil(len(tiles) / cols))
    grid = np.full((rows * (h + 2), cols * (w + 2), 4), bg, dtype=np.uint8)
    for i, px in enumerate(tiles):
        y, x = (i // cols) * (h + 2) + 1, (i % cols) * (w + 2) + 1
        grid[y:y + h, x:x + w] = np.where(px[..., 3:] > 0, px, grid[y:y + h, x:x + w])
    return grid


def _slot_rgba(grid: np.ndarray, palette: list) -> np.ndarray:
    pal = np.array(palette, dtype=np.uint8).reshape(-1, 4)
    return pal[np.clip(grid, 0, len(pal) - 1)]


def _confusion_table(conf: dict, title: str, what: str) -> list[str]:
    """A report section: a confusion matrix (rows: asked, columns: guessed; Counters) as a markdown table."""
    cols = sorted({c for row in conf.values() for c in row} | set(conf))
    out = ["", f"## {title}", "", f"| {what} | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    return out + [f"| {r} | " + " | ".join(str(conf[r][c]) for c in cols) + " |" for r in sorted(conf)]


def _write_report(folder: Path, generator: Any, metrics: dict, chars: list[Character], by_role: dict,
                  attrs: tuple[str, ...], confusion: dict, seed: Any, params: dict, ref: dict | None = None,
                  extra: dict | None = None) -> None:
    from .images import png_bytes

    folder.mkdir(parents=True, exist_ok=True)
    scale, cols = 4, 10
    with_sprites = [c for c in chars if c.sprite is not None and "idle" in c.sprite.frames]
    shown = with_sprites[:60]
    if shown:
        h, w = shown[0].sprite.size
        rows = math.ceil(len(shown) / cols)
        grid = np.full((rows * (h + 2), cols * (w + 2), 4), (30, 28, 36, 255), dtype=np.uint8)
        for i, c in enumerate(shown):
            if c.sprite.size != (h, w):
                continue
            y, x = (i // cols) * (h + 2) + 1, (i % cols) * (w + 2) + 1
            px = c.sprite.rgba("idle")
            grid[y:y + h, x:x + w] = np.where(px[..., 3:] > 0, px, grid[y:y + h, x:x + w])
        big = np.repeat(np.repeat(grid, scale, 0), scale, 1)
        buf = png_bytes(big)
        atomic_write(folder / "sprites.png", buf)
        walkers = [c for c in shown if {"walk1", "walk2"} <= set(c.sprite.frames)][:8]
        if walkers:
            names = list(walkers[0].sprite.frames)
            tiles = [c.sprite.rgba(f) for c in walkers for f in names if f in c.sprite.frames]
            big_strip = np.repeat(np.repeat(_sheet(tiles, len(names)), scale, 0), scale, 1)
            atomic_write(folder / "walk.png", png_bytes(big_strip))
        train = (ref or {}).get("training_sprites")
        frames = (ref or {}).get("sprite_frames")
        if train is not None and frames and len(train["grids"]) and frames["down"] in shown[0].sprite.frames:
            gen_tiles = [c.sprite.rgba(frames["down"]) for c in with_sprites[:64]]
            corpus = np.asarray(train["grids"])
            pick = np.unique(np.linspace(0, len(corpus) - 1, 64).astype(np.int64))  # spread over all roles
            # each corpus sprite in the palette of a generated character of its role (else the first one's)
            pal_of = {c.role: c.sprite.palette for c in reversed(with_sprites)}
            corp_tiles = [_slot_rgba(corpus[i][0], pal_of.get(train["roles"][i], with_sprites[0].sprite.palette))
                          for i in pick]
            if gen_tiles[0].shape == corp_tiles[0].shape:
                left, right = _sheet(gen_tiles, 8), _sheet(corp_tiles, 8)
                rows = max(len(left), len(right))
                gap = np.full((rows, 6, 4), (12, 10, 16, 255), dtype=np.uint8)
                both = np.concatenate([np.pad(left, ((0, rows - len(left)), (0, 0), (0, 0))), gap,
                                       np.pad(right, ((0, rows - len(right)), (0, 0), (0, 0)))], axis=1)
                atomic_write(folder / "compare.png", png_bytes(np.repeat(np.repeat(both, scale, 0), scale, 1)))
    lines = [f"# Character report: `{generator.id}` (version {generator.version})", "",
             f"{metrics['count']} characters, seeds derive({seed!r}, i), params {params or '{}'}.", "",
             "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in metrics.items() if not isinstance(v, (dict, list))]
    if confusion:
        lines += _confusion_table(confusion, "Style confusion (rows: requested style, columns: classifier's guess)",
                                  "style")
    by_style: dict[str, list[str]] = defaultdict(list)
    for c in chars:
        by_style[c.style or "-"].append(c.name)
    lines += ["", "## Sample names", ""]
    for s in sorted(by_style):
        lines.append(f"- **{s}**: " + ", ".join(by_style[s][:12]))
    if by_role:
        lines += ["", "## Mean attributes by role", "", "| role | n | " + " | ".join(a[:3] for a in attrs) + " |",
                  "|---|---|" + "---|" * len(attrs)]
        for role in sorted(by_role):
            m = np.mean(by_role[role], axis=0)
            lines.append(f"| {role} | {len(by_role[role])} | " + " | ".join(f"{v:.1f}" for v in m) + " |")
    conf = (extra or {}).get("role_confusion")
    if conf:
        lines += _confusion_table(conf, "Role confusion (rows: asked role, columns: the held-out-corpus "
                                  "classifier's guess)", "role")
    fails = (extra or {}).get("rule_failures")
    if fails:
        lines += ["", "## Pixel-art rule failures", ""] + [f"- {k}: {v}" for k, v in fails.most_common()]
    if with_sprites:
        lines += ["", "## Sprites", "", "![idle frames](sprites.png)", "", "Every frame of a few characters:", "",
                  "![walk](walk.png)"]
        if (folder / "compare.png").is_file():
            lines += ["", "64 generated (left) next to 64 training-corpus sprites (right, in the first "
                      "character's palette):", "", "![compare](compare.png)"]
    atomic_write(folder / "report.md", ("\n".join(lines) + "\n").encode("utf-8"))
