"""Character metrics for ``conjure evaluate`` (any character generator: ``character-ml``, ``classic-character``).

- **name novelty**: the share of generated names that are not in the training list (the generator's own
  ``reference_names()`` when it has one, else the shipped name corpora), and the share of distinct names;
- **style separability**: a character-bigram naive Bayes classifier, fitted (train-free for the generator)
  on the name corpora, classifies each generated name; accuracy against the style the character was made
  in (chance is 1/number of styles). The same classifier's accuracy on held-out corpus names is the
  ceiling to compare with;
- **sprite diversity**: mean pairwise distance between idle frames (RGBA mean absolute difference in 0..1,
  and silhouette Hamming distance), and the share of distinct silhouettes;
- **stats compliance**: the share of characters whose attributes lie in the game's range and sum to the
  budget; **filter pass rate** of names;
- speed: milliseconds per character through ``generate_batch`` and through single ``generate`` calls.

Sample ``i`` uses seed ``derive(seed, i)``. With ``report`` a folder gets ``report.md``, ``sprites.png``
(a grid of idle frames) and ``walk.png`` (idle, walk1, walk2 of a few characters).
"""
from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from .content import Cast, Character
from .seeds import derive
from .serialize import atomic_write
from .textfilter import default_filter

ATTRS = ("strength", "dexterity", "constitution", "intelligence", "wisdom", "charisma")
MAX_PAIRS_SPRITES = 300


# --------------------------------------------------------------------------------------------- helpers
def _game_rules() -> tuple[tuple[str, ...], int, int]:
    try:
        from plugins.classic_character import ATTR_MAX, ATTR_MIN, ATTRS as GAME_ATTRS
    except ImportError:  # pragma: no cover - the built-in plugins are absent
        return ATTRS, 3, 18
    return tuple(GAME_ATTRS), ATTR_MIN, ATTR_MAX


def corpus_names() -> dict[str, list[str]]:
    """The shipped name corpora by style (lowercase), or {} when they are not installed."""
    try:
        from plugins.learned_characters.data import shipped_names
    except ImportError:  # pragma: no cover
        return {}
    try:
        return shipped_names()
    except Exception:  # pragma: no cover - a damaged install: metrics that need it are skipped
        return {}


def _key(name: str) -> str:
    return name.strip().lower()


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


# --------------------------------------------------------------------------------------------- main
def evaluate(engine: Any, generator: Any, *, count: int, seed: int | str, params: dict,
             report: Path | None) -> dict:
    gen_id = generator.id
    seeds = [derive(seed, i) for i in range(count)]
    t0 = time.perf_counter()
    made = engine.generate_batch("character", gen_id, seeds, params)
    batch_s = time.perf_counter() - t0
    n_single = min(count, 16)
    t0 = time.perf_counter()
    for s in seeds[:n_single]:
        engine.generate("character", gen_id, s, params)
    single_s = time.perf_counter() - t0
    chars: list[Character] = []
    for c in made:
        chars += c.characters if isinstance(c, Cast) else [c]
    checked = engine.request("character", gen_id, seeds[0], params).params

    # names
    corpora = corpus_names()
    ref: set[str] = set()
    ref_fn = getattr(generator, "reference_names", None)
    if callable(ref_fn):
        try:
            got = ref_fn(checked.get("weights", "")) if "weights" in checked else ref_fn()
            ref = {_key(n) for names in got.values() for n in names}
        except Exception:  # noqa: BLE001 - fall back to the shipped corpora
            ref = set()
    if not ref:
        ref = {_key(n) for names in corpora.values() for n in names}
    names = [c.name for c in chars]
    metrics: dict[str, Any] = {"generator": gen_id, "count": len(chars)}
    metrics["name_novelty"] = round(sum(_key(n) not in ref for n in names) / max(1, len(names)), 4)
    metrics["name_uniqueness"] = round(len({_key(n) for n in names}) / max(1, len(names)), 4)
    filt = default_filter()
    metrics["name_filter_pass"] = round(sum(filt.name_ok(n) for n in names) / max(1, len(names)), 4)
    metrics["name_mean_length"] = round(float(np.mean([len(n) for n in names])) if names else 0.0, 2)
    confusion: dict[str, Counter] = defaultdict(Counter)
    if corpora:
        nb = BigramNB(corpora)
        judged = [(c.style, nb.predict(c.name)) for c in chars if c.style in nb.styles]
        for want, got in judged:
            confusion[want][got] += 1
        if judged:
            metrics["style_accuracy"] = round(sum(w == g for w, g in judged) / len(judged), 4)
        metrics["style_accuracy_corpus_holdout"] = round(holdout_accuracy(corpora), 4)
        metrics["style_chance"] = round(1 / len(nb.styles), 4)

    # stats
    attrs, lo, hi = _game_rules()
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
    metrics["ms_per_character_batch"] = round(1000 * batch_s / max(1, len(chars)), 3)
    metrics["ms_per_request_single"] = round(1000 * single_s / n_single, 3)
    metrics["ms_per_request_batch"] = round(1000 * batch_s / count, 3)

    if report is not None:
        _write_report(report, generator, metrics, chars, by_role, attrs, confusion, seed, params)
    return metrics


def _write_report(folder: Path, generator: Any, metrics: dict, chars: list[Character], by_role: dict,
                  attrs: tuple[str, ...], confusion: dict, seed: Any, params: dict) -> None:
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
            strip = np.full((len(walkers) * (h + 2), 3 * (w + 2), 4), (30, 28, 36, 255), dtype=np.uint8)
            for r, c in enumerate(walkers):
                for k, f in enumerate(("idle", "walk1", "walk2")):
                    y, x = r * (h + 2) + 1, k * (w + 2) + 1
                    px = c.sprite.rgba(f)
                    strip[y:y + h, x:x + w] = np.where(px[..., 3:] > 0, px, strip[y:y + h, x:x + w])
            big_strip = np.repeat(np.repeat(strip, scale, 0), scale, 1)
            atomic_write(folder / "walk.png", png_bytes(big_strip))
    lines = [f"# Character report: `{generator.id}` (version {generator.version})", "",
             f"{metrics['count']} characters, seeds derive({seed!r}, i), params {params or '{}'}.", "",
             "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in metrics.items() if not isinstance(v, (dict, list))]
    if confusion:
        styles = sorted({s for row in confusion.values() for s in row} | set(confusion))
        lines += ["", "## Style confusion (rows: requested style, columns: classifier's guess)", "",
                  "| style | " + " | ".join(styles) + " |", "|---|" + "---|" * len(styles)]
        for s in sorted(confusion):
            lines.append(f"| {s} | " + " | ".join(str(confusion[s][t]) for t in styles) + " |")
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
    if with_sprites:
        lines += ["", "## Sprites", "", "![idle frames](sprites.png)", "", "Walk cycle (idle, walk1, walk2):", "",
                  "![walk](walk.png)"]
    atomic_write(folder / "report.md", ("\n".join(lines) + "\n").encode("utf-8"))
